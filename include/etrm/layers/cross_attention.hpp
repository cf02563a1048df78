// SPDX-License-Identifier: Apache-2.0
// Multi-head cross-attention with a key mask and TRM's post-norm residual:
//   y = rms_norm(xq + o_proj(attn(q_proj(xq), k_proj(xkv), v_proj(xkv)) + key_bias))
// xq: [B, Sq, D] (queries and residual), xkv: [B, Sk, D], key_bias: [B, Sk] added to every
// head's scores (0 keeps a key, −1e9 masks it), y: [B, Sq, D]. Weights [D, D] each, no biases.
// The demonstration encoder uses it to aggregate demo tokens into context tokens.
// A layer (contract.hpp) of arity 2, inputs (xq, xkv), with cross_shape.
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/core/params.hpp>
#include <etrm/layers/contract.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

struct cross_dims {
  index_t batch = 0, queries = 0, keys = 0, width = 0, heads = 0;
  double eps = 1e-5;
  index_t head_dim() const { return width / heads; }
};

template <class T>
struct cross_shape {
  cross_dims dims;
  const T* key_bias = nullptr;  // [B, Sk], null: every key kept
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

  static constexpr std::size_t arity = 2;
  template <class T>
  using shape = cross_shape<T>;
  template <class T>
  std::array<index_t, 2> input_sizes(const cross_shape<T>& sh) const {
    const cross_dims& d = sh.dims;
    return {d.batch * d.queries * d.width, d.batch * d.keys * d.width};
  }
  template <class T>
  index_t output_size(const cross_shape<T>& sh) const { return sh.dims.batch * sh.dims.queries * sh.dims.width; }

  template <class T>
  struct saved {
    T *qh, *kh, *vh;  // [B, H, S·, hd]
    T* p;             // [B·H, Sq, Sk]
    T* om;            // [B, Sq, D]
    T* rstd;          // [B·Sq]
  };
  template <class T>
  void take(saved<T>& s, workspace<D>& ws, const cross_shape<T>& sh) const {
    const cross_dims& d = sh.dims;
    const index_t nq = d.batch * d.queries * d.width, nk = d.batch * d.keys * d.width;
    s = {ws.template take<T>(nq), ws.template take<T>(nk), ws.template take<T>(nk),
         ws.template take<T>(d.batch * d.heads * d.queries * d.keys), ws.template take<T>(nq),
         ws.template take<T>(d.batch * d.queries)};
  }

  // inputs (xq [B, Sq, D], xkv [B, Sk, D]) → y [B, Sq, D]
  template <class T>
  void forward(context_t<D>& ctx, const T* p, const cross_shape<T>& sh, layer_inputs<T, 2> in, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const saved<T> a = saved_or_scratch<T>(*this, s, ws, sh);
    const cross_dims& d = sh.dims;
    const T *xq = in[0], *xkv = in[1];
    const index_t B = d.batch, Sq = d.queries, Sk = d.keys, width = d.width, H = d.heads, hd = d.head_dim();
    const index_t Nq = B * Sq, Nk = B * Sk, BH = B * H;
    T* tmp = ws.template take<T>(std::max(Nq, Nk) * width);
    linear<D>{width, width}.forward(ctx, p + q, Nq, xq, tmp);
    K::permute_0213(ctx, B, Sq, H, hd, tmp, a.qh);
    linear<D>{width, width}.forward(ctx, p + k, Nk, xkv, tmp);
    K::permute_0213(ctx, B, Sk, H, hd, tmp, a.kh);
    linear<D>{width, width}.forward(ctx, p + v, Nk, xkv, tmp);
    K::permute_0213(ctx, B, Sk, H, hd, tmp, a.vh);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    K::gemm(ctx, false, true, Sq, Sk, hd, scale, a.qh, hd, Sq * hd, a.kh, hd, Sk * hd, T(0), a.p, Sk, Sq * Sk, BH);
    if (sh.key_bias) K::add_row_bias(ctx, BH * Sq, Sk, H * Sq, sh.key_bias, a.p);
    K::row_softmax(ctx, BH * Sq, Sk, a.p, a.p);
    K::gemm(ctx, false, false, Sq, hd, Sk, T(1), a.p, Sk, Sq * Sk, a.vh, hd, Sk * hd, T(0), tmp, hd, Sq * hd, BH);
    K::permute_0213(ctx, B, H, Sq, hd, tmp, a.om);
    linear<D>{width, width}.forward(ctx, p + o, Nq, a.om, tmp);
    residual_norm_forward<D>(ctx, Nq, width, d.eps, xq, tmp, y, a.rstd);
    ws.rewind(mark);
  }

