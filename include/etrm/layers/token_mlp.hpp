// SPDX-License-Identifier: Apache-2.0
// TRM's `mlp_t` token mixer (trm-computation.md §1.6): transpose [B, S, D] → [B, D, S], apply a SwiGLU
// MLP over the sequence axis with its post-norm residual (so the RMSNorm runs over S), and
// transpose back. Weights: gate_up [2·It, S], down [S, It]. backward assigns dx.
#pragma once

#include <type_traits>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/rope.hpp>
#include <etrm/layers/swiglu_mlp.hpp>

ETRM_BEGIN_NAMESPACE

template <class D>
struct token_mlp_mixer {
  swiglu_mlp<D> mlp;  // width S, intermediate It

  template <class T>
  struct saved {
    T* xt;  // [B, D, S]
    T* yt;  // [B, D, S]
    typename swiglu_mlp<D>::template saved<T> mlp;
  };
  template <class T>
  saved<T> take(workspace<D>& ws, const layer_dims& d) const {
    const index_t n = d.tokens() * d.D;
    saved<T> s{ws.template take<T>(n), ws.template take<T>(n), {}};
    s.mlp = mlp.template take<T>(ws, d.B * d.D);
    return s;
  }

  template <class T>
  void forward(context_t<D>& ctx, const T* p, const layer_dims& d, rope_view<T>, const T* x, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const index_t n = d.tokens() * d.D;
    T* xt = s ? s->xt : ws.template take<T>(n);
    T* yt = s ? s->yt : ws.template take<T>(n);
    kernels<D>::transpose(ctx, d.B, d.S, d.D, x, xt);
    mlp.forward(ctx, p, d.B * d.D, d.eps, xt, yt, s ? &s->mlp : nullptr, ws);
    kernels<D>::transpose(ctx, d.B, d.D, d.S, yt, y);
    ws.rewind(mark);
  }

  template <class T>
  void backward(context_t<D>& ctx, const T* p, const layer_dims& d, rope_view<T>, const T*, const T*,
                const saved<T>& s, const T* dy, T* dx, T* g, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const index_t n = d.tokens() * d.D;
    T *dyt = ws.template take<T>(n), *dxt = ws.template take<T>(n);
    kernels<D>::transpose(ctx, d.B, d.S, d.D, dy, dyt);
    mlp.backward(ctx, p, d.B * d.D, s.xt, s.yt, s.mlp, dyt, dxt, g, ws);
    kernels<D>::transpose(ctx, d.B, d.D, d.S, dxt, dx);
    ws.rewind(mark);
  }
};

ETRM_END_NAMESPACE
