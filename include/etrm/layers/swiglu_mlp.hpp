// SPDX-License-Identifier: Apache-2.0
// SwiGLU MLP sub-layer with its post-norm residual: y = rms_norm(x + down(silu(gate) ⊙ up)).
// Used over channels ([rows = B·S, width = D]) and, by the mlp_t token mixer, over the
// sequence axis ([rows = B·D, width = S]). Weights: gate_up [2·I, width], down [width, I].
// A layer (contract.hpp) of arity 1 with row_shape.
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/layers/contract.hpp>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

template <class D>
struct swiglu_mlp {
  index_t width = 0, inter = 0;
  index_t gate_up = 0, down = 0;  // parameter offsets

  static constexpr std::size_t arity = 1;
  template <class T>
  using shape = row_shape;
  std::array<index_t, 1> input_sizes(const row_shape& sh) const { return {sh.rows * width}; }
  index_t output_size(const row_shape& sh) const { return sh.rows * width; }

  // Activations kept for backward; the output y itself is kept by the caller.
  template <class T>
  struct saved {
    T* gu = nullptr;    // [rows, 2I]
    T* act = nullptr;   // [rows, I]
    T* rstd = nullptr;  // [rows]
  };
  template <class T>
  void take(saved<T>& s, workspace<D>& ws, const row_shape& sh) const {
    s = {ws.template take<T>(sh.rows * 2 * inter), ws.template take<T>(sh.rows * inter), ws.template take<T>(sh.rows)};
  }

  // x: [rows, width] → y: [rows, width]. s == nullptr: the no-grad path, scratch only.
  template <class T>
  void forward(context_t<D>& ctx, const T* p, const row_shape& sh, layer_inputs<T, 1> in, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const index_t rows = sh.rows;
    const T* x = in[0];
    const saved<T> a =
        s ? *s : saved<T>{ws.template take<T>(rows * 2 * inter), ws.template take<T>(rows * inter), nullptr};
    linear<D>{width, 2 * inter}.forward(ctx, p + gate_up, rows, x, a.gu);
    kernels<D>::swiglu(ctx, rows, inter, a.gu, a.act);
    T* fx = ws.template take<T>(rows * width);
    linear<D>{inter, width}.forward(ctx, p + down, rows, a.act, fx);
    residual_norm_forward<D>(ctx, rows, width, sh.eps, x, fx, y, a.rstd);
    ws.rewind(mark);
  }

  // dy: [rows, width] → dx (assigned); g: the gradient buffer (accumulated).
  template <class T>
  void backward(context_t<D>& ctx, const T* p, const row_shape& sh, layer_inputs<T, 1> in, const T* y,
                const saved<T>& s, const T* dy, layer_grads<T, 1> din, T* g, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const index_t rows = sh.rows;
    const T* x = in[0];
    T* dx = din[0];
    T* dsum = ws.template take<T>(rows * width);
    residual_norm_backward<D>(ctx, rows, width, y, s.rstd, dy, dsum);
    T* dact = ws.template take<T>(rows * inter);
    linear<D>{inter, width}.backward(ctx, p + down, rows, s.act, dsum, dact, g + down);
    T* dgu = ws.template take<T>(rows * 2 * inter);
    kernels<D>::swiglu_backward(ctx, rows, inter, s.gu, dact, dgu);
    kernels<D>::map(ctx, rows * width, ops::copy_fn<T>{}, dx, dsum);
    linear<D>{width, 2 * inter}.backward(ctx, p + gate_up, rows, x, dgu, dx, g + gate_up, /*accumulate_dx=*/true);
    ws.rewind(mark);
  }
};
static_assert(layer<swiglu_mlp<archetype_device>, archetype_device, float>);

ETRM_END_NAMESPACE
