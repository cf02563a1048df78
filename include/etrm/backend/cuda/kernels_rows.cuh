// SPDX-License-Identifier: Apache-2.0
// Row-wise CUDA kernels, one thread block per row (grid-stride over rows, block-stride over
// columns, block reductions accumulated in double): softmax and its backward, row reductions
// (sum, sum of squares, max), RMSNorm and its backward; plus the broadcast row bias
// (elementwise) and the column sum (one thread per column, coalesced over rows). Semantics are those of backend/host/host_kernels.hpp; outputs
// may alias inputs where the host version allows it, because every thread reads and writes
// only its own columns after the reductions.
#pragma once

#include <etrm/backend/cuda/launch.cuh>
#include <etrm/ops/functors.hpp>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda {
namespace detail {

template <class T>
__global__ void row_softmax_kernel(index_t rows, index_t cols, const T* x, T* y) {
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mx = xr[0];
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) mx = mx < xr[c] ? xr[c] : mx;
    mx = block_max(mx);
    double s = 0;
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const T e = dexp(T(xr[c] - mx));
      yr[c] = e;
      s += double(e);
    }
    s = block_sum(s);
    const T inv = T(1 / s);
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] *= inv;
  }
}

template <class T>
__global__ void row_softmax_backward_kernel(index_t rows, index_t cols, const T* y, const T* dy, T* dx) {
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T* dr = dx + r * cols;
    double dot = 0;
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) dot += double(yr[c]) * double(gr[c]);
    const T d = T(block_sum(dot));
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) dr[c] = yr[c] * (gr[c] - d);
  }
}

template <class T>
__global__ void row_reduce_kernel(index_t rows, index_t cols, int op, const T* x, T* out) {
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    if (op == int(ops::reduce_op::max)) {
      T mx = xr[0];
      for (index_t c = threadIdx.x; c < cols; c += blockDim.x) mx = mx < xr[c] ? xr[c] : mx;
      mx = block_max(mx);
      if (threadIdx.x == 0) out[r] = mx;
      continue;
    }
    const bool squares = op == int(ops::reduce_op::sum_squares);
    double s = 0;
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const double v = double(xr[c]);
      s += squares ? v * v : v;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) out[r] = T(s);
  }
}

template <class T>
__global__ void column_sum_add_kernel(index_t rows, index_t cols, const T* x, T* out) {
  for (index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += index_t(blockDim.x) * gridDim.x) {
    double s = 0;
    for (index_t r = 0; r < rows; ++r) s += double(x[r * cols + c]);
    out[c] += T(s);
  }
}

template <class T>
__global__ void rms_norm_kernel(index_t rows, index_t cols, T eps, const T* x, T* y, T* rstd) {
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double s = 0;
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) s += double(xr[c]) * double(xr[c]);
    s = block_sum(s);
    const T inv = T(1 / sqrt(s / double(cols) + double(eps)));
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = xr[c] * inv;
    if (rstd && threadIdx.x == 0) rstd[r] = inv;
  }
}

template <class T>
__global__ void rms_norm_backward_kernel(index_t rows, index_t cols, const T* y, const T* rstd, const T* dy, T* dx) {
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T* dr = dx + r * cols;
    double dot = 0;
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) dot += double(yr[c]) * double(gr[c]);
    dot = block_sum(dot);
    const T m = T(dot / double(cols));
    const T rs = rstd[r];
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x) dr[c] = rs * (gr[c] - yr[c] * m);
  }
}

// x[r, c] += bias[r / group, c]; loops over the flat index of x.
template <class I, class T>
__global__ void add_row_bias_kernel(I n, I cols, I group, const T* bias, T* x) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) {
    const I r = i / cols, c = i - r * cols;
    x[i] += bias[index_t(r / group) * cols + c];
  }
}

// Threads per block for a row kernel: a wide block when few long rows must share the GPU.
inline int row_threads(index_t rows, index_t cols) {
  if (cols >= 8192 && rows < 1024) return 1024;
  if (cols <= 64) return 64;
  if (cols <= 128) return 128;
  return 256;
}

}  // namespace detail

