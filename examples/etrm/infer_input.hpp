// SPDX-License-Identifier: Apache-2.0
// The input file of `etrm infer`: a safetensors file with `inputs` [B, seq_len] (token ids) and
// the rows' context: ETRM `context` [B, context_width] (encoded demos: pair tokens, then M
// demo-present flags, then M copies of the demo count), TRM `puzzle_identifiers` [B] (absent: the
// blank id 0). Every value is checked against the model before it reaches an embedding lookup:
// an id outside its table is an error naming the file, the tensor and the index.
#pragma once

#include <etrm/data/token_batch.hpp>
#include <etrm/io/safetensors.hpp>
#include <etrm/model/config.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace etrm_cli {

namespace detail {
// Columns [first, first + count) of every row of `values` [rows, width] must lie in [0, end).
inline void check_ids(const etrm::io::safetensors_file& f, const char* tensor, std::span<const std::int32_t> values,
                      std::size_t width, std::size_t first, std::size_t count, std::int64_t end, const char* what) {
  for (std::size_t row = 0; row + width <= values.size() && width > 0; row += width)
    for (std::size_t k = row + first; k < row + first + count; ++k)
      if (values[k] < 0 || values[k] >= end)
        throw etrm::io::io_error("'" + f.origin() + "': tensor '" + tensor + "' value " + std::to_string(values[k]) +
                                 " at index " + std::to_string(k) + " is not a " + what + " in [0, " +
                                 std::to_string(end) + ")");
}
}  // namespace detail

// The ETRM encoder's max_demos and pair length (2 · grid_side²).
struct infer_context_shape {
  std::int64_t max_demos = 0, pair_len = 0;
  std::int64_t width() const { return max_demos * (pair_len + 2); }
};

// `demos` is empty for a TRM.
inline etrm::token_batch read_infer_input(const etrm::io::safetensors_file& in, const etrm::trm_config& c,
                                          std::optional<infer_context_shape> demos) {
  const auto& ii = in.info("inputs");
  if (ii.shape.size() != 2 || ii.shape[1] != c.seq_len || ii.shape[0] <= 0)
    throw etrm::io::io_error("'" + in.origin() + "': tensor 'inputs' has shape " + etrm::io::shape_to_string(ii.shape) +
                             ", expected [B, " + std::to_string(c.seq_len) + "] with B > 0");
  etrm::token_batch b;
  b.batch = ii.shape[0];
  b.inputs = in.read_i32("inputs", {b.batch, c.seq_len});
  const auto L = std::size_t(c.seq_len);
  detail::check_ids(in, "inputs", b.inputs, L, 0, L, c.vocab_size, "token id");
  if (demos) {
    const std::int64_t W = demos->width(), M = demos->max_demos;
    const auto w = std::size_t(W), m = std::size_t(M), tokens = std::size_t(M * demos->pair_len);
    b.context = in.read_i32("context", {b.batch, W});
    detail::check_ids(in, "context", b.context, w, 0, tokens, c.vocab_size, "token id");
    detail::check_ids(in, "context", b.context, w, tokens, m, 2, "demo flag");
    detail::check_ids(in, "context", b.context, w, tokens + m, m, M + 1, "demo count");
  } else {
    b.context = in.contains("puzzle_identifiers") ? in.read_i32("puzzle_identifiers", {b.batch})
                                                  : std::vector<std::int32_t>(std::size_t(b.batch), 0);
    detail::check_ids(in, "puzzle_identifiers", b.context, 1, 0, 1, c.num_puzzle_identifiers, "puzzle identifier");
  }
  return b;
}

}  // namespace etrm_cli
