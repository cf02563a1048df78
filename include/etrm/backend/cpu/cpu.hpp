// SPDX-License-Identifier: Apache-2.0
// The CPU backend: oneTBB parallel loops, float GEMMs from a provider: oneDNN where etrm was
// built with it (ETRM_WITH_DNNL, the default when CMake finds it; gemm_onednn.hpp), else Eigen
// GEMM kernels on Eigen::Map views. Eigen's own threading is off so it never oversubscribes the
// cores; the context owns a tbb::task_arena sized to the requested thread count, the float GEMM
// precision and the provider:
//
//   etrm::backend::cpu::context ctx;                          // all cores, fp32 GEMMs
//   etrm::backend::cpu::context ctx(2, etrm::gemm_precision::bf16);
//   ctx.set_precision(etrm::gemm_precision::fp32);
//   ctx.set_gemm_provider(etrm::gemm_provider::eigen);
//
// bf16 on Eigen runs the AVX-512 BF16 kernel of gemm_bf16.hpp (or its emulation on processors
// without it); tf32 does not exist on a CPU and is refused. Double GEMMs are always Eigen's.
#pragma once

#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif

#include <etrm/backend/cpu/gemm_bf16.hpp>
#include <etrm/core/tsan_edges.hpp>
#if ETRM_WITH_DNNL
#include <etrm/backend/cpu/gemm_onednn.hpp>
#endif
#include <etrm/backend/host/host_kernels.hpp>
#include <etrm/backend/host/host_memory.hpp>
#include <etrm/core/device.hpp>
#include <etrm/core/precision.hpp>
#include <etrm/ops/kernels.hpp>

#include <Eigen/Core>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <memory>
#include <stdexcept>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

// Who computes the CPU backend's float GEMMs.
enum class gemm_provider { eigen, onednn };

inline const char* to_string(gemm_provider p) { return p == gemm_provider::eigen ? "eigen" : "onednn"; }

// oneDNN where this build has it.
constexpr gemm_provider default_gemm_provider = ETRM_WITH_DNNL ? gemm_provider::onednn : gemm_provider::eigen;

namespace backend::cpu {

struct context {
  // threads <= 0: all cores.
  explicit context(int threads = 0, gemm_precision p = gemm_precision::fp32)
      : arena(std::make_unique<tbb::task_arena>(threads > 0 ? threads : int(tbb::task_arena::automatic))) {
    set_precision(p);
  }
  int threads() const { return arena->max_concurrency(); }
  gemm_precision precision() const { return precision_; }
  void set_precision(gemm_precision p) {
    if (p == gemm_precision::tf32) throw std::invalid_argument("etrm cpu: tf32 GEMMs exist on CUDA only (use fp32 or bf16)");
    precision_ = p;
  }
  gemm_provider provider() const { return provider_; }
  void set_gemm_provider(gemm_provider p) {
    if (p == gemm_provider::onednn && !ETRM_WITH_DNNL)
      throw std::invalid_argument("etrm cpu: this build has no oneDNN (configure with oneDNN installed)");
    provider_ = p;
  }
  std::unique_ptr<tbb::task_arena> arena;
#if ETRM_WITH_DNNL
  std::unique_ptr<onednn::provider> onednn = std::make_unique<onednn::provider>();
#endif

