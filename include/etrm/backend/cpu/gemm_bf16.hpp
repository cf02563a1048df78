// SPDX-License-Identifier: Apache-2.0
// The CPU backend's bf16 GEMM: both operands rounded to bf16 (nearest even) while they are
// packed, products accumulated in fp32, fp32 output; the fp32 inputs are never modified.
//
// With AVX-512 BF16 (checked at run time) a packed kernel does the work: vdpbf16ps multiplies
// a broadcast bf16 pair of A by 16 bf16 pairs of B and adds both products into 16 fp32 lanes,
// twice the multiply-adds of an fp32 FMA. Operands are packed as 32-bit words holding the bf16
// values of two consecutive k (the low half the even one):
//   A block  [rows, k/2] (op(A) row-major) or [k/2, rows] (A transposed), rows padded to mr;
//   B block  panels of nr columns, each [k/2, nr].
// Blocks span kc values of k so a B panel (kc/2 × nr words, 16 KiB) stays in L1 while the
// micro-kernel sweeps mr-row strips of A across it. Packing buffers are thread-local and grow
// to the largest shape seen, so steady-state training steps allocate nothing.
//
// Elsewhere the same numbers (up to summation order) come from rounding the operands to
// bf16-valued floats and running the fp32 GEMM.
#pragma once

#include <etrm/core/bfloat16.hpp>
#include <etrm/core/config.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ETRM_CPU_BF16_KERNEL 1
#include <immintrin.h>
#define ETRM_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define ETRM_CPU_BF16_KERNEL 0
#endif

ETRM_BEGIN_NAMESPACE
namespace backend::cpu::bf16 {

// True when this processor runs the native AVX-512 BF16 kernel.
inline bool native_supported() {
#if ETRM_CPU_BF16_KERNEL
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512bf16");
  return ok;
#else
  return false;
#endif
}

// A thread's packing scratch, grown on demand and kept.
template <class T>
T* scratch(std::vector<T>& v, index_t n) {
  if (index_t(v.size()) < n) v.resize(std::size_t(n));
  return v.data();
}

// out[i] = round_to_bf16(x[i])   x, out: [n]
inline void round_copy(const float* x, index_t n, float* out) {
  for (index_t i = 0; i < n; ++i) out[i] = round_to_bf16(x[i]);
}

#if ETRM_CPU_BF16_KERNEL
constexpr index_t mr = 12;   // rows of C per micro-kernel: 24 accumulators + 2 B vectors + 1 broadcast
constexpr index_t nr = 32;   // columns of C per micro-kernel (two 16-lane vectors)
constexpr index_t kc = 256;  // k per packed block (even)
constexpr index_t mc = 96;   // rows of A per packed block (a multiple of mr)

// out[j] = (bf16(r1[j]) << 16) | bf16(r0[j]); r1 null reads as zeros   r0, r1, out: [n]
ETRM_BF16_TARGET inline void pair_rows(const float* r0, const float* r1, index_t n, std::uint32_t* out) {
  for (index_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + j);
    const __m512 x1 = r1 ? _mm512_maskz_loadu_ps(m, r1 + j) : _mm512_setzero_ps();
    const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x0));
    const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x1));
    _mm512_mask_storeu_epi32(out + j, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
  }
}

// out[i] = bf16(x[i]), zero-padded to an even count   x: [n], out: [n rounded up to even]
// (written through vector stores only, so the words are read back as uint32 without aliasing)
ETRM_BF16_TARGET inline void round_row(const float* x, index_t n, std::uint16_t* out) {
  const index_t n_even = n + n % 2;
  for (index_t j = 0; j < n_even; j += 16) {
    auto lanes = [&](index_t count) { return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1); };
    const __m256i v = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lanes(n - j), x + j));
    _mm256_mask_storeu_epi16(out + j, lanes(n_even - j), v);
  }
}

// Packs op(A)[rows m0.., k k0..) as words; returns the (row, pair) strides of the layout.
//   ta = false: A [m, lda] row-major, element (i, k) at a[i·lda + k] → layout [rows_padded, kbp]
//   ta = true:  A [k, lda],           element (i, k) at a[k·lda + i] → layout [kbp, rows_padded]
struct a_block {
  const std::uint32_t* data;
  index_t row_stride, pair_stride;
};

ETRM_BF16_TARGET inline a_block pack_a(bool ta, const float* a, index_t lda, index_t m0, index_t mb, index_t k0,
                                       index_t kb, std::uint32_t* out) {
  const index_t kbp = (kb + 1) / 2, rows = (mb + mr - 1) / mr * mr;
  if (!ta) {
    for (index_t i = 0; i < mb; ++i)
      round_row(a + (m0 + i) * lda + k0, kb, reinterpret_cast<std::uint16_t*>(out + i * kbp));
    std::fill(out + mb * kbp, out + rows * kbp, 0u);
    return {out, kbp, 1};
  }
  for (index_t p = 0; p < kbp; ++p) {
    const float* r0 = a + (k0 + 2 * p) * lda + m0;
    pair_rows(r0, 2 * p + 1 < kb ? r0 + lda : nullptr, mb, out + p * rows);
    std::fill(out + p * rows + mb, out + (p + 1) * rows, 0u);
  }
  return {out, 1, rows};
}

