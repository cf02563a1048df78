// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the CUDA tests: whether a GPU is visible (errors count as "no GPU"), the
// skip guard every test starts with, and one lazily created CUDA context per process.
#pragma once

#include <doctest/doctest.h>
#include <etrm/backend/cuda/cuda.cuh>

#include <cuda_runtime.h>

namespace cuda_test {

inline bool gpu_available() {
  static const bool available = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return n > 0;
  }();
  return available;
}

// Created on first use only, so a machine without a GPU never touches the CUDA runtime beyond
// cudaGetDeviceCount. Tests that change the GEMM precision restore fp32.
inline etrm::backend::cuda::context& ctx() {
  static etrm::backend::cuda::context c(0);
  return c;
}

struct precision_guard {
  etrm::backend::cuda::gemm_precision saved;
  explicit precision_guard(etrm::backend::cuda::gemm_precision p) : saved(ctx().precision()) { ctx().set_precision(p); }
  ~precision_guard() { ctx().set_precision(saved); }
};

}  // namespace cuda_test

// First statement of every CUDA test case.
#define CUDA_TEST_REQUIRE_GPU()                                        \
  do {                                                                 \
    if (!::cuda_test::gpu_available()) {                               \
      MESSAGE("no CUDA device visible: test skipped");                 \
      return;                                                          \
    }                                                                  \
  } while (0)
