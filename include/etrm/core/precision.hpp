// SPDX-License-Identifier: Apache-2.0
// The arithmetic a backend's float GEMMs use. Everything else (element-wise ops, reductions,
// optimizer, master weights) stays fp32 whatever the mode.
//   fp32  full fp32 (the default; what the parity tests use)
//   tf32  tensor cores with TF32 inputs, fp32 out (CUDA only)
//   bf16  operands rounded to bf16, fp32 accumulation and output (CUDA; CPU with AVX-512 BF16
//         instructions, or their exact-rounding emulation on other processors)
#pragma once

#include <etrm/core/config.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

ETRM_BEGIN_NAMESPACE

enum class gemm_precision { fp32, tf32, bf16 };

inline const char* to_string(gemm_precision p) {
  return p == gemm_precision::fp32 ? "fp32" : p == gemm_precision::tf32 ? "tf32" : "bf16";
}

inline gemm_precision parse_gemm_precision(std::string_view s) {
  for (gemm_precision p : {gemm_precision::fp32, gemm_precision::tf32, gemm_precision::bf16})
    if (s == to_string(p)) return p;
  throw std::invalid_argument("unknown GEMM precision '" + std::string(s) + "' (expected fp32, tf32 or bf16)");
}

ETRM_END_NAMESPACE
