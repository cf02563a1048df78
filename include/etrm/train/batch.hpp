// SPDX-License-Identifier: Apache-2.0
// Step metrics; the host batch type lives in data/token_batch.hpp.
#pragma once

#include <etrm/data/token_batch.hpp>

#include <cstdint>
#include <vector>

ETRM_BEGIN_NAMESPACE

// Metrics of one step (trm-computation.md §3): losses are divided by the batch size; the accuracies
// count rows that halted this step and have at least one valid label.
struct step_metrics {
  double loss = 0, lm_loss = 0, q_halt_loss = 0, q_continue_loss = 0;
  double accuracy = 0, exact_accuracy = 0, q_halt_accuracy = 0, steps = 0;
  index_t count = 0;  // rows the accuracies are over
  double lr = 0;
  // The ETRM encoder's readout loss (encoder_config::readout_weight), unweighted, divided by
  // the batch size; not part of `loss`, so runs with and without it compare. 0 when off.
  double readout_loss = 0;
  // The gradients held a NaN or Inf and the step updated nothing (trainer::options::max_skipped_steps).
  bool skipped = false;
};

ETRM_END_NAMESPACE
