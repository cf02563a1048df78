// SPDX-License-Identifier: Apache-2.0
// The CUDA context and device trait. A `context` owns (RAII, no globals) one CUDA stream, a
// cuBLAS handle bound to that stream with its own cuBLAS workspace, the GEMM precision mode and
// a growable device scratch (bf16 copies of GEMM operands). Memory is plain cudaMalloc (never
// managed); copies are asynchronous on the context's stream and to_host synchronises.
//
//   etrm::backend::cuda::context ctx;                       // device 0, fp32 GEMMs
//   etrm::backend::cuda::context ctx(1, gemm_precision::tf32);
//   ctx.set_precision(gemm_precision::bf16);                // float GEMMs from now on
//
// gemm_precision (core/precision.hpp) applies to float GEMMs only (double GEMMs are always FP64):
//   fp32  cublasSgemm; tf32  CUBLAS_COMPUTE_32F_FAST_TF32; bf16  operands rounded to bf16 into
//   the context scratch, FP32 accumulation and output (FP32 master weights never modified)
#pragma once

#include <etrm/backend/cuda/errors.cuh>
#include <etrm/core/device.hpp>
#include <etrm/core/precision.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda {

using etrm::gemm_precision;

class context {
 public:
  static constexpr std::size_t cublas_workspace_bytes = std::size_t(32) << 20;  // Hopper recommendation

  explicit context(int device = 0, gemm_precision precision = gemm_precision::fp32)
      : device_(device), precision_(precision) {
    try {
      ETRM_CUDA_CHECK(cudaSetDevice(device_));
      ETRM_CUDA_CHECK(cudaStreamCreate(&stream_));
      ETRM_CUBLAS_CHECK(cublasCreate(&cublas_));
      // cublasSetStream resets the workspace to the default pool, so the workspace comes after it.
      ETRM_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      ETRM_CUDA_CHECK(cudaMalloc(&cublas_ws_, cublas_workspace_bytes));
      ETRM_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, cublas_workspace_bytes));
    } catch (...) {
      release();
      throw;
    }
  }
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context() { release(); }

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }

  gemm_precision precision() const { return precision_; }
  void set_precision(gemm_precision p) { precision_ = p; }

  // Device scratch of at least `bytes`, owned by the context, valid until the next call.
  // Growing waits for the stream, so work still reading the old scratch has finished.
  void* scratch(std::size_t bytes) {
    if (bytes > scratch_bytes_) {
      ETRM_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (scratch_) ETRM_CUDA_CHECK(cudaFree(scratch_));
      scratch_ = nullptr;
      scratch_bytes_ = 0;
      ETRM_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

  void synchronize() { ETRM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  void release() noexcept {
    if (stream_) (void)cudaStreamSynchronize(stream_);
    if (cublas_) (void)cublasDestroy(cublas_);
    if (cublas_ws_) (void)cudaFree(cublas_ws_);
    if (scratch_) (void)cudaFree(scratch_);
    if (stream_) (void)cudaStreamDestroy(stream_);
    cublas_ = nullptr;
    cublas_ws_ = nullptr;
    scratch_ = nullptr;
    stream_ = nullptr;
    (void)cudaGetLastError();
  }

  int device_ = 0;
  gemm_precision precision_ = gemm_precision::fp32;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_ws_ = nullptr;
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
};

}  // namespace backend::cuda

template <>
struct device_traits<cuda_device> {
  using context = backend::cuda::context;
  static constexpr const char* name = "cuda";

  // cudaMalloc memory is at least 256-byte aligned. Throws cuda_error when out of memory.
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      throw cuda_error(std::string("etrm CUDA error ") + cudaGetErrorName(e) + ": cudaMalloc of " +
                       std::to_string(bytes) + " bytes failed (" + cudaGetErrorString(e) + ")");
    }
    return p;
  }
  // Waits for all queued work first: a buffer may still be read by an asynchronous kernel.
  static void deallocate(void* p) noexcept {
    if (!p) return;
    (void)cudaDeviceSynchronize();
    (void)cudaFree(p);
  }
  static void copy(context& ctx, void* dst, const void* src, std::size_t bytes) {
    if (bytes) ETRM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream()));
  }
  static void to_host(context& ctx, void* dst, const void* src, std::size_t bytes) {
    if (bytes) ETRM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx.stream()));
    ETRM_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  }
  // From pageable memory (std::vector) the runtime stages the source before returning, so the
  // caller may free it at once; the device side completes in stream order.
  static void from_host(context& ctx, void* dst, const void* src, std::size_t bytes) {
    if (!bytes) return;
    ETRM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx.stream()));
  }
  static void zero(context& ctx, void* dst, std::size_t bytes) {
    if (bytes) ETRM_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, ctx.stream()));
  }
  static void synchronize(context& ctx) { ctx.synchronize(); }
};

static_assert(device<cuda_device>);

ETRM_END_NAMESPACE
