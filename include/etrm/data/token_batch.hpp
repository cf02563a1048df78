// SPDX-License-Identifier: Apache-2.0
// A host batch of token sequences, the meeting point of data/ and train/: inputs and labels
// (−100 = ignore) of [B, seq_len] and the per-row context of the model's prefix source (a
// puzzle id for TRM, encoded demonstration pairs for ETRM). Plain vectors, no tensors.
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

ETRM_END_NAMESPACE
