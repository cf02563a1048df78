// SPDX-License-Identifier: Apache-2.0
// A finite-difference check of any class that satisfies the layer contract (layers/contract.hpp),
// in double precision on the reference backend: random inputs and weights, the loss Σ w ⊙ y for
// a random w, and central differences against the analytic gradients of every input and of
// sampled parameters. The buffers backward writes are pre-filled with grad_sentinel, so
// accumulating where the contract says assign (inputs), or assigning where it says accumulate
// (parameters), fails. It also checks that the no-grad forward gives the taped forward's output
// and that forward and backward leave the arena as they found it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <etrm/backend/reference/reference.hpp>
#include <etrm/core/params.hpp>
#include <etrm/core/rng.hpp>
#include <etrm/layers/contract.hpp>
#include <etrm/testing/gradcheck.hpp>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace testing {

struct layer_gradcheck_options {
  std::uint64_t seed = 3;
  double weight_scale = 2.0;  // larger weights: a less linear function, a sharper check
  double input_step = 1e-6;
  // h = 1e-5 and floor 1e-4 for weights: some have gradients near 1e-4, where the roundoff of
  // h = 1e-6 differences (~1e-9) would dominate.
  double param_step = 1e-5, param_floor = 1e-4;
  std::size_t params_per_tensor = 40;
};

struct layer_gradcheck_result {
  std::vector<gradcheck_result> inputs;          // one per differentiable input
  gradcheck_result params;                       // sampled coordinates of every parameter tensor
  std::vector<std::vector<double>> input_grads;  // the analytic input gradients
  double no_grad_difference = 0;                 // max |y(no-grad) − y(taped)|
  bool arena_restored = false;

  double max_rel() const {
    double m = params.max_rel;
    for (const auto& r : inputs) m = std::max(m, r.max_rel);
    return m;
  }
};

template <class L>
requires layer<L, reference_device, double> layer_gradcheck_result
gradcheck_layer(const L& l, const param_layout& layout, const typename L::template shape<double>& shape,
                const layer_gradcheck_options& o = {}) {
  using R = reference_device;
  constexpr std::size_t N = L::arity;
  context_t<R> ctx;
  workspace<R> ws;
  auto random = [&](index_t n, std::uint64_t stream) {
    std::vector<double> v(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = 2 * uniform01({o.seed, stream}, i) - 1;
    return v;
  };
  std::vector<double> p = layout.initial_values<double>(o.seed);
  for (auto& v : p) v *= o.weight_scale;
  const auto sizes = l.input_sizes(shape);
  std::vector<std::vector<double>> x(N);
  for (std::size_t i = 0; i < N; ++i) x[i] = random(sizes[i], 100 + i);
  const std::vector<double> w = random(l.output_size(shape), 99);

  auto pointers = [](const std::vector<std::vector<double>>& in) {
    layer_inputs<double, N> ptr{};
    for (std::size_t i = 0; i < N; ++i) ptr[i] = in[i].data();
    return ptr;
  };
  std::vector<double> y(w.size());
  auto loss = [&](const std::vector<double>& params, const std::vector<std::vector<double>>& in) {
    ws.reset();
    l.forward(ctx, params.data(), shape, pointers(in), y.data(), nullptr, ws);
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
    return s;
  };

  layer_gradcheck_result r;
  loss(p, x);
  const std::vector<double> y_no_grad = y;
  ws.reset();
  typename L::template saved<double> s;
  l.take(s, ws, shape);
  const std::size_t mark = ws.mark();
  l.forward(ctx, p.data(), shape, pointers(x), y.data(), &s, ws);
  for (std::size_t i = 0; i < y.size(); ++i)
    r.no_grad_difference = std::max(r.no_grad_difference, std::abs(y[i] - y_no_grad[i]));
  r.input_grads.assign(N, {});
  layer_grads<double, N> dx{};
  for (std::size_t i = 0; i < N; ++i) {
    r.input_grads[i].assign(x[i].size(), grad_sentinel);
    dx[i] = r.input_grads[i].data();
  }
  std::vector<double> g(p.size(), grad_sentinel);
  const bool forward_restored = ws.mark() == mark;
  l.backward(ctx, p.data(), shape, pointers(x), y.data(), s, w.data(), dx, g.data(), ws);
  r.arena_restored = forward_restored && ws.mark() == mark;
  for (auto& v : g) v -= grad_sentinel;

  // gradcheck perturbs x[i] in place.
  for (std::size_t i = 0; i < N; ++i)
    r.inputs.push_back(
        gradcheck([&](std::vector<double>&) { return loss(p, x); }, x[i], r.input_grads[i], {}, o.input_step));
  std::vector<std::size_t> idx;
  for (const auto& e : layout.entries())
    for (std::size_t i : sample_indices(std::size_t(e.ref.size), o.params_per_tensor))
      idx.push_back(std::size_t(e.ref.offset) + i);
  r.params =
      gradcheck([&](std::vector<double>& params) { return loss(params, x); }, p, g, idx, o.param_step, o.param_floor);
  return r;
}

}  // namespace testing
ETRM_END_NAMESPACE
