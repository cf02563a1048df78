// SPDX-License-Identifier: Apache-2.0
// ETRM reads the demonstrations: a model trained on one rule family ("colour a becomes colour
// b", every other cell unchanged) is given new tasks of that family, only their
// demonstrations. On new tasks it must solve most queries, and far fewer when given the demos
// of a different task (the control), so the answer comes from the demos. Tasks whose (a, b)
// pair never occurred in training must be solved too, well above the control: the query cells
// read the demo cells directly (query_attention, aligned_cells), so "a became b" transfers to
// pairs never trained on. Measured: 100% / 3% on new tasks, 49% / 2% on never-seen pairs
// (without those two encoder features: 77% / 13% and 5% / 2%).
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

using namespace etrm;
using C = cpu_device;

namespace {

context_t<C> ctx(2);
const data::episode_shape shape{4, 3};

// Task i: colour a → b on 3×3 grids; pairs with (a + b) % 3 == 0 are reserved for new tasks.
data::task recolour_task(std::uint64_t seed, std::uint64_t i, bool reserved) {
  int a = 0, b = 0;
  for (std::uint64_t j = 0;; ++j) {
    a = 1 + int(uniform_index({seed, 1}, i * 97 + j, 9));
    b = 1 + int(uniform_index({seed, 2}, i * 97 + j, 9));
    if (a != b && ((a + b) % 3 == 0) == reserved) break;
  }
  data::task t;
  for (int k = 0; k < 4; ++k) {
    data::grid in(3, 3);
    for (int q = 0; q < 9; ++q) {
      const std::uint64_t n = i * 64 + std::uint64_t(k * 9 + q);
      const double u = uniform01({seed, 3}, n);
      in.cells[q] = u < 0.3 ? 0 : u < 0.65 ? std::uint8_t(a) : std::uint8_t(1 + uniform_index({seed, 4}, n, 9));
    }
    data::grid out = in;
    for (auto& v : out.cells) v = v == a ? std::uint8_t(b) : v;
    (k < 3 ? t.train : t.test).push_back({in, out});
  }
  return t;
}

// B episodes; with `shift`, row r gets the demonstrations of row r + 1's task (the control).
token_batch episodes(index_t B, std::uint64_t seed, std::uint64_t step, bool reserved, bool shift = false) {
  token_batch b;
  b.batch = B;
  const std::size_t n = std::size_t(shape.seq_len()), w = std::size_t(shape.context_width());
  b.inputs.resize(std::size_t(B) * n);
  b.labels.resize(b.inputs.size());
  b.context.resize(std::size_t(B) * w);
  std::vector<std::int32_t> scratch(w), unused(2 * n);
  const std::size_t demos[] = {0, 1, 2};
  for (index_t r = 0; r < B; ++r) {
    const data::task t = recolour_task(seed, step * std::uint64_t(B) + std::uint64_t(r), reserved);
    data::encode_episode(t, demos, 0, shape, std::span(b.inputs).subspan(std::size_t(r) * n, n),
                         std::span(b.labels).subspan(std::size_t(r) * n, n),
                         std::span(b.context).subspan(std::size_t(r) * w, w));
  }
  if (shift) std::rotate(b.context.begin(), b.context.begin() + std::ptrdiff_t(w), b.context.end());
  return b;
}

}  // namespace

TEST_CASE("ETRM solves new tasks of a trained family from their demonstrations") {
  trm_config c = tiny::config(false, 2, 2);
  c.hidden_size = 48;
  c.num_heads = 4;
  c.seq_len = shape.seq_len();
  c.vocab_size = 12;
  c.puzzle_emb_len = 4;
  c.puzzle_emb_ndim = 0;
  c.num_puzzle_identifiers = 1;
  c.halt_max_steps = 2;
  using model_t = trm_model<C, float, attention_mixer<C>, dynamic_recursion, demo_encoder_policy<>::type>;
  model_t m(ctx, c, encoder_config{shape.side, shape.max_demos, 1, 1});
  trainer<model_t>::options o;
  o.optimizer.lr = 1e-3;
  o.optimizer.warmup_steps = 50;
  o.optimizer.ema_rate = 0.99;
  o.optimizer.grad_clip = 1.0;
  const index_t B = 32;
  trainer<model_t> tr(ctx, m, B, o);
  for (std::uint64_t s = 0; s < 1200; ++s) tr.train_step(episodes(B, 1, s, false));
  double fresh = 0, control = 0, unseen = 0, unseen_control = 0;
  for (std::uint64_t k = 0; k < 4; ++k) {
    fresh += tr.evaluate(episodes(B, 2, k, false)).exact_accuracy / 4;
    control += tr.evaluate(episodes(B, 2, k, false, /*shift=*/true)).exact_accuracy / 4;
    unseen += tr.evaluate(episodes(B, 3, k, true)).exact_accuracy / 4;
    unseen_control += tr.evaluate(episodes(B, 3, k, true, /*shift=*/true)).exact_accuracy / 4;
  }
  MESSAGE("exact accuracy on new tasks: " << fresh << " with their demos, " << control
                                          << " with another task's demos; never-seen (a, b) pairs: " << unseen
                                          << " with their demos, " << unseen_control << " with another task's demos");
  CHECK(fresh > 0.5);
  CHECK(control < fresh - 0.3);
  CHECK(unseen > 0.25);
  CHECK(unseen > unseen_control + 0.2);
}
