// SPDX-License-Identifier: Apache-2.0
// SwiGLU MLP sub-layer with its post-norm residual: y = rms_norm(x + down(silu(gate) ⊙ up)).
// Used over channels ([rows = B·S, width = D]) and, by the mlp_t token mixer, over the
// sequence axis ([rows = B·D, width = S]). Weights: gate_up [2·I, width], down [width, I].
// backward assigns dx and accumulates dW.
#pragma once

#include <type_traits>
#include <etrm/core/arena.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>

ETRM_BEGIN_NAMESPACE

template <class D>
struct swiglu_mlp {
  index_t width = 0, inter = 0;
  index_t gate_up = 0, down = 0;  // parameter offsets

  // Activations kept for backward; the output y itself is kept by the caller.
  template <class T>
  struct saved {
    T* gu = nullptr;    // [rows, 2I]
    T* act = nullptr;   // [rows, I]
    T* rstd = nullptr;  // [rows]
  };
  template <class T>
  saved<T> take(workspace<D>& ws, index_t rows) const {
    return {ws.template take<T>(rows * 2 * inter), ws.template take<T>(rows * inter), ws.template take<T>(rows)};
  }

  // x: [rows, width] → y: [rows, width]. s == nullptr: the no-grad path, scratch only.
  template <class T>
  void forward(context_t<D>& ctx, const T* p, index_t rows, double eps, const T* x, T* y, std::type_identity_t<const saved<T>*> s,
               workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const saved<T> a = s ? *s : saved<T>{ws.template take<T>(rows * 2 * inter), ws.template take<T>(rows * inter), nullptr};
    linear<D>{width, 2 * inter}.forward(ctx, p + gate_up, rows, x, a.gu);
    kernels<D>::swiglu(ctx, rows, inter, a.gu, a.act);
    T* fx = ws.template take<T>(rows * width);
    linear<D>{inter, width}.forward(ctx, p + down, rows, a.act, fx);
    residual_norm_forward<D>(ctx, rows, width, eps, x, fx, y, a.rstd);
    ws.rewind(mark);
  }

  // dy: [rows, width] → dx (assigned); g: the gradient buffer (accumulated).
  template <class T>
  void backward(context_t<D>& ctx, const T* p, index_t rows, const T* x, const T* y, const saved<T>& s, const T* dy, T* dx, T* g,
                workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
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

ETRM_END_NAMESPACE