  // dy → (dxq, dxkv), both assigned; g accumulated.
  template <class T>
  void backward(context_t<D>& ctx, const T* p, const cross_shape<T>& sh, layer_inputs<T, 2> in, const T* y,
                const saved<T>& s, const T* dy, layer_grads<T, 2> din, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const cross_dims& d = sh.dims;
    const T *xq = in[0], *xkv = in[1];
    T *dxq = din[0], *dxkv = din[1];
    const index_t B = d.batch, Sq = d.queries, Sk = d.keys, width = d.width, H = d.heads, hd = d.head_dim();
    const index_t Nq = B * Sq, Nk = B * Sk, BH = B * H;
    T* dsum = ws.template take<T>(Nq * width);
    residual_norm_backward<D>(ctx, Nq, width, y, s.rstd, dy, dsum);
    T* dom = ws.template take<T>(Nq * width);
    linear<D>{width, width}.backward(ctx, p + o, Nq, s.om, dsum, dom, g + o);
    T* doh = ws.template take<T>(Nq * width);
    K::permute_0213(ctx, B, Sq, H, hd, dom, doh);
    T* dp = ws.template take<T>(BH * Sq * Sk);
    K::gemm(ctx, false, true, Sq, Sk, hd, T(1), doh, hd, Sq * hd, s.vh, hd, Sk * hd, T(0), dp, Sk, Sq * Sk, BH);
    T* dvh = ws.template take<T>(Nk * width);
    K::gemm(ctx, true, false, Sk, hd, Sq, T(1), s.p, Sk, Sq * Sk, doh, hd, Sq * hd, T(0), dvh, hd, Sk * hd, BH);
    K::row_softmax_backward(ctx, BH * Sq, Sk, s.p, dp, dp);
    const T scale = T(1.0 / std::sqrt(double(hd)));
    T* dqh = doh;  // doh is no longer needed
    K::gemm(ctx, false, false, Sq, hd, Sk, scale, dp, Sk, Sq * Sk, s.kh, hd, Sk * hd, T(0), dqh, hd, Sq * hd, BH);
    T* dkh = ws.template take<T>(Nk * width);
    K::gemm(ctx, true, false, Sk, hd, Sq, scale, dp, Sk, Sq * Sk, s.qh, hd, Sq * hd, T(0), dkh, hd, Sk * hd, BH);
    // Back from heads to [B, S, D], then through the projections.
    K::permute_0213(ctx, B, H, Sq, hd, dqh, dom);
    K::map(ctx, Nq * width, ops::copy_fn<T>{}, dxq, dsum);
    linear<D>{width, width}.backward(ctx, p + q, Nq, xq, dom, dxq, g + q, /*accumulate_dx=*/true);
    T* dk = ws.template take<T>(Nk * width);
    K::permute_0213(ctx, B, H, Sk, hd, dkh, dk);
    linear<D>{width, width}.backward(ctx, p + k, Nk, xkv, dk, dxkv, g + k);
    K::permute_0213(ctx, B, H, Sk, hd, dvh, dk);
    linear<D>{width, width}.backward(ctx, p + v, Nk, xkv, dk, dxkv, g + v, /*accumulate_dx=*/true);
    ws.rewind(mark);
  }
};
static_assert(layer<cross_attention<archetype_device>, archetype_device, float>);

ETRM_END_NAMESPACE
