// SPDX-License-Identifier: Apache-2.0
// A host batch of token sequences, the meeting point of data/ and train/: inputs and labels
// (−100 = ignore) of [B, seq_len] and the per-row context of the model's prefix source (a
// puzzle id for TRM, encoded demonstration pairs for ETRM). Plain vectors, no tensors.
#pragma once

#include <etrm/core/config.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

ETRM_BEGIN_NAMESPACE

struct token_batch {
  index_t batch = 0;
  std::vector<std::int32_t> inputs;   // [B, seq_len]
  std::vector<std::int32_t> labels;   // [B, seq_len]
  std::vector<std::int32_t> context;  // [B, context_width]
};

// B rows of padding, to be filled row by row: PAD (0) inputs, ignored labels, zero context (no
// demos for ETRM, the blank puzzle id for TRM).   inputs, labels [B, L]; context [B, W]
inline token_batch padding_batch(index_t B, index_t L, index_t W) {
  return {B, std::vector<std::int32_t>(std::size_t(B * L), 0), std::vector<std::int32_t>(std::size_t(B * L), -100),
          std::vector<std::int32_t>(std::size_t(B * W), 0)};
}

// Each of the first `rows` rows takes the next row's context, the last takes the first's:
// ETRM's queries then read another task's demos (the wrong-demos control, the collapse
// monitor). Rows from `rows` on are left alone. Fewer than 2 rows: unchanged.
inline void rotate_contexts(token_batch& b, index_t rows) {
  if (rows < 2 || b.batch <= 0) return;
  const auto W = std::ptrdiff_t(b.context.size() / std::size_t(b.batch));
  std::rotate(b.context.begin(), b.context.begin() + W, b.context.begin() + rows * W);
}

// Rows [first, first + count) of b (a data-parallel rank's slice of the global batch).
inline token_batch batch_rows(const token_batch& b, index_t first, index_t count) {
  const auto part = [&](const std::vector<std::int32_t>& v) {
    if (v.empty()) return v;
    const auto width = std::ptrdiff_t(v.size() / std::size_t(b.batch));
    return std::vector<std::int32_t>(v.begin() + first * width, v.begin() + (first + count) * width);
  };
  return {count, part(b.inputs), part(b.labels), part(b.context)};
}

ETRM_END_NAMESPACE
