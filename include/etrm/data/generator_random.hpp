// SPDX-License-Identifier: Apache-2.0
// Deterministic randomness for the data generators (Sudoku, mazes, few-shot ARC-style tasks).
// The standard distributions and std::shuffle are implementation-defined, so one seed would give
// different data with different standard libraries; these helpers consume only the raw output of
// std::mt19937_64, which the standard fixes bit for bit.
#pragma once

#include <etrm/core/config.hpp>

#include <cstdint>
#include <random>
#include <utility>

ETRM_BEGIN_NAMESPACE
namespace data {

using data_rng = std::mt19937_64;

// Uniform in [0, n), n > 0. Rejecting the lowest 2^64 mod n draws leaves a multiple of n values,
// so the modulo favours none.
inline std::uint64_t rand_below(data_rng& rng, std::uint64_t n) {
  const std::uint64_t threshold = (std::uint64_t(0) - n) % n;
  for (;;) {
    const std::uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

// Uniform in [lo, hi], both inclusive.
inline int rand_int(data_rng& rng, int lo, int hi) { return lo + int(rand_below(rng, std::uint64_t(hi - lo) + 1)); }

inline bool rand_chance(data_rng& rng, int num, int den) {
  return rand_below(rng, std::uint64_t(den)) < std::uint64_t(num);
}

// Fisher-Yates over anything with size() and operator[].
template <class Seq>
void rand_shuffle(data_rng& rng, Seq& s) {
  for (std::size_t i = s.size(); i > 1; --i) {
    using std::swap;
    swap(s[i - 1], s[rand_below(rng, i)]);
  }
}

}  // namespace data
ETRM_END_NAMESPACE
