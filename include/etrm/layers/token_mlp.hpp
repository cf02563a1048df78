// SPDX-License-Identifier: Apache-2.0
// TRM's `mlp_t` token mixer (trm-computation.md §1.6): transpose [B, S, D] → [B, D, S], apply a SwiGLU
// MLP over the sequence axis with its post-norm residual (so the RMSNorm runs over S), and
// transpose back. Weights: gate_up [2·It, S], down [S, It]. A layer (contract.hpp) of arity 1
// with seq_shape; the RoPE tables are not read.
#pragma once

#include <etrm/layers/contract.hpp>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/swiglu_mlp.hpp>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

template <class D>
struct token_mlp_mixer : sequence_layer_sizes {
  swiglu_mlp<D> mlp;  // width S, intermediate It

  template <class T>
  struct saved {
    T* xt;  // [B, D, S]
    T* yt;  // [B, D, S]
    typename swiglu_mlp<D>::template saved<T> mlp;
  };
  template <class T>
  void take(saved<T>& s, workspace<D>& ws, const seq_shape<T>& sh) const {
    const index_t n = sh.dims.tokens() * sh.dims.width;
    s.xt = ws.template take<T>(n);
    s.yt = ws.template take<T>(n);
    mlp.take(s.mlp, ws, rows(sh.dims));
  }

  template <class T>
  void forward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 1> in, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const layer_dims& d = sh.dims;
    const index_t n = d.tokens() * d.width;
    T* xt = s ? s->xt : ws.template take<T>(n);
    T* yt = s ? s->yt : ws.template take<T>(n);
    kernels<D>::transpose(ctx, d.batch, d.seq, d.width, in[0], xt);
    mlp.forward(ctx, p, rows(d), {xt}, yt, s ? &s->mlp : nullptr, ws);
    kernels<D>::transpose(ctx, d.batch, d.width, d.seq, yt, y);
    ws.rewind(mark);
  }

  template <class T>
  void backward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 1>, const T*, const saved<T>& s,
                const T* dy, layer_grads<T, 1> din, T* g, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const layer_dims& d = sh.dims;
    const index_t n = d.tokens() * d.width;
    T *dyt = ws.template take<T>(n), *dxt = ws.template take<T>(n);
    kernels<D>::transpose(ctx, d.batch, d.seq, d.width, dy, dyt);
    mlp.backward(ctx, p, rows(d), {s.xt}, s.yt, s.mlp, dyt, {dxt}, g, ws);
    kernels<D>::transpose(ctx, d.batch, d.width, d.seq, dxt, din[0]);
    ws.rewind(mark);
  }

 private:
  // The SwiGLU runs over the B·D transposed rows of length S.
  static row_shape rows(const layer_dims& d) { return {d.batch * d.width, d.eps}; }
};
static_assert(layer<token_mlp_mixer<archetype_device>, archetype_device, float>);

ETRM_END_NAMESPACE