struct row_ops {
  // y = softmax(x) per row   x, y: [rows, cols]; y may alias x.
  template <class T>
  static void row_softmax(context& ctx, index_t rows, index_t cols, const T* x, T* y) {
    if (rows <= 0 || cols <= 0) return;
    detail::row_softmax_kernel<T>
        <<<detail::grid_rows(rows), detail::row_threads(rows, cols), 0, ctx.stream()>>>(rows, cols, x, y);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // x[r, c] += bias[r / group, c]: a per-(batch, key) additive mask broadcast over the
  // `group` rows (heads × queries) of each batch.   x: [rows, cols]; bias: [rows / group, cols]
  template <class T>
  static void add_row_bias(context& ctx, index_t rows, index_t cols, index_t group, const T* bias, T* x) {
    const index_t n = rows * cols;
    if (n <= 0) return;
    detail::with_index_type(n, [&](auto tag) {
      using I = decltype(tag);
      detail::add_row_bias_kernel<I, T>
          <<<detail::grid_for(n), detail::block_threads, 0, ctx.stream()>>>(I(n), I(cols), I(group), bias, x);
    });
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // dx = y ⊙ (dy − Σ dy⊙y) per row (assigns)   y, dy, dx: [rows, cols]; dx may alias dy.
  template <class T>
  static void row_softmax_backward(context& ctx, index_t rows, index_t cols, const T* y, const T* dy, T* dx) {
    if (rows <= 0 || cols <= 0) return;
    detail::row_softmax_backward_kernel<T>
        <<<detail::grid_rows(rows), detail::row_threads(rows, cols), 0, ctx.stream()>>>(rows, cols, y, dy, dx);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // out[r] = reduce(x[r, :])   x: [rows, cols], out: [rows]
  template <class T>
  static void row_reduce(context& ctx, index_t rows, index_t cols, ops::reduce_op op, const T* x, T* out) {
    if (rows <= 0) return;
    if (cols <= 0) {  // empty rows: sums are zero (max of nothing is left undefined, as on the host)
      if (op != ops::reduce_op::max) ETRM_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T) * std::size_t(rows), ctx.stream()));
      return;
    }
    detail::row_reduce_kernel<T>
        <<<detail::grid_rows(rows), detail::row_threads(rows, cols), 0, ctx.stream()>>>(rows, cols, int(op), x, out);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // out[c] += Σ_r x[r, c]   x: [rows, cols], out: [cols] (accumulates)
  template <class T>
  static void column_sum_add(context& ctx, index_t rows, index_t cols, const T* x, T* out) {
    if (rows <= 0 || cols <= 0) return;
    detail::column_sum_add_kernel<T>
        <<<detail::grid_for(cols, 128), 128, 0, ctx.stream()>>>(rows, cols, x, out);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // y = x · rsqrt(mean(x²) + eps) per row; rstd[r] saved when non-null   x, y: [rows, cols]
  template <class T>
  static void rms_norm(context& ctx, index_t rows, index_t cols, T eps, const T* x, T* y, T* rstd) {
    if (rows <= 0 || cols <= 0) return;
    detail::rms_norm_kernel<T>
        <<<detail::grid_rows(rows), detail::row_threads(rows, cols), 0, ctx.stream()>>>(rows, cols, eps, x, y, rstd);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // dx = rstd · (dy − y · mean(dy ⊙ y)) per row (assigns)   y, dy, dx: [rows, cols], rstd: [rows]
  template <class T>
  static void rms_norm_backward(context& ctx, index_t rows, index_t cols, const T* y, const T* rstd, const T* dy, T* dx) {
    if (rows <= 0 || cols <= 0) return;
    detail::rms_norm_backward_kernel<T>
        <<<detail::grid_rows(rows), detail::row_threads(rows, cols), 0, ctx.stream()>>>(rows, cols, y, rstd, dy, dx);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }
};

}  // namespace backend::cuda
ETRM_END_NAMESPACE
