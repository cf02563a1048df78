// SPDX-License-Identifier: Apache-2.0
// bfloat16 <-> float conversions on the host (round to nearest even on the way down), shared by
// the safetensors reader/writer and the CPU backend's bf16 GEMM.
#pragma once

#include <etrm/core/config.hpp>

#include <bit>
#include <cstdint>

ETRM_BEGIN_NAMESPACE

inline float bf16_to_f32(std::uint16_t h) { return std::bit_cast<float>(std::uint32_t(h) << 16); }

inline std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  // Rounding could carry a NaN payload into infinity; keep it a (quiet) NaN instead.
  if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x0040u);
  return std::uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// The float nearest to f that bf16 represents exactly.
inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

ETRM_END_NAMESPACE
