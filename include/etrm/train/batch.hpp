// SPDX-License-Identifier: Apache-2.0
// A host batch as the trainer consumes it: token inputs and labels (−100 = ignore) of
// [B, seq_len] and the per-row context of the prefix source (puzzle id, or encoded demos).
#pragma once

#include <etrm/core/config.hpp>

#include <cstdint>
#include <vector>

ETRM_BEGIN_NAMESPACE

struct token_batch {
  index_t batch = 0;
  std::vector<std::int32_t> inputs;   // [B, seq_len]
  std::vector<std::int32_t> labels;   // [B, seq_len]
  std::vector<std::int32_t> context;  // [B, context_width]
};

// Metrics of one step (trm-spec §3): losses are divided by the batch size; the accuracies
// count rows that halted this step and have at least one valid label.
struct step_metrics {
  double loss = 0, lm_loss = 0, q_halt_loss = 0;
  double accuracy = 0, exact_accuracy = 0, q_halt_accuracy = 0, steps = 0;
  index_t count = 0;  // rows the accuracies are over
  double lr = 0;
};

ETRM_END_NAMESPACE
