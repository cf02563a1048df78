// SPDX-License-Identifier: Apache-2.0
// The ACT halting rule for one row (trm-computation.md §2.2), shared by every backend's act_update so the
// host and the GPU decide identically: steps += 1; halted = steps >= max; in training (max > 1)
// also halt where q_halt > 0 (or > q_continue when use_continue), then keep running rows below
// an exploration minimum drawn afresh from the counter-based RNG for every row at every step.
// q: [B, 2]; steps: [B]; halted: [B]. Row b draws as row first_row + b of a global batch (a
// data-parallel rank's rows are a slice of it).
#pragma once

#include <etrm/core/rng.hpp>

#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace ops {

template <class T>
ETRM_HD void act_row_update(index_t b, std::int32_t max_steps, bool training, bool use_continue, double explore_prob,
                            philox_key key, std::uint64_t draw, const T* q, std::int32_t* steps,
                            std::uint8_t* halted, std::uint64_t first_row = 0) {
  const std::int32_t st = steps[b] + 1;
  steps[b] = st;
  bool h = st >= max_steps;
  if (training && max_steps > 1) {
    h = h || (use_continue ? q[2 * b] > q[2 * b + 1] : q[2 * b] > T(0));
    const std::uint64_t idx = (draw * std::uint64_t(1 << 20) + first_row + std::uint64_t(b)) * 2;
    const bool explore = uniform01(key, idx) < explore_prob;
    const std::int32_t min_steps =
        explore ? 2 + std::int32_t(uniform_index(key, idx + 1, std::uint64_t(max_steps - 1))) : 0;
    h = h && st >= min_steps;
  }
  halted[b] = h;
}

}  // namespace ops
ETRM_END_NAMESPACE
