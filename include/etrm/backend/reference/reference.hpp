// SPDX-License-Identifier: Apache-2.0
// The reference backend: plain serial loops with double accumulation. It is the oracle the
// CPU and CUDA backends are tested against, and the backend for double-precision gradchecks.
#pragma once

#include <etrm/backend/host/host_kernels.hpp>
#include <etrm/backend/host/host_memory.hpp>
#include <etrm/core/device.hpp>
#include <etrm/ops/kernels.hpp>

#include <cmath>

ETRM_BEGIN_NAMESPACE
namespace backend::reference {

struct context {};

struct serial_exec {
  using context = reference::context;
  template <class F>
  static void run(context&, index_t n, index_t /*grain*/, F&& f) {
    if (n > 0) f(index_t(0), n);
  }
  template <class T>
  static void exp_inplace(T* x, index_t n) {
    for (index_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
  }
};

}  // namespace backend::reference

template <>
struct device_traits<reference_device> : backend::host::host_memory<backend::reference::context> {
  using context = backend::reference::context;
  static constexpr const char* name = "reference";
};

template <>
struct kernels<reference_device> : backend::host::host_kernels<backend::reference::serial_exec, true> {
  // C[m, n] = alpha · op(A) · op(B) + beta · C, row-major, for each of `batch` strided
  // matrices. op(A) is A [m, k] (lda) or, when ta, the transpose of A stored [k, m].
  template <class T>
  static void gemm(ctx_t&, bool ta, bool tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
                   index_t stride_a, const T* b, index_t ldb, index_t stride_b, T beta, T* c, index_t ldc,
                   index_t stride_c, index_t batch) {
    for (index_t p = 0; p < batch; ++p) {
      const T* A = a + p * stride_a;
      const T* Bm = b + p * stride_b;
      T* C = c + p * stride_c;
      for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
          double s = 0;
          for (index_t l = 0; l < k; ++l)
            s += double(ta ? A[l * lda + i] : A[i * lda + l]) * double(tb ? Bm[j * ldb + l] : Bm[l * ldb + j]);
          C[i * ldc + j] = T(alpha * s + (beta == T(0) ? 0.0 : double(beta) * C[i * ldc + j]));
        }
    }
  }
};
static_assert(kernel_set<reference_device, float> && kernel_set<reference_device, double>);

ETRM_END_NAMESPACE
