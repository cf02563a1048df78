// SPDX-License-Identifier: Apache-2.0
// Multi-head cross-attention with a key mask and TRM's post-norm residual:
//   y = rms_norm(xq + o_proj(attn(q_proj(xq), k_proj(xkv), v_proj(xkv)) + key_bias))
// xq: [B, Sq, D] (queries and residual), xkv: [B, Sk, D], key_bias: [B, Sk] added to every
// head's scores (0 keeps a key, −1e9 masks it), y: [B, Sq, D]. Weights [D, D] each, no biases.
// The demonstration encoder uses it to aggregate demo tokens into context tokens.
// backward assigns dxq and dxkv and accumulates dW.
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/core/params.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>

#include <cmath>
#include <string>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

struct cross_dims {
  index_t B = 0, Sq = 0, Sk = 0, D = 0, H = 0;
  double eps = 1e-5;
  index_t hd() const { return D / H; }
};

template <class D>
struct cross_attention {
  index_t q = 0, k = 0, v = 0, o = 0;  // parameter offsets

  // matching_init: k_proj starts as a copy of q_proj, so W_qᵀW_k ≈ I at the start and a query
  // attends most to the keys most like itself (mimetic initialisation, Trockman & Kolter 2023),
  // instead of having to discover that match from a flat start.
  static cross_attention declare(param_layout& l, const std::string& prefix, index_t width, bool matching_init = false) {
    const init_spec init = init_spec::trunc_normal(1.0 / std::sqrt(double(width)));
    cross_attention a;
    a.q = l.add(prefix + "q_proj.weight", {width, width}, init).offset;
    a.k = l.add(prefix + "k_proj.weight", {width, width}, matching_init ? init_spec::copy_of(prefix + "q_proj.weight") : init).offset;
    a.v = l.add(prefix + "v_proj.weight", {width, width}, init).offset;
    a.o = l.add(prefix + "o_proj.weight", {width, width}, init).offset;
    return a;
  }

  template <class T>
  struct saved {
    T *qh, *kh, *vh;  // [B, H, S·, hd]
    T* p;             // [B·H, Sq, Sk]
    T* om;            // [B, Sq, D]
    T* rstd;          // [B·Sq]
  };
  template <class T>
  saved<T> take(workspace<D>& ws, const cross_dims& d) const {
    const index_t nq = d.B * d.Sq * d.D, nk = d.B * d.Sk * d.D;
    return {ws.template take<T>(nq), ws.template take<T>(nk), ws.template take<T>(nk),
            ws.template take<T>(d.B * d.H * d.Sq * d.Sk), ws.template take<T>(nq), ws.template take<T>(d.B * d.Sq)};
  }

  template <class T>
  void forward(context_t<D>& ctx, const T* p, const cross_dims& d, const T* xq, const T* xkv, const T* key_bias, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const saved<T> a = s ? *s : take<T>(ws, d);
    const index_t hd = d.hd(), Nq = d.B * d.Sq, Nk = d.B * d.Sk, BH = d.B * d.H;
    T* tmp = ws.template take<T>(std::max(Nq, Nk) * d.D);
    linear<D>{d.D, d.D}.forward(ctx, p + q, Nq, xq, tmp);
    K::permute_0213(ctx, d.B, d.Sq, d.H, hd, tmp, a.qh);
    linear<D>{d.D, d.D}.forward(ctx, p + k, Nk, xkv, tmp);
    K::permute_0213(ctx, d.B, d.Sk, d.H, hd, tmp, a.kh);
    linear<D>{d.D, d.D}.forward(ctx, p + v, Nk, xkv, tmp);
    K::permute_0213(ctx, d.B, d.Sk, d.H, hd, tmp, a.vh);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    K::gemm(ctx, false, true, d.Sq, d.Sk, hd, scale, a.qh, hd, d.Sq * hd, a.kh, hd, d.Sk * hd, T(0), a.p, d.Sk,
            d.Sq * d.Sk, BH);
    if (key_bias) K::add_row_bias(ctx, BH * d.Sq, d.Sk, d.H * d.Sq, key_bias, a.p);
    K::row_softmax(ctx, BH * d.Sq, d.Sk, a.p, a.p);
    K::gemm(ctx, false, false, d.Sq, hd, d.Sk, T(1), a.p, d.Sk, d.Sq * d.Sk, a.vh, hd, d.Sk * hd, T(0), tmp, hd,
            d.Sq * hd, BH);
    K::permute_0213(ctx, d.B, d.H, d.Sq, hd, tmp, a.om);
    linear<D>{d.D, d.D}.forward(ctx, p + o, Nq, a.om, tmp);
    residual_norm_forward<D>(ctx, Nq, d.D, d.eps, xq, tmp, y, a.rstd);
    ws.rewind(mark);
  }

