// SPDX-License-Identifier: Apache-2.0
// Counter-based RNG (Philox4x32-10): the value at (seed, counter) is a pure function, so the
// reference, CPU and CUDA backends draw identical numbers in any order or thread layout.
#pragma once

#include <etrm/core/config.hpp>

#include <cstdint>

ETRM_BEGIN_NAMESPACE

struct philox_key {
  std::uint64_t seed;
  std::uint64_t stream;  // separates independent uses of one seed (init, exploration, ...)
};

namespace detail {
ETRM_HD std::uint32_t mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi) {
  const std::uint64_t p = std::uint64_t(a) * b;
  hi = std::uint32_t(p >> 32);
  return std::uint32_t(p);
}
}  // namespace detail

// Four 32-bit words for the 128-bit counter (stream, index).
struct philox_out {
  std::uint32_t v[4];
};

ETRM_HD philox_out philox4x32(philox_key key, std::uint64_t index) {
  std::uint32_t c0 = std::uint32_t(index), c1 = std::uint32_t(index >> 32);
  std::uint32_t c2 = std::uint32_t(key.stream), c3 = std::uint32_t(key.stream >> 32);
  std::uint32_t k0 = std::uint32_t(key.seed), k1 = std::uint32_t(key.seed >> 32);
  for (int r = 0; r < 10; ++r) {
    std::uint32_t hi0, hi1;
    const std::uint32_t lo0 = detail::mulhilo(0xD2511F53u, c0, hi0);
    const std::uint32_t lo1 = detail::mulhilo(0xCD9E8D57u, c2, hi1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform double in [0, 1) with 53 random bits, the index-th draw of the key.
ETRM_HD double uniform01(philox_key key, std::uint64_t index) {
  const philox_out o = philox4x32(key, index);
  const std::uint64_t bits = (std::uint64_t(o.v[0]) << 21) ^ std::uint64_t(o.v[1] >> 11);
  return double(bits & ((std::uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// Uniform integer in [0, n).
ETRM_HD std::uint64_t uniform_index(philox_key key, std::uint64_t index, std::uint64_t n) {
  return std::uint64_t(uniform01(key, index) * double(n)) % n;
}

ETRM_END_NAMESPACE
