// SPDX-License-Identifier: Apache-2.0
// Elementwise CUDA kernels: fill, map (any ETRM_HD functor, 1–3 inputs), for_each (an ETRM_HD
// functor of the index), SwiGLU and its backward, strided 2-D copy, and the optimizer updates
// (AdamATan2, AdamW, EMA). Semantics, shapes and argument order are those of
// backend/host/host_kernels.hpp. All loops are grid-stride loops over the flat element index.
#pragma once

#include <etrm/backend/cuda/launch.cuh>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda {
namespace detail {

template <class I, class T>
__global__ void fill_kernel(I n, T v, T* x) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) x[i] = v;
}

template <class I, class T, class F, class... In>
__global__ void map_kernel(I n, F f, T* out, const In*... in) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) out[i] = f(in[i]...);
}

template <class I, class F>
__global__ void for_each_kernel(I n, F f) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) f(index_t(i));
}

// gu: [rows, 2·inter] as [gate | up]; h: [rows, inter]
template <class I, class T>
__global__ void swiglu_kernel(I n, I inter, const T* gu, T* h) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) {
    const I r = i / inter, c = i - r * inter;
    const T g = gu[r * 2 * inter + c], u = gu[r * 2 * inter + inter + c];
    h[i] = g / (T(1) + dexp(-g)) * u;
  }
}

template <class I, class T>
__global__ void swiglu_backward_kernel(I n, I inter, const T* gu, const T* dh, T* dgu) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) {
    const I r = i / inter, c = i - r * inter;
    const T g = gu[r * 2 * inter + c], u = gu[r * 2 * inter + inter + c];
    const T sig = T(1) / (T(1) + dexp(-g));
    const T d = dh[i];
    dgu[r * 2 * inter + c] = d * u * sig * (T(1) + g * (T(1) - sig));
    dgu[r * 2 * inter + inter + c] = d * g * sig;
  }
}

template <class I, class T>
__global__ void copy_2d_kernel(I n, I cols, const T* src, index_t src_stride, T* dst, index_t dst_stride, T scale) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) {
    const I r = i / cols, c = i - r * cols;
    dst[index_t(r) * dst_stride + index_t(c)] = scale == T(0) ? T(0) : scale * src[index_t(r) * src_stride + index_t(c)];
  }
}

template <class I, class T>
__global__ void adam_atan2_kernel(I n, T* p, const T* g, T* m, T* v, T lr, T wd, T b1, T b2, T bc1, T bc2) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) {
    const T gi = g[i];
    T pi = p[i] * (T(1) - lr * wd);
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    pi -= lr / bc1 * datan2(mi, dsqrt(vi) / dsqrt(bc2));
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

template <class I, class T>
__global__ void adamw_kernel(I n, T* p, const T* g, T* m, T* v, T lr, T wd, T b1, T b2, T bc1, T bc2, T eps) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) {
    const T gi = g[i];
    T pi = p[i] * (T(1) - lr * wd);
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    pi -= lr * (mi / bc1) / (dsqrt(vi / bc2) + eps);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

template <class I, class T>
__global__ void ema_kernel(I n, const T* p, T* shadow, T rate) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) shadow[i] = rate * shadow[i] + (T(1) - rate) * p[i];
}

}  // namespace detail

struct elementwise_ops {
  // x[i] = v   x: [n]
  template <class T>
  static void fill(context& ctx, index_t n, T v, T* x) {
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::fill_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), v, x);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // out[i] = f(a[i], ...)   all: [n]; out may alias an input. F must be callable on the device.
  template <class T, class F, class... In>
  static void map(context& ctx, index_t n, F f, T* out, const In*... in) {
    static_assert(sizeof...(In) >= 1 && sizeof...(In) <= 3, "map takes 1 to 3 inputs");
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::map_kernel<I, T, F, In...><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), f, out,
                                                                                                       in...);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // f(i) for every i in [0, n); F must be callable on the device.
  template <class F>
  static void for_each(context& ctx, index_t n, F f) {
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::for_each_kernel<I, F><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), f);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // h = silu(gate) ⊙ up   gu: [rows, 2·inter] as [gate | up], h: [rows, inter]
  template <class T>
  static void swiglu(context& ctx, index_t rows, index_t inter, const T* gu, T* h) {
    const index_t n = rows * inter;
    if (n <= 0) return;
    detail::with_index_type(2 * n, [&](auto tag) {
      using I = decltype(tag);
      detail::swiglu_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), I(inter), gu, h);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // dgu from dh (assigns)   gu, dgu: [rows, 2·inter], dh: [rows, inter]
  template <class T>
  static void swiglu_backward(context& ctx, index_t rows, index_t inter, const T* gu, const T* dh, T* dgu) {
    const index_t n = rows * inter;
    if (n <= 0) return;
    detail::with_index_type(2 * n, [&](auto tag) {
      using I = decltype(tag);
      detail::swiglu_backward_kernel<I, T>
          <<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), I(inter), gu, dh, dgu);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // dst[r·dst_stride + c] = scale · src[r·src_stride + c]   r < rows, c < cols
  // scale == 0 writes zeros without reading src (which may be uninitialised).
  template <class T>
  static void copy_2d(context& ctx, index_t rows, index_t cols, const T* src, index_t src_stride, T* dst,
                      index_t dst_stride, T scale) {
    const index_t n = rows * cols;
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::copy_2d_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(
          I(n), I(cols), src, src_stride, dst, dst_stride, scale);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // AdamATan2 (trm-computation.md §4.1): decay, moments, p −= lr/bc1 · atan2(m, sqrt(v/bc2)).   all: [n]
  template <class T>
  static void adam_atan2(context& ctx, index_t n, T* p, const T* g, T* m, T* v, T lr, T wd, T b1, T b2, T bc1, T bc2) {
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::adam_atan2_kernel<I, T>
          <<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), p, g, m, v, lr, wd, b1, b2, bc1, bc2);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // AdamW with decoupled decay.   all: [n]
  template <class T>
  static void adamw(context& ctx, index_t n, T* p, const T* g, T* m, T* v, T lr, T wd, T b1, T b2, T bc1, T bc2, T eps) {
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::adamw_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(
          I(n), p, g, m, v, lr, wd, b1, b2, bc1, bc2, eps);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // shadow = rate · shadow + (1 − rate) · p   p, shadow: [n]
  template <class T>
  static void ema(context& ctx, index_t n, const T* p, T* shadow, T rate) {
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::ema_kernel<I, T><<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), p, shadow, rate);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }
};

}  // namespace backend::cuda
ETRM_END_NAMESPACE
