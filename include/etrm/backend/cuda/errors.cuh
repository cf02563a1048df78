// SPDX-License-Identifier: Apache-2.0
// Error handling of the CUDA backend: every CUDA runtime and cuBLAS call is checked, and a
// failure becomes a `cuda_error` (a std::runtime_error) whose message names the failing call
// expression, the file and the line. Non-sticky runtime errors are cleared before throwing, so
// a caught error (say, an out-of-memory allocation) does not resurface at the next launch check.
#pragma once

#include <etrm/core/config.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda {

class cuda_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* expr, const char* file, int line) {
  (void)cudaGetLastError();  // reset a non-sticky error so later checks do not report it again
  throw cuda_error(std::string("etrm CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") in `" +
                   expr + "` at " + file + ":" + std::to_string(line));
}

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* expr, const char* file, int line) {
  throw cuda_error(std::string("etrm cuBLAS error ") + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) +
                   ") in `" + expr + "` at " + file + ":" + std::to_string(line));
}

}  // namespace detail
}  // namespace backend::cuda

using backend::cuda::cuda_error;

ETRM_END_NAMESPACE

#define ETRM_CUDA_CHECK(expr)                                                                \
  do {                                                                                       \
    const cudaError_t etrm_cuda_status_ = (expr);                                            \
    if (etrm_cuda_status_ != cudaSuccess)                                                    \
      ::etrm::backend::cuda::detail::throw_cuda(etrm_cuda_status_, #expr, __FILE__, __LINE__); \
  } while (0)

#define ETRM_CUBLAS_CHECK(expr)                                                                  \
  do {                                                                                           \
    const cublasStatus_t etrm_cublas_status_ = (expr);                                           \
    if (etrm_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::etrm::backend::cuda::detail::throw_cublas(etrm_cublas_status_, #expr, __FILE__, __LINE__); \
  } while (0)