 private:
  gemm_precision precision_ = gemm_precision::fp32;
  gemm_provider provider_ = default_gemm_provider;
};

struct tbb_exec {
  using context = cpu::context;
  // Runs f(begin, end) over chunks of [0, n) of at least `grain` items in the context's arena.
  template <class F>
  static void run(context& ctx, index_t n, index_t grain, F&& f) {
    if (n <= 0) return;
    if (n <= grain || ctx.threads() == 1) return f(index_t(0), n);
    const auto chunk = [&](const tbb::blocked_range<index_t>& r) {
      ETRM_TSAN_CHUNK_BEGIN();
      f(r.begin(), r.end());
      ETRM_TSAN_CHUNK_END();
    };
    ETRM_TSAN_LOOP_FORK();  // after the closure is built: the chunks read it
    ctx.arena->execute([&] { tbb::parallel_for(tbb::blocked_range<index_t>(0, n, grain), chunk); });
    ETRM_TSAN_LOOP_JOIN();
  }
  // Eigen's vectorised exp (AVX-512/AVX2 when compiled for them).
  template <class T>
  static void exp_inplace(T* x, index_t n) {
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> a(x, n);
    a = a.exp();
  }
};

template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using const_map = Eigen::Map<const row_major<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using mut_map = Eigen::Map<row_major<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// One row-major GEMM on Eigen maps: C[rows i0..i1) of alpha·op(A)·op(B) + beta·C.
template <class T>
void gemm_rows(bool ta, bool tb, index_t i0, index_t i1, index_t n, index_t k, T alpha, const T* a, index_t lda,
               const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  const index_t m = i1 - i0;
  mut_map<T> C(c + i0 * ldc, m, n, Eigen::OuterStride<>(ldc));
  auto product = [&](const auto& A) {
    auto run = [&](const auto& B) {
      if (beta == T(0))
        C.noalias() = alpha * (A * B);
      else {
        C *= beta;
        C.noalias() += alpha * (A * B);
      }
    };
    if (tb)
      run(const_map<T>(b, n, k, Eigen::OuterStride<>(ldb)).transpose());
    else
      run(const_map<T>(b, k, n, Eigen::OuterStride<>(ldb)));
  };
  if (ta)
    product(const_map<T>(a + i0, k, m, Eigen::OuterStride<>(lda)).transpose());
  else
    product(const_map<T>(a + i0 * lda, m, k, Eigen::OuterStride<>(lda)));
}

// gemm_rows with bf16 operands: the native kernel where the processor has it.
inline void gemm_rows_bf16(bool ta, bool tb, index_t i0, index_t i1, index_t n, index_t k, float alpha, const float* a,
                           index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc) {
#if ETRM_CPU_BF16_KERNEL
  if (bf16::native_supported())
    return bf16::gemm_rows_native(ta, tb, i0, i1, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  bf16::gemm_rows_emulated(ta, tb, i0, i1, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                           [](auto... args) { gemm_rows<float>(args...); });
}

// gemm_rows in the context's precision (double GEMMs are always fp64).
template <class T>
void gemm_rows_in(const context& ctx, bool ta, bool tb, index_t i0, index_t i1, index_t n, index_t k, T alpha,
                  const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    if (ctx.precision() == gemm_precision::bf16)
      return gemm_rows_bf16(ta, tb, i0, i1, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  gemm_rows(ta, tb, i0, i1, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#if ETRM_WITH_DNNL
// The GEMM on the context's oneDNN provider, inside its arena; false when oneDNN has no
// optimised kernel for the shape.
inline bool gemm_onednn(context& ctx, const onednn::gemm_shape& s, const float* a, const float* b, float* c) {
  const auto type = ctx.precision() == gemm_precision::bf16 ? onednn::operands::bf16 : onednn::operands::fp32;
  bool done = false;
  ctx.arena->execute([&] {
    done = ctx.onednn->gemm(ctx.threads(), type, s, a, b, c, [&](index_t n, auto&& f) { tbb_exec::run(ctx, n, 64, f); });
  });
  return done;
}
#endif

}  // namespace backend::cpu

template <>
struct device_traits<cpu_device> : backend::host::host_memory<backend::cpu::context> {
  using context = backend::cpu::context;
  static constexpr const char* name = "cpu";
};

template <>
struct kernels<cpu_device> : backend::host::host_kernels<backend::cpu::tbb_exec, false> {
  // Same contract as kernels<reference_device>::gemm. On Eigen, batches run in parallel and
  // one large matrix is split into row or column blocks so every core works on it.
  template <class T>
  static void gemm(ctx_t& ctx, bool ta, bool tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
                   index_t stride_a, const T* b, index_t ldb, index_t stride_b, T beta, T* c, index_t ldc,
                   index_t stride_c, index_t batch) {
#if ETRM_WITH_DNNL
    if constexpr (std::is_same_v<T, float>)
      if (ctx.provider() == gemm_provider::onednn &&
          backend::cpu::gemm_onednn(ctx, {ta, tb, m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c, batch, alpha, beta},
                                    a, b, c))
        return;
#endif
    if (batch > 1) {
      backend::cpu::tbb_exec::run(ctx, batch, 1, [&](index_t p0, index_t p1) {
        for (index_t p = p0; p < p1; ++p)
          backend::cpu::gemm_rows_in(ctx, ta, tb, 0, m, n, k, alpha, a + p * stride_a, lda, b + p * stride_b, ldb,
                                     beta, c + p * stride_c, ldc);
      });
      return;
    }
    // Each thread packs the whole of the operand it does not split, so the split runs along
    // the longer side of C: rows when m >= n, else column blocks (whole 32-column panels).
    if (n > m && n >= 64 && ctx.threads() > 1) {
      const index_t parts = std::min<index_t>(ctx.threads(), n / 32);
      const index_t width = (n + parts - 1) / parts + 31 & ~index_t(31);
      backend::cpu::tbb_exec::run(ctx, parts, 1, [&](index_t p0, index_t p1) {
        for (index_t p = p0; p < p1; ++p) {
          const index_t j0 = p * width, j1 = std::min(n, j0 + width);
          if (j0 < j1)
            backend::cpu::gemm_rows_in(ctx, ta, tb, 0, m, j1 - j0, k, alpha, a, lda, tb ? b + j0 * ldb : b + j0, ldb,
                                       beta, c + j0, ldc);
        }
      });
      return;
    }
    // Row blocks of at least 32 rows and ~64k multiply-adds each keep the split worthwhile.
    const index_t grain = std::max<index_t>(32, 65536 / std::max<index_t>(1, n * k));
    backend::cpu::tbb_exec::run(ctx, m, grain, [&](index_t i0, index_t i1) {
      backend::cpu::gemm_rows_in(ctx, ta, tb, i0, i1, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    });
  }
};
static_assert(kernel_set<cpu_device, float>);

ETRM_END_NAMESPACE
