// SPDX-License-Identifier: Apache-2.0
// The CPU backend's oneDNN GEMM provider, compiled where ETRM_WITH_DNNL is defined (the CMake
// target etrm::etrm defines it and links oneDNN when it finds the library). Each call shape gets
// one oneDNN matmul primitive, created on first use and cached by transposes, sizes, leading
// dimensions, batch strides, alpha, beta, thread count and precision, so a steady training step
// only executes primitives. A batched call is one 3-D matmul (a batch stride of 0 broadcasts that
// operand); the transposes are the operands' strides.
//
// bf16: A and B are rounded into contiguous bf16 copies and multiplied by oneDNN's bf16 kernels
// (fp32 accumulation and output) where the processor has them; elsewhere the copies hold the
// bf16-rounded floats and the fp32 kernel multiplies them (the same products up to summation
// order, as the backend's own emulation). Where oneDNN has only its reference implementation
// for a shape, or the GEMM is tiny (below min_work multiply-adds, where a oneDNN call's fixed
// cost dominates), gemm() says so and the backend uses Eigen.
//
// Threads: Debian's oneDNN runs on OpenMP; each call sets the calling thread's OpenMP team size
// to the context's thread count (a oneDNN built on oneTBB runs inside the context's arena).
// OpenMP's workers spin after each call; on a machine with more busy threads than cores that
// spinning costs small GEMMs several times their time unless OMP_WAIT_POLICY=passive is set in
// the environment (docs/PERFORMANCE.md).
#pragma once

#include <etrm/core/bfloat16.hpp>
#include <etrm/core/config.hpp>

#include <oneapi/dnnl/dnnl.hpp>

#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace backend::cpu::onednn {

// C[p] = alpha·op(A[p])·op(B[p]) + beta·C[p] for p < batch, row-major, each operand at its own
// leading dimension and batch stride (0: the same matrix for every p).
struct gemm_shape {
  bool ta, tb;
  index_t m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c, batch;
  float alpha, beta;
  auto operator<=>(const gemm_shape&) const = default;
};

enum class operands { fp32, bf16 };

class provider {
 public:
  static constexpr index_t min_work = index_t(1) << 15;

  // Runs the GEMM; false (nothing written) when oneDNN has no optimised kernel for it.
  // `parallel(n, f)` runs f(begin, end) over chunks of [0, n): the rounding copies of bf16.
  template <class Parallel>
  bool gemm(int threads, operands type, const gemm_shape& s, const float* a, const float* b, float* c,
            Parallel&& parallel) {
    if (s.m <= 0 || s.n <= 0 || s.k <= 0 || s.batch <= 0 || s.m * s.n * s.k * s.batch < min_work) return false;
    std::lock_guard lock(mutex_);
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
    omp_set_num_threads(threads);
#endif
    const entry& e = lookup({s, threads, type});
    if (!e.primitive) return false;
    if (type == operands::fp32) return execute(e, a, b, c);
    const index_t a_count = batches(s.stride_a, s.batch) * s.m * s.k;
    const index_t b_count = batches(s.stride_b, s.batch) * s.k * s.n;
    if (e.bf16_copies) {
      std::uint16_t* a16 = grow(a_bf16_, a_count);
      std::uint16_t* b16 = grow(b_bf16_, b_count);
      copy_operand(s.ta, s.m, s.k, s.lda, s.stride_a, s.batch, a, a16, parallel);
      copy_operand(s.tb, s.k, s.n, s.ldb, s.stride_b, s.batch, b, b16, parallel);
      return execute(e, a16, b16, c);
    }
    float* a32 = grow(a_rounded_, a_count);
    float* b32 = grow(b_rounded_, b_count);
    copy_operand(s.ta, s.m, s.k, s.lda, s.stride_a, s.batch, a, a32, parallel);
    copy_operand(s.tb, s.k, s.n, s.ldb, s.stride_b, s.batch, b, b32, parallel);
    return execute(e, a32, b32, c);
  }

  // Also take oneDNN's reference kernels (the tests use it to run the bf16 copies on
  // processors without bf16 instructions).
  bool accept_reference = false;

  // The implementation oneDNN chose for a shape ("" when none): for benchmarks and tests.
  std::string implementation(int threads, operands type, const gemm_shape& s) {
    std::lock_guard lock(mutex_);
    return lookup({s, threads, type}).name;
  }

 private:
  struct key {
    gemm_shape shape;
    int threads;
    operands type;
    auto operator<=>(const key&) const = default;
  };
  struct entry {
    std::optional<dnnl::matmul> primitive;
    dnnl::memory a, b, c;
    bool bf16_copies = false;
    std::string name;
  };

  static index_t batches(index_t stride, index_t batch) { return stride == 0 ? 1 : batch; }

  template <class V>
  static V* grow(std::vector<V>& v, index_t n) {
    if (index_t(v.size()) < n) v.resize(std::size_t(n));
    return v.data();
  }

