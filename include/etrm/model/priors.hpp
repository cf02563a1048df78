// SPDX-License-Identifier: Apache-2.0
// Per-task priors: hand-written searches that read a task's demonstrations outside the network
// (the alignment search of encoder_config::search_alignment and candidate_cells, the key ranking
// and answer of encoder_config::pattern_cells). The learned ETRM runs none of them. This counter
// tells how many task rows they searched in this process, so a tool or a test can show that a
// run used no prior (the count stays 0) rather than trusting the configuration flags.
#pragma once

#include <etrm/core/config.hpp>

#include <atomic>
#include <cstdint>

ETRM_BEGIN_NAMESPACE

// Task rows searched by a prior since the process started (one per row and search call).
inline std::atomic<std::uint64_t>& prior_search_rows() {
  static std::atomic<std::uint64_t> rows{0};
  return rows;
}

ETRM_END_NAMESPACE
