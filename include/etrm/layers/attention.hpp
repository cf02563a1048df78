// SPDX-License-Identifier: Apache-2.0
// Non-causal multi-head self-attention token mixer with fused QKV and RoPE, followed by TRM's
// post-norm residual (trm-computation.md §1.4, §1.6): h1 = rms_norm(x + o_proj(attn(qkv_proj(x)))).
// Weights: qkv [3·D, D] split as [q heads, k heads, v heads], o [D, D]; no biases.
// Scores use strided-batched GEMMs over B·H heads; probabilities are kept for backward.
// backward assigns dx and accumulates dW.
#pragma once

#include <type_traits>
#include <etrm/core/arena.hpp>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>
#include <etrm/layers/rope.hpp>

#include <cmath>

ETRM_BEGIN_NAMESPACE

template <class D>
struct attention_mixer {
  index_t qkv = 0, o = 0;  // parameter offsets

  template <class T>
  struct saved {
    T *q, *k, *v;  // [B, H, S, hd]
    T* p;          // [B·H, S, S] attention probabilities
    T* om;         // [B, S, H·hd] merged head outputs
    T* rstd;       // [B·S]
  };
  template <class T>
  saved<T> take(workspace<D>& ws, const layer_dims& d) const {
    const index_t n = d.tokens() * d.D;
    return {ws.template take<T>(n), ws.template take<T>(n), ws.template take<T>(n),
            ws.template take<T>(d.B * d.H * d.S * d.S), ws.template take<T>(n), ws.template take<T>(d.tokens())};
  }

  // x: [B, S, D] → y: [B, S, D]
  template <class T>
  void forward(context_t<D>& ctx, const T* p, const layer_dims& d, rope_view<T> rope, const T* x, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const saved<T> a = s ? *s : take<T>(ws, d);
    const index_t N = d.tokens(), S = d.S, hd = d.hd, BH = d.B * d.H;
    T* qkv_out = ws.template take<T>(N * 3 * d.D);
    linear<D>{d.D, 3 * d.D}.forward(ctx, p + qkv, N, x, qkv_out);
    K::split_heads_rope(ctx, d.B, S, d.H, hd, qkv_out, rope.cos, rope.sin, a.q, a.k, a.v);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    K::gemm(ctx, false, true, S, S, hd, scale, a.q, hd, S * hd, a.k, hd, S * hd, T(0), a.p, S, S * S, BH);
    K::row_softmax(ctx, BH * S, S, a.p, a.p);
    T* o_heads = qkv_out;  // [B, H, S, hd], reusing the qkv scratch
    K::gemm(ctx, false, false, S, hd, S, T(1), a.p, S, S * S, a.v, hd, S * hd, T(0), o_heads, hd, S * hd, BH);
    K::permute_0213(ctx, d.B, d.H, S, hd, o_heads, a.om);
    T* fx = ws.template take<T>(N * d.D);
    linear<D>{d.D, d.D}.forward(ctx, p + o, N, a.om, fx);
    residual_norm_forward<D>(ctx, N, d.D, d.eps, x, fx, y, a.rstd);
    ws.rewind(mark);
  }

  // dy: [B, S, D] → dx (assigned); g accumulated.
  template <class T>
  void backward(context_t<D>& ctx, const T* p, const layer_dims& d, rope_view<T> rope, const T* x, const T* y,
                const saved<T>& s, const T* dy, T* dx, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const index_t N = d.tokens(), S = d.S, hd = d.hd, BH = d.B * d.H;
    T* dsum = ws.template take<T>(N * d.D);
    residual_norm_backward<D>(ctx, N, d.D, y, s.rstd, dy, dsum);
    T* dom = ws.template take<T>(N * d.D);
    linear<D>{d.D, d.D}.backward(ctx, p + o, N, s.om, dsum, dom, g + o);
    T* doh = ws.template take<T>(N * d.D);  // [B, H, S, hd]
    K::permute_0213(ctx, d.B, S, d.H, hd, dom, doh);
    T* dp = ws.template take<T>(BH * S * S);
    K::gemm(ctx, false, true, S, S, hd, T(1), doh, hd, S * hd, s.v, hd, S * hd, T(0), dp, S, S * S, BH);
    T *dq = ws.template take<T>(N * d.D), *dk = ws.template take<T>(N * d.D), *dv = dom;
    K::gemm(ctx, true, false, S, hd, S, T(1), s.p, S, S * S, doh, hd, S * hd, T(0), dv, hd, S * hd, BH);
    K::row_softmax_backward(ctx, BH * S, S, s.p, dp, dp);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    K::gemm(ctx, false, false, S, hd, S, scale, dp, S, S * S, s.k, hd, S * hd, T(0), dq, hd, S * hd, BH);
    K::gemm(ctx, true, false, S, hd, S, scale, dp, S, S * S, s.q, hd, S * hd, T(0), dk, hd, S * hd, BH);
    T* dqkv = ws.template take<T>(N * 3 * d.D);
    K::merge_heads_rope_backward(ctx, d.B, S, d.H, hd, dq, dk, dv, rope.cos, rope.sin, dqkv);
    K::map(ctx, N * d.D, ops::copy_fn<T>{}, dx, dsum);
    linear<D>{d.D, 3 * d.D}.backward(ctx, p + qkv, N, x, dqkv, dx, g + qkv, /*accumulate_dx=*/true);
    ws.rewind(mark);
  }
};

ETRM_END_NAMESPACE
