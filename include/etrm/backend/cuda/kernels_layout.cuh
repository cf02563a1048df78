// SPDX-License-Identifier: Apache-2.0
// Layout CUDA kernels: batched transpose (32×32 shared-memory tiles), permute_0213, the
// qkv → heads split with rotate-half RoPE and its inverse for gradients, embedding gather and
// scatter-add (atomicAdd, so duplicate ids add up), and the row-flag kernels of ACT
// (reset_rows, select_rows). Semantics are those of backend/host/host_kernels.hpp; the
// elementwise ones loop over the flat output index, which keeps writes coalesced.
#pragma once

#include <etrm/backend/cuda/launch.cuh>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda {
namespace detail {

inline constexpr int tile_dim = 32;
inline constexpr int tile_rows = 8;

// y[b, j, i] = x[b, i, j]   x: [batch, r, c], y: [batch, c, r]; block (32, 8), one tile per step.
template <class T>
__global__ void transpose_kernel(index_t batch, index_t r, index_t c, const T* x, T* y) {
  __shared__ T tile[tile_dim][tile_dim + 1];
  const index_t tiles_r = (r + tile_dim - 1) / tile_dim, tiles_c = (c + tile_dim - 1) / tile_dim;
  const index_t tiles = batch * tiles_r * tiles_c;
  for (index_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const index_t b = t / (tiles_r * tiles_c), rest = t - b * tiles_r * tiles_c;
    const index_t i0 = (rest / tiles_c) * tile_dim, j0 = (rest % tiles_c) * tile_dim;
    const T* xb = x + b * r * c;
    T* yb = y + b * r * c;
    for (int k = threadIdx.y; k < tile_dim; k += tile_rows) {
      const index_t i = i0 + k, j = j0 + threadIdx.x;
      if (i < r && j < c) tile[k][threadIdx.x] = xb[i * c + j];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < tile_dim; k += tile_rows) {
      const index_t j = j0 + k, i = i0 + threadIdx.x;
      if (i < r && j < c) yb[j * r + i] = tile[threadIdx.x][k];
    }
    __syncthreads();
  }
}

// y[a, c, b, e] = x[a, b, c, e]; loops over the output index.
template <class I, class T>
__global__ void permute_0213_kernel(I n, I B, I C, I E, const T* x, T* y) {
  for (I o = global_thread<I>(); o < n; o += grid_stride<I>()) {
    I t = o / E;
    const I e = o - t * E;
    const I b = t % B;
    t /= B;
    const I c = t % C, a = t / C;
    y[o] = x[((index_t(a) * B + b) * C + c) * E + e];
  }
}

// Element i of rotate-half RoPE of the head vector src at position s (sign −1: inverse).
template <class I, class T>
__device__ __forceinline__ T rope_element(const T* src, const T* cos, const T* sin, I s, I d, I i, T sign) {
  if (!cos) return src[i];
  const I h = d / 2;
  const T cs = cos[index_t(s) * d + i], sn = sin[index_t(s) * d + i];
  if (i < h) return src[i] * cs - sign * src[i + h] * sn;
  return src[i] * cs + sign * src[i - h] * sn;
}

// qkv: [B, S, 3, H, d] → q, k, v: [B, H, S, d]; loops over the index of q.
template <class I, class T>
__global__ void split_heads_rope_kernel(I n, I S, I H, I d, const T* qkv, const T* cos, const T* sin, T* q, T* k,
                                        T* v) {
  for (I o = global_thread<I>(); o < n; o += grid_stride<I>()) {
    I t = o / d;
    const I i = o - t * d;
    const I s = t % S;
    t /= S;
    const I h = t % H, b = t / H;
    const T* src = qkv + ((index_t(b) * S + s) * 3 * H + h) * d;
    q[o] = rope_element(src, cos, sin, s, d, i, T(1));
    k[o] = rope_element(src + index_t(H) * d, cos, sin, s, d, i, T(1));
    v[o] = src[index_t(2) * H * d + i];
  }
}

// dq, dk, dv: [B, H, S, d] → dqkv: [B, S, 3, H, d] (assigned); every element written once.
template <class I, class T>
__global__ void merge_heads_rope_backward_kernel(I n, I S, I H, I d, const T* dq, const T* dk, const T* dv,
                                                 const T* cos, const T* sin, T* dqkv) {
  for (I o = global_thread<I>(); o < n; o += grid_stride<I>()) {
    I t = o / d;
    const I i = o - t * d;
    const I s = t % S;
    t /= S;
    const I h = t % H, b = t / H;
    T* dst = dqkv + ((index_t(b) * S + s) * 3 * H + h) * d;
    const index_t row = index_t(o) - index_t(i);
    dst[i] = rope_element(dq + row, cos, sin, s, d, i, T(-1));
    dst[index_t(H) * d + i] = rope_element(dk + row, cos, sin, s, d, i, T(-1));
    dst[index_t(2) * H * d + i] = dv[o];
  }
}

// out[b·stride + i·dim + j] = scale · table[ids[b, i], j]; loops over (b·n + i, j).
template <class I, class T>
__global__ void gather_rows_kernel(I total, I n, I dim, const std::int32_t* ids, const T* table, T scale, T* out,
                                   index_t out_batch_stride) {
  for (I o = global_thread<I>(); o < total; o += grid_stride<I>()) {
    const I bi = o / dim, j = o - bi * dim;
    const I b = bi / n, i = bi - b * n;
    out[index_t(b) * out_batch_stride + index_t(i) * dim + j] = scale * table[index_t(ids[bi]) * dim + j];
  }
}

template <class I, class T>
__global__ void scatter_add_rows_kernel(I total, I n, I dim, const std::int32_t* ids, const T* src,
                                        index_t src_batch_stride, T scale, T* table_grad) {
  for (I o = global_thread<I>(); o < total; o += grid_stride<I>()) {
    const I bi = o / dim, j = o - bi * dim;
    const I b = bi / n, i = bi - b * n;
    atomicAdd(table_grad + index_t(ids[bi]) * dim + j, scale * src[index_t(b) * src_batch_stride + index_t(i) * dim + j]);
  }
}

// zh, zl: [B, S, D]; rows of flagged sequences take h_init / l_init: [D].
template <class I, class T>
__global__ void reset_rows_kernel(I n, I S, I D, const std::uint8_t* flag, const T* h_init, const T* l_init, T* zh,
                                  T* zl) {
  for (I o = global_thread<I>(); o < n; o += grid_stride<I>()) {
    const I bs = o / D, j = o - bs * D;
    if (!flag[bs / S]) continue;
    zh[o] = h_init[j];
    zl[o] = l_init[j];
  }
}

template <class I, class V>
__global__ void select_rows_kernel(I total, I n, const std::uint8_t* flag, const V* fresh, V* current) {
  for (I o = global_thread<I>(); o < total; o += grid_stride<I>())
    if (flag[o / n]) current[o] = fresh[o];
}

}  // namespace detail