  template <class T>
  void backward(context_t<D>& ctx, const T* p, const cross_dims& d, const T* xq, const T* xkv, const T* y,
                const saved<T>& s, const T* dy, T* dxq, T* dxkv, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const index_t hd = d.hd(), Nq = d.B * d.Sq, Nk = d.B * d.Sk, BH = d.B * d.H;
    T* dsum = ws.template take<T>(Nq * d.D);
    residual_norm_backward<D>(ctx, Nq, d.D, y, s.rstd, dy, dsum);
    T* dom = ws.template take<T>(Nq * d.D);
    linear<D>{d.D, d.D}.backward(ctx, p + o, Nq, s.om, dsum, dom, g + o);
    T* doh = ws.template take<T>(Nq * d.D);
    K::permute_0213(ctx, d.B, d.Sq, d.H, hd, dom, doh);
    T* dp = ws.template take<T>(BH * d.Sq * d.Sk);
    K::gemm(ctx, false, true, d.Sq, d.Sk, hd, T(1), doh, hd, d.Sq * hd, s.vh, hd, d.Sk * hd, T(0), dp, d.Sk,
            d.Sq * d.Sk, BH);
    T* dvh = ws.template take<T>(Nk * d.D);
    K::gemm(ctx, true, false, d.Sk, hd, d.Sq, T(1), s.p, d.Sk, d.Sq * d.Sk, doh, hd, d.Sq * hd, T(0), dvh, hd,
            d.Sk * hd, BH);
    K::row_softmax_backward(ctx, BH * d.Sq, d.Sk, s.p, dp, dp);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    T* dqh = doh;  // doh is no longer needed
    K::gemm(ctx, false, false, d.Sq, hd, d.Sk, scale, dp, d.Sk, d.Sq * d.Sk, s.kh, hd, d.Sk * hd, T(0), dqh, hd,
            d.Sq * hd, BH);
    T* dkh = ws.template take<T>(Nk * d.D);
    K::gemm(ctx, true, false, d.Sk, hd, d.Sq, scale, dp, d.Sk, d.Sq * d.Sk, s.qh, hd, d.Sq * hd, T(0), dkh, hd,
            d.Sk * hd, BH);
    // Back from heads to [B, S, D], then through the projections.
    K::permute_0213(ctx, d.B, d.H, d.Sq, hd, dqh, dom);
    K::map(ctx, Nq * d.D, ops::copy_fn<T>{}, dxq, dsum);
    linear<D>{d.D, d.D}.backward(ctx, p + q, Nq, xq, dom, dxq, g + q, /*accumulate_dx=*/true);
    T* dk = ws.template take<T>(Nk * d.D);
    K::permute_0213(ctx, d.B, d.H, d.Sk, hd, dkh, dk);
    linear<D>{d.D, d.D}.backward(ctx, p + k, Nk, xkv, dk, dxkv, g + k);
    K::permute_0213(ctx, d.B, d.H, d.Sk, hd, dvh, dk);
    linear<D>{d.D, d.D}.backward(ctx, p + v, Nk, xkv, dk, dxkv, g + v, /*accumulate_dx=*/true);
    ws.rewind(mark);
  }
};

ETRM_END_NAMESPACE
