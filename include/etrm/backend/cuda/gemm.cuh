// SPDX-License-Identifier: Apache-2.0
// GEMM on cuBLAS. Row-major C[m, n] = alpha · op(A) · op(B) + beta · C for each of `batch`
// strided matrices (the reference backend's contract): cuBLAS is column-major, so it computes
// Cᵀ[n, m] = op(B)ᵀ · op(A)ᵀ, where the row-major buffers read column-major already are the
// transposes. beta == 0 never reads C (cuBLAS guarantees it; k == 0 is handled here).
// Float GEMMs follow the context's gemm_precision (fp32, tf32 or bf16 operands with FP32
// accumulation); double GEMMs are always FP64.
#pragma once

#include <etrm/backend/cuda/launch.cuh>

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>
#include <type_traits>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda {
namespace detail {

template <class I>
__global__ void to_bf16_kernel(I n, const float* x, __nv_bfloat16* y) {
  for (I i = global_thread<I>(); i < n; i += grid_stride<I>()) y[i] = __float2bfloat16(x[i]);
}

// C = beta · C (zeros when beta == 0, without reading C) for k == 0.
template <class T>
__global__ void scale_matrices_kernel(index_t batch, index_t m, index_t n, T beta, T* c, index_t ldc, index_t stride_c) {
  const index_t total = batch * m * n;
  for (index_t o = index_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += index_t(blockDim.x) * gridDim.x) {
    const index_t p = o / (m * n), rest = o - p * m * n, i = rest / n, j = rest - i * n;
    T& v = c[p * stride_c + i * ldc + j];
    v = beta == T(0) ? T(0) : beta * v;
  }
}

inline int checked_int(index_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::length_error(std::string("etrm cuda gemm: ") + what + " = " + std::to_string(v) +
                            " is outside cuBLAS's int range");
  return int(v);
}

inline void to_bf16(context& ctx, const float* x, index_t n, __nv_bfloat16* y) {
  if (n <= 0) return;
  with_index_type(n, [&](auto tag) {
    using I = decltype(tag);
    to_bf16_kernel<I><<<grid_for(n), block_threads, 0, ctx.stream()>>>(I(n), x, y);
  });
  ETRM_CUDA_CHECK_LAUNCH(ctx);
}

}  // namespace detail

struct gemm_ops {
  // Largest bf16 copy of one operand per cuBLAS call (elements); bigger batches are split.
  static constexpr index_t bf16_chunk_elements = index_t(1) << 27;