// Packs op(B)[k k0.., columns 0..n) into panels [n/nr][kbp][nr] of words, zero-padded.
//   tb = false: B [k, ldb], element (k, j) at b[k·ldb + j];  tb = true: B [n, ldb], at b[j·ldb + k]
ETRM_BF16_TARGET inline void pack_b(bool tb, const float* b, index_t ldb, index_t n, index_t k0, index_t kb,
                                    std::uint32_t* out, std::uint32_t* row_tmp) {
  const index_t kbp = (kb + 1) / 2, panels = (n + nr - 1) / nr;
  for (index_t q = 0; q < panels; ++q) {
    const index_t j0 = q * nr, cols = std::min(nr, n - j0);
    std::uint32_t* panel = out + q * kbp * nr;
    if (!tb) {
      for (index_t p = 0; p < kbp; ++p) {
        const float* r0 = b + (k0 + 2 * p) * ldb + j0;
        pair_rows(r0, 2 * p + 1 < kb ? r0 + ldb : nullptr, cols, panel + p * nr);
        std::fill(panel + p * nr + cols, panel + (p + 1) * nr, 0u);
      }
      continue;
    }
    if (cols < nr) std::fill(panel, panel + kbp * nr, 0u);
    for (index_t j = 0; j < cols; ++j) {
      round_row(b + (j0 + j) * ldb + k0, kb, reinterpret_cast<std::uint16_t*>(row_tmp));
      for (index_t p = 0; p < kbp; ++p) panel[p * nr + j] = row_tmp[p];
    }
  }
}

// tile[mr, nr] = Σ_p A(strip)[r, p] · B(panel)[p, :] over kbp word pairs.
ETRM_BF16_TARGET inline void micro_kernel(index_t kbp, a_block a, const std::uint32_t* b, float* tile) {
  __m512 c0[mr], c1[mr];
#pragma GCC unroll 12
  for (index_t r = 0; r < mr; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (index_t p = 0; p < kbp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * nr);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * nr + 16);
    const std::uint32_t* ap = a.data + p * a.pair_stride;
#pragma GCC unroll 12
    for (index_t r = 0; r < mr; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(ap[r * a.row_stride]));
      c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
    }
  }
#pragma GCC unroll 12
  for (index_t r = 0; r < mr; ++r) {
    _mm512_storeu_ps(tile + r * nr, c0[r]);
    _mm512_storeu_ps(tile + r * nr + 16, c1[r]);
  }
}

// C[rows i0..i1) = alpha·op(A)·op(B) + beta·C with the native kernel (row-major, as gemm_rows).
ETRM_BF16_TARGET inline void gemm_rows_native(bool ta, bool tb, index_t i0, index_t i1, index_t n, index_t k,
                                              float alpha, const float* a, index_t lda, const float* b, index_t ldb,
                                              float beta, float* c, index_t ldc) {
  thread_local std::vector<std::uint32_t> a_buf, b_buf;
  thread_local std::vector<std::uint32_t> row_buf;
  const index_t panels = (n + nr - 1) / nr;
  std::uint32_t* bp = scratch(b_buf, panels * nr * (kc / 2));
  std::uint32_t* ap = scratch(a_buf, mc * (kc / 2));
  std::uint32_t* row_tmp = scratch(row_buf, kc / 2);
  alignas(64) float tile[mr * nr];
  for (index_t k0 = 0; k0 < k; k0 += kc) {
    const index_t kb = std::min(kc, k - k0), kbp = (kb + 1) / 2;
    const bool first = k0 == 0;
    const float scale = first ? beta : 1.f;
    pack_b(tb, b, ldb, n, k0, kb, bp, row_tmp);
    for (index_t m0 = i0; m0 < i1; m0 += mc) {
      const index_t mb = std::min(mc, i1 - m0);
      const a_block block = pack_a(ta, a, lda, m0, mb, k0, kb, ap);
      for (index_t q = 0; q < panels; ++q) {
        const index_t cols = std::min(nr, n - q * nr);
        for (index_t s = 0; s * mr < mb; ++s) {
          const index_t rows = std::min(mr, mb - s * mr);
          micro_kernel(kbp, {block.data + s * mr * block.row_stride, block.row_stride, block.pair_stride},
                       bp + q * kbp * nr, tile);
          float* cs = c + (m0 + s * mr) * ldc + q * nr;
          for (index_t r = 0; r < rows; ++r) {
            float* cr = cs + r * ldc;
            const float* tr = tile + r * nr;
            if (scale == 0.f)
              for (index_t j = 0; j < cols; ++j) cr[j] = alpha * tr[j];
            else
              for (index_t j = 0; j < cols; ++j) cr[j] = alpha * tr[j] + scale * cr[j];
          }
        }
      }
    }
  }
}
#endif

// C[rows i0..i1) = alpha·op(A)·op(B) + beta·C with operands rounded to bf16-valued floats and
// `fp32_gemm_rows` (same signature) doing the products: the portable path, and the native
// kernel's oracle in the tests.
template <class Fp32GemmRows>
void gemm_rows_emulated(bool ta, bool tb, index_t i0, index_t i1, index_t n, index_t k, float alpha, const float* a,
                        index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc,
                        Fp32GemmRows&& fp32_gemm_rows) {
  thread_local std::vector<float> a_buf, b_buf;
  const index_t m = i1 - i0;
  // op(A) rows i0..i1 as a contiguous [m, k] (or [k, m] when transposed) copy.
  float* ar = scratch(a_buf, m * k);
  for (index_t r = 0; r < (ta ? k : m); ++r)
    round_copy(ta ? a + r * lda + i0 : a + (i0 + r) * lda, ta ? m : k, ar + r * (ta ? m : k));
  float* br = scratch(b_buf, n * k);
  for (index_t r = 0; r < (tb ? n : k); ++r) round_copy(b + r * ldb, tb ? k : n, br + r * (tb ? k : n));
  fp32_gemm_rows(ta, tb, index_t(0), m, n, k, alpha, ar, ta ? m : k, br, tb ? k : n, beta, c + i0 * ldc, ldc);
}

}  // namespace backend::cpu::bf16
ETRM_END_NAMESPACE
