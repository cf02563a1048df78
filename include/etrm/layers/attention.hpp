// SPDX-License-Identifier: Apache-2.0
// Non-causal multi-head self-attention token mixer with fused QKV and RoPE, followed by TRM's
// post-norm residual (trm-computation.md §1.4, §1.6): h1 = rms_norm(x + o_proj(attn(qkv_proj(x)))).
// Weights: qkv [3·D, D] split as [q heads, k heads, v heads], o [D, D]; no biases.
// Scores use strided-batched GEMMs over B·H heads; probabilities are kept for backward.
// A layer (contract.hpp) of arity 1 with seq_shape.
#pragma once

#include <cmath>
#include <etrm/core/arena.hpp>
#include <etrm/layers/contract.hpp>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>
#include <etrm/layers/rope.hpp>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

template <class D>
struct attention_mixer : sequence_layer_sizes {
  index_t qkv = 0, o = 0;  // parameter offsets

  template <class T>
  struct saved {
    T *q, *k, *v;  // [B, H, S, hd]
    T* p;          // [B·H, S, S] attention probabilities
    T* om;         // [B, S, H·hd] merged head outputs
    T* rstd;       // [B·S]
  };
  template <class T>
  void take(saved<T>& s, workspace<D>& ws, const seq_shape<T>& sh) const {
    const layer_dims& d = sh.dims;
    const index_t n = d.tokens() * d.width;
    s = {ws.template take<T>(n), ws.template take<T>(n),
         ws.template take<T>(n), ws.template take<T>(d.batch * d.heads * d.seq * d.seq),
         ws.template take<T>(n), ws.template take<T>(d.tokens())};
  }

  // x: [B, S, D] → y: [B, S, D]
  template <class T>
  void forward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 1> in, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const saved<T> a = saved_or_scratch<T>(*this, s, ws, sh);
    const layer_dims& d = sh.dims;
    const T* x = in[0];
    const index_t N = d.tokens(), S = d.seq, width = d.width, hd = d.head_dim(), BH = d.batch * d.heads;
    T* qkv_out = ws.template take<T>(N * 3 * width);
    linear<D>{width, 3 * width}.forward(ctx, p + qkv, N, x, qkv_out);
    K::split_heads_rope(ctx, d.batch, S, d.heads, hd, qkv_out, sh.rope.cos, sh.rope.sin, a.q, a.k, a.v);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    K::gemm(ctx, false, true, S, S, hd, scale, a.q, hd, S * hd, a.k, hd, S * hd, T(0), a.p, S, S * S, BH);
    K::row_softmax(ctx, BH * S, S, a.p, a.p);
    T* o_heads = qkv_out;  // [B, H, S, hd], reusing the qkv scratch
    K::gemm(ctx, false, false, S, hd, S, T(1), a.p, S, S * S, a.v, hd, S * hd, T(0), o_heads, hd, S * hd, BH);
    K::permute_0213(ctx, d.batch, d.heads, S, hd, o_heads, a.om);
    T* fx = ws.template take<T>(N * width);
    linear<D>{width, width}.forward(ctx, p + o, N, a.om, fx);
    residual_norm_forward<D>(ctx, N, width, d.eps, x, fx, y, a.rstd);
    ws.rewind(mark);
  }

  // dy: [B, S, D] → dx (assigned); g accumulated.
  template <class T>
  void backward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 1> in, const T* y,
                const saved<T>& s, const T* dy, layer_grads<T, 1> din, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const layer_dims& d = sh.dims;
    const T* x = in[0];
    T* dx = din[0];
    const index_t N = d.tokens(), S = d.seq, width = d.width, hd = d.head_dim(), BH = d.batch * d.heads;
    T* dsum = ws.template take<T>(N * width);
    residual_norm_backward<D>(ctx, N, width, y, s.rstd, dy, dsum);
    T* dom = ws.template take<T>(N * width);
    linear<D>{width, width}.backward(ctx, p + o, N, s.om, dsum, dom, g + o);
    T* doh = ws.template take<T>(N * width);  // [B, H, S, hd]
    K::permute_0213(ctx, d.batch, S, d.heads, hd, dom, doh);
    T* dp = ws.template take<T>(BH * S * S);
    K::gemm(ctx, false, true, S, S, hd, T(1), doh, hd, S * hd, s.v, hd, S * hd, T(0), dp, S, S * S, BH);
    T *dq = ws.template take<T>(N * width), *dk = ws.template take<T>(N * width), *dv = dom;
    K::gemm(ctx, true, false, S, hd, S, T(1), s.p, S, S * S, doh, hd, S * hd, T(0), dv, hd, S * hd, BH);
    K::row_softmax_backward(ctx, BH * S, S, s.p, dp, dp);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    K::gemm(ctx, false, false, S, hd, S, scale, dp, S, S * S, s.k, hd, S * hd, T(0), dq, hd, S * hd, BH);
    K::gemm(ctx, true, false, S, hd, S, scale, dp, S, S * S, s.q, hd, S * hd, T(0), dk, hd, S * hd, BH);
    T* dqkv = ws.template take<T>(N * 3 * width);
    K::merge_heads_rope_backward(ctx, d.batch, S, d.heads, hd, dq, dk, dv, sh.rope.cos, sh.rope.sin, dqkv);
    K::map(ctx, N * width, ops::copy_fn<T>{}, dx, dsum);
    linear<D>{width, 3 * width}.backward(ctx, p + qkv, N, x, dqkv, dx, g + qkv, /*accumulate_dx=*/true);
    ws.rewind(mark);
  }
};
static_assert(layer<attention_mixer<archetype_device>, archetype_device, float>);

ETRM_END_NAMESPACE