  static std::uint16_t to_element(float x, std::uint16_t*) { return f32_to_bf16(x); }
  static float to_element(float x, float*) { return round_to_bf16(x); }

  // Rounds op-layout operand X ([rows, cols] as op(X), stored transposed when `t`) into a
  // contiguous copy of the same orientation   x: batch matrices at `stride`; out: [batches·rows·cols]
  template <class Out, class Parallel>
  static void copy_operand(bool t, index_t rows, index_t cols, index_t ld, index_t stride, index_t batch,
                           const float* x, Out* out, Parallel& parallel) {
    const index_t stored_rows = t ? cols : rows, stored_cols = t ? rows : cols;
    parallel(batches(stride, batch) * stored_rows, [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        const float* src = x + (r / stored_rows) * stride + (r % stored_rows) * ld;
        Out* dst = out + r * stored_cols;
        for (index_t j = 0; j < stored_cols; ++j) dst[j] = to_element(src[j], out);
      }
    });
  }

  // [batches, rows, cols] of op(X) for X stored [rows, ld] (or [cols, ld] when transposed).
  static dnnl::memory::desc operand_desc(bool t, index_t rows, index_t cols, index_t ld, index_t stride, index_t batch,
                                         dnnl::memory::data_type type) {
    const index_t nb = batches(stride, batch);
    const index_t step = stride == 0 ? (t ? cols : rows) * ld : stride;
    return {{nb, rows, cols}, type, t ? dnnl::memory::dims{step, 1, ld} : dnnl::memory::dims{step, ld, 1}};
  }

  std::optional<dnnl::matmul> create(const gemm_shape& s, dnnl::memory::desc a, dnnl::memory::desc b,
                                     dnnl::memory::desc c, std::string& name) const {
    dnnl::primitive_attr attr;
    if (s.alpha != 1.f) attr.set_output_scales(0, {s.alpha});
    if (s.beta != 0.f) {
      dnnl::post_ops post;
      post.append_sum(s.beta);
      attr.set_post_ops(post);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine_, /*allow_empty=*/true);
    if (!pd) return std::nullopt;
    name = pd.impl_info_str();
    if (!accept_reference && name.rfind("ref", 0) == 0) return std::nullopt;
    return dnnl::matmul(pd);
  }

  const entry& lookup(const key& key) {
    auto [it, fresh] = cache_.try_emplace(key);
    entry& e = it->second;
    if (!fresh) return e;
    using dt = dnnl::memory::data_type;
    const gemm_shape& s = key.shape;
    const dnnl::memory::desc c_desc({s.batch, s.m, s.n}, dt::f32, {s.stride_c == 0 ? s.m * s.ldc : s.stride_c, s.ldc, 1});
    dnnl::memory::desc a_desc, b_desc;
    auto descs = [&](dt type, bool contiguous) {
      a_desc = operand_desc(s.ta, s.m, s.k, contiguous ? (s.ta ? s.m : s.k) : s.lda,
                            contiguous && s.stride_a ? s.m * s.k : s.stride_a, s.batch, type);
      b_desc = operand_desc(s.tb, s.k, s.n, contiguous ? (s.tb ? s.k : s.n) : s.ldb,
                            contiguous && s.stride_b ? s.k * s.n : s.stride_b, s.batch, type);
    };
    if (key.type == operands::fp32) {
      descs(dt::f32, false);
      e.primitive = create(s, a_desc, b_desc, c_desc, e.name);
    } else {
      descs(dt::bf16, true);
      e.primitive = create(s, a_desc, b_desc, c_desc, e.name);
      e.bf16_copies = bool(e.primitive);
      if (!e.primitive) {
        descs(dt::f32, true);
        e.primitive = create(s, a_desc, b_desc, c_desc, e.name);
      }
    }
    if (e.primitive) {
      e.a = dnnl::memory(a_desc, engine_, DNNL_MEMORY_NONE);
      e.b = dnnl::memory(b_desc, engine_, DNNL_MEMORY_NONE);
      e.c = dnnl::memory(c_desc, engine_, DNNL_MEMORY_NONE);
    }
    return e;
  }

  bool execute(const entry& e, const void* a, const void* b, float* c) {
    e.a.set_data_handle(const_cast<void*>(a));
    e.b.set_data_handle(const_cast<void*>(b));
    e.c.set_data_handle(c);
    e.primitive->execute(stream_, {{DNNL_ARG_SRC, e.a}, {DNNL_ARG_WEIGHTS, e.b}, {DNNL_ARG_DST, e.c}});
    stream_.wait();
    return true;
  }

  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::mutex mutex_;
  std::map<key, entry> cache_;
  std::vector<std::uint16_t> a_bf16_, b_bf16_;
  std::vector<float> a_rounded_, b_rounded_;
};

}  // namespace backend::cpu::onednn
ETRM_END_NAMESPACE
