// SPDX-License-Identifier: Apache-2.0
// Launch helpers shared by the CUDA kernels: grid sizes for grid-stride loops, the choice of a
// 32-bit index type when a loop's range allows it (64-bit division is slow on the GPU), block
// reductions (sum, max) that hand the result to every thread, and precision-overloaded math.
#pragma once

#include <etrm/backend/cuda/context.cuh>
#include <etrm/core/config.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda::detail {

inline constexpr int block_threads = 256;
inline constexpr index_t max_blocks = index_t(1) << 20;  // grid-stride loops cover larger ranges

// Blocks for a grid-stride loop over n items with `threads` threads per block.
inline unsigned grid_for(index_t n, int threads = block_threads) {
  return unsigned(std::clamp<index_t>((n + threads - 1) / threads, 1, max_blocks));
}
// Blocks for a loop with one block per row.
inline unsigned grid_rows(index_t rows) { return unsigned(std::clamp<index_t>(rows, 1, max_blocks)); }

// Calls f(I{}) with I = uint32_t when every index of a grid-stride loop over n items (plus one
// stride) fits in 32 bits, else with I = uint64_t.
template <class F>
void with_index_type(index_t n, F&& f) {
  if (n < (index_t(1) << 31))
    f(std::uint32_t{});
  else
    f(std::uint64_t{});
}

// Checks the launch that was just issued (and, with ETRM_CUDA_DEBUG_SYNC, its completion).
#ifdef ETRM_CUDA_DEBUG_SYNC
#define ETRM_CUDA_CHECK_LAUNCH(ctx)                       \
  do {                                                    \
    ETRM_CUDA_CHECK(cudaGetLastError());                  \
    ETRM_CUDA_CHECK(cudaStreamSynchronize((ctx).stream())); \
  } while (0)
#else
#define ETRM_CUDA_CHECK_LAUNCH(ctx) ETRM_CUDA_CHECK(cudaGetLastError())
#endif

template <class I>
__device__ __forceinline__ I global_thread() {
  return I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x);
}
template <class I>
__device__ __forceinline__ I grid_stride() {
  return I(blockDim.x) * I(gridDim.x);
}

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class A>
__device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) {
    const A u = __shfl_xor_sync(0xffffffffu, v, o);
    v = v < u ? u : v;
  }
  return v;
}

// Sum over the block; every thread returns it. blockDim.x must be a multiple of 32 (≤ 1024)
// and every thread of the block must call it.
template <class A>
__device__ A block_sum(A v) {
  __shared__ A part[32];
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // earlier readers of part[] are done
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const unsigned warps = blockDim.x >> 5;
  return warp_sum(lane < warps ? part[lane] : A(0));
}
// Maximum over the block; every thread returns it (same requirements as block_sum).
template <class A>
__device__ A block_max(A v) {
  __shared__ A part[32];
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const unsigned warps = blockDim.x >> 5;
  return warp_max(part[lane < warps ? lane : 0u]);
}

// Math in the precision of the argument.
__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }
__device__ __forceinline__ float dsqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double dsqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float datan2(float y, float x) { return atan2f(y, x); }
__device__ __forceinline__ double datan2(double y, double x) { return atan2(y, x); }

}  // namespace backend::cuda::detail
ETRM_END_NAMESPACE