struct layout_ops {
  // y[b, j, i] = x[b, i, j]   x: [batch, r, c], y: [batch, c, r]
  template <class T>
  static void transpose(context& ctx, index_t batch, index_t r, index_t c, const T* x, T* y) {
    if (batch <= 0 || r <= 0 || c <= 0) return;
    const index_t tiles = batch * ((r + detail::tile_dim - 1) / detail::tile_dim) * ((c + detail::tile_dim - 1) / detail::tile_dim);
    detail::transpose_kernel<T><<<detail::grid_rows(tiles), dim3(detail::tile_dim, detail::tile_rows), 0, ctx.stream()>>>(
        batch, r, c, x, y);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // y[a, c, b, e] = x[a, b, c, e]   x: [A, B, C, E], y: [A, C, B, E]
  template <class T>
  static void permute_0213(context& ctx, index_t A, index_t B, index_t C, index_t E, const T* x, T* y) {
    const index_t n = A * B * C * E;
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::permute_0213_kernel<I, T>
          <<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), I(B), I(C), I(E), x, y);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // Splits fused qkv into heads and applies rotate-half RoPE to q and k (cos/sin null: none).
  // qkv: [B, S, 3, H, d]; cos, sin: [S, d]; q, k, v: [B, H, S, d]
  template <class T>
  static void split_heads_rope(context& ctx, index_t B, index_t S, index_t H, index_t d, const T* qkv, const T* cos,
                               const T* sin, T* q, T* k, T* v) {
    const index_t n = B * H * S * d;
    if (n <= 0) return;
    detail::with_index_type(3 * n, [&](auto tag) {
      using I = decltype(tag);
      detail::split_heads_rope_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(
          I(n), I(S), I(H), I(d), qkv, cos, sin, q, k, v);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // Inverse of split_heads_rope for gradients (assigns dqkv)   dq, dk, dv: [B, H, S, d]
  template <class T>
  static void merge_heads_rope_backward(context& ctx, index_t B, index_t S, index_t H, index_t d, const T* dq,
                                        const T* dk, const T* dv, const T* cos, const T* sin, T* dqkv) {
    const index_t n = B * H * S * d;
    if (n <= 0) return;
    detail::with_index_type(3 * n, [&](auto tag) {
      using I = decltype(tag);
      detail::merge_heads_rope_backward_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(
          I(n), I(S), I(H), I(d), dq, dk, dv, cos, sin, dqkv);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // out[b·stride + i·dim + j] = scale · table[ids[b, i], j]   ids: [batch, n], table: [*, dim]
  template <class T>
  static void gather_rows(context& ctx, index_t batch, index_t n, index_t dim, const std::int32_t* ids, const T* table,
                          T scale, T* out, index_t out_batch_stride) {
    const index_t total = batch * n * dim;
    if (total <= 0) return;
    detail::with_index_type(total, [&](auto tag) {
      using I = decltype(tag);
      detail::gather_rows_kernel<I, T><<<detail::grid_for(total), detail::block_threads, 0, ctx.stream()>>>(
          I(total), I(n), I(dim), ids, table, scale, out, out_batch_stride);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // table_grad[ids[b, i], j] += scale · src[b·stride + i·dim + j] (accumulates; duplicate ids
  // add up through atomicAdd, so the summation order is not fixed).
  template <class T>
  static void scatter_add_rows(context& ctx, index_t batch, index_t n, index_t dim, const std::int32_t* ids,
                               const T* src, index_t src_batch_stride, T scale, T* table_grad) {
    const index_t total = batch * n * dim;
    if (total <= 0) return;
    detail::with_index_type(total, [&](auto tag) {
      using I = decltype(tag);
      detail::scatter_add_rows_kernel<I, T><<<detail::grid_for(total), detail::block_threads, 0, ctx.stream()>>>(
          I(total), I(n), I(dim), ids, src, src_batch_stride, scale, table_grad);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // Resets rows whose flag is set to the initial states.   zh, zl: [B, S, D]; h_init, l_init: [D]
  template <class T>
  static void reset_rows(context& ctx, index_t B, index_t S, index_t D, const std::uint8_t* flag, const T* h_init,
                         const T* l_init, T* zh, T* zl) {
    const index_t n = B * S * D;
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::reset_rows_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(
          I(n), I(S), I(D), flag, h_init, l_init, zh, zl);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // current[b, :] = fresh[b, :] where flag[b]   fresh, current: [B, n]; any element type V
  template <class V>
  static void select_rows(context& ctx, index_t B, index_t n, const std::uint8_t* flag, const V* fresh, V* current) {
    const index_t total = B * n;
    if (total <= 0) return;
    detail::with_index_type(total, [&](auto tag) {
      using I = decltype(tag);
      detail::select_rows_kernel<I, V>
          <<<detail::grid_for(total), detail::block_threads, 0, ctx.stream()>>>(I(total), I(n), flag, fresh, current);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }
};

}  // namespace backend::cuda
ETRM_END_NAMESPACE
