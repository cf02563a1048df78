// SPDX-License-Identifier: Apache-2.0
// A NaN reaching the loss and gradients stops training at that step with a message naming it,
// and makes no update: parameters, Adam moments and EMA are as they were before the step. With
// max_skipped_steps the step is skipped instead, up to that many in a row.
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace etrm;
using C = cpu_device;
using model_t = trm_model<C, float, attention_mixer<C>>;

TEST_CASE("a NaN in the gradients stops training at that step without updating anything") {
  context_t<C> ctx(2);
  const trm_config c = tiny::config(false, 2, 2);
  model_t m(ctx, c);
  trainer<model_t> tr(ctx, m, 4, {});
  for (std::uint64_t s = 0; s < 2; ++s) (void)tr.train_step(tiny::batch(c, 4, s));

  const index_t n = tr.parameters().size();
  auto params = to_host<C>(ctx, tr.parameters().data(), n);
  params[std::size_t(n / 2)] = std::numeric_limits<float>::quiet_NaN();  // a poisoned weight
  from_host<C>(ctx, tr.parameters().data(), params);
  const auto m1 = to_host<C>(ctx, tr.moment1().data(), n), m2 = to_host<C>(ctx, tr.moment2().data(), n),
             ema = to_host<C>(ctx, tr.ema().data(), tr.ema().size());

  std::string msg;
  try {
    (void)tr.train_step(tiny::batch(c, 4, 2));
  } catch (const non_finite_error& e) {
    msg = e.what();
    CHECK(e.step == 3);
  }
  CHECK(msg.starts_with("training diverged at step 3: no update was made, the gradient norm is "));
  CHECK(msg.ends_with("nan"));
  const auto same = [](const std::vector<float>& a, const std::vector<float>& b) {  // NaN == NaN here
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
    return a.size() == b.size();
  };
  CHECK(same(to_host<C>(ctx, tr.parameters().data(), n), params));
  CHECK(same(to_host<C>(ctx, tr.moment1().data(), n), m1));
  CHECK(same(to_host<C>(ctx, tr.moment2().data(), n), m2));
  CHECK(same(to_host<C>(ctx, tr.ema().data(), tr.ema().size()), ema));
}

TEST_CASE("max_skipped_steps skips steps with NaN gradients, updates nothing, and stops after that many in a row") {
  context_t<C> ctx(2);
  const trm_config c = tiny::config(false, 2, 2);
  model_t m(ctx, c);
  trainer<model_t>::options o;
  o.max_skipped_steps = 2;
  o.optimizer.ema_rate = 0.999;
  trainer<model_t> tr(ctx, m, 4, o);
  for (std::uint64_t s = 0; s < 2; ++s) REQUIRE_FALSE(tr.train_step(tiny::batch(c, 4, s)).skipped);

  const index_t n = tr.parameters().size();
  const auto good = to_host<C>(ctx, tr.parameters().data(), n);
  auto poisoned = good;
  poisoned[std::size_t(n / 2)] = std::numeric_limits<float>::infinity();
  from_host<C>(ctx, tr.parameters().data(), poisoned);
  const auto m1 = to_host<C>(ctx, tr.moment1().data(), n), m2 = to_host<C>(ctx, tr.moment2().data(), n),
             ema = to_host<C>(ctx, tr.ema().data(), n);
  const auto bits_equal = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
  };
  for (std::uint64_t s = 2; s < 4; ++s) {  // two skips in a row are allowed
    const step_metrics sm = tr.train_step(tiny::batch(c, 4, s));
    CHECK(sm.skipped);
    CHECK(tr.step() == index_t(s + 1));
    CHECK(bits_equal(to_host<C>(ctx, tr.parameters().data(), n), poisoned));
    CHECK(bits_equal(to_host<C>(ctx, tr.moment1().data(), n), m1));
    CHECK(bits_equal(to_host<C>(ctx, tr.moment2().data(), n), m2));
    CHECK(bits_equal(to_host<C>(ctx, tr.ema().data(), n), ema));
  }
  // The weight mended, the next step trains again and the count of skips in a row restarts.
  from_host<C>(ctx, tr.parameters().data(), good);
  const step_metrics ok = tr.train_step(tiny::batch(c, 4, 4));
  CHECK_FALSE(ok.skipped);
  CHECK(std::isfinite(ok.loss));
  CHECK_FALSE(bits_equal(to_host<C>(ctx, tr.parameters().data(), n), good));
  from_host<C>(ctx, tr.parameters().data(), poisoned);
  CHECK(tr.train_step(tiny::batch(c, 4, 5)).skipped);
  CHECK(tr.train_step(tiny::batch(c, 4, 6)).skipped);
  CHECK_THROWS_AS((void)tr.train_step(tiny::batch(c, 4, 7)), non_finite_error);  // the third in a row
}