  // C[m, n] = alpha · op(A) · op(B) + beta · C, row-major, for each of `batch` strided
  // matrices. op(A) is A [m, k] (lda) or, when ta, the transpose of A stored [k, m].
  template <class T>
  static void gemm(context& ctx, bool ta, bool tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
                   index_t stride_a, const T* b, index_t ldb, index_t stride_b, T beta, T* c, index_t ldc,
                   index_t stride_c, index_t batch) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuda gemm: float or double");
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (k <= 0) {
      const index_t total = batch * m * n;
      detail::scale_matrices_kernel<T>
          <<<detail::grid_for(total), detail::block_threads, 0, ctx.stream()>>>(batch, m, n, beta, c, ldc, stride_c);
      ETRM_CUDA_CHECK_LAUNCH(ctx);
      return;
    }
    const int M = detail::checked_int(m, "m"), N = detail::checked_int(n, "n"), Kk = detail::checked_int(k, "k");
    const int LDA = detail::checked_int(lda, "lda"), LDB = detail::checked_int(ldb, "ldb"),
              LDC = detail::checked_int(ldc, "ldc"), BATCH = detail::checked_int(batch, "batch");
    // Column-major: C' (n × m) = op'(B') (n × k) · op'(A') (k × m), with B' the B buffer.
    const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasHandle_t h = ctx.cublas();
    if constexpr (std::is_same_v<T, double>) {
      ETRM_CUBLAS_CHECK(cublasDgemmStridedBatched(h, op_b, op_a, N, M, Kk, &alpha, b, LDB, stride_b, a, LDA, stride_a,
                                                  &beta, c, LDC, stride_c, BATCH));
    } else {
      switch (ctx.precision()) {
        case gemm_precision::fp32:
          ETRM_CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_b, op_a, N, M, Kk, &alpha, b, LDB, stride_b, a, LDA, stride_a,
                                                      &beta, c, LDC, stride_c, BATCH));
          break;
        case gemm_precision::tf32:
          ETRM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_b, op_a, N, M, Kk, &alpha, b, CUDA_R_32F, LDB, stride_b, a,
                                                       CUDA_R_32F, LDA, stride_a, &beta, c, CUDA_R_32F, LDC, stride_c,
                                                       BATCH, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
          break;
        case gemm_precision::bf16:
          gemm_bf16(ctx, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c, batch);
          break;
      }
    }
  }

 private:
  // Rounds the operands to bf16 in the context scratch (same leading dimensions and strides,
  // so the copy is the contiguous span the matrices cover) and runs a bf16 × bf16 → fp32 GEMM
  // with FP32 accumulation, in chunks of the batch so that the scratch stays bounded.
  static void gemm_bf16(context& ctx, bool ta, bool tb, index_t m, index_t n, index_t k, float alpha, const float* a,
                        index_t lda, index_t stride_a, const float* b, index_t ldb, index_t stride_b, float beta,
                        float* c, index_t ldc, index_t stride_c, index_t batch) {
    // Span of one matrix: (stored rows − 1) · ld + stored columns.
    const index_t span_a = ((ta ? k : m) - 1) * lda + (ta ? m : k);
    const index_t span_b = ((tb ? n : k) - 1) * ldb + (tb ? k : n);
    auto per_chunk = [&](index_t span, index_t stride) -> index_t {
      if (stride <= 0) return batch;                 // one shared matrix, converted once per chunk
      if (span >= bf16_chunk_elements) return 1;     // huge matrices: one per call
      return std::clamp<index_t>((bf16_chunk_elements - span) / stride + 1, 1, batch);
    };
    const index_t chunk = std::min(per_chunk(span_a, stride_a), per_chunk(span_b, stride_b));
    auto extent = [&](index_t span, index_t stride, index_t nb) { return stride > 0 ? (nb - 1) * stride + span : span; };
    const index_t ext_a = extent(span_a, stride_a, chunk), ext_b = extent(span_b, stride_b, chunk);
    const index_t off_b = (ext_a + 127) / 128 * 128;  // 256-byte aligned second operand
    auto* scratch = static_cast<__nv_bfloat16*>(ctx.scratch(std::size_t(off_b + ext_b) * sizeof(__nv_bfloat16)));
    __nv_bfloat16* a16 = scratch;
    __nv_bfloat16* b16 = scratch + off_b;
    const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int M = int(m), N = int(n), Kk = int(k), LDA = int(lda), LDB = int(ldb), LDC = int(ldc);
    for (index_t p0 = 0; p0 < batch; p0 += chunk) {
      const index_t nb = std::min(chunk, batch - p0);
      detail::to_bf16(ctx, a + p0 * stride_a, extent(span_a, stride_a, nb), a16);
      detail::to_bf16(ctx, b + p0 * stride_b, extent(span_b, stride_b, nb), b16);
      ETRM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(ctx.cublas(), op_b, op_a, N, M, Kk, &alpha, b16, CUDA_R_16BF, LDB,
                                                   stride_b, a16, CUDA_R_16BF, LDA, stride_a, &beta, c + p0 * stride_c,
                                                   CUDA_R_32F, LDC, stride_c, int(nb), CUBLAS_COMPUTE_32F,
                                                   CUBLAS_GEMM_DEFAULT));
    }
  }
};

}  // namespace backend::cuda
ETRM_END_NAMESPACE
