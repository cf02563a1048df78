// SPDX-License-Identifier: Apache-2.0
// ARC grids as token sequences (trm-computation.md §5.5, §6.2): each grid sits in a 30x30 canvas at an
// offset, flattened row-major, PAD=0, EOS=1, colour c -> c+2 (vocab 12). An EOS row under the
// grid and an EOS column right of it tell the model, and the crop, where the grid ends.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc.hpp>
#include <etrm/data/arc_tokens.hpp>
#include <etrm/data/grid.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

inline constexpr int arc_canvas_side = arc_max_side;
inline constexpr std::size_t arc_seq_len = std::size_t(arc_canvas_side) * arc_canvas_side;
inline constexpr std::int32_t arc_vocab_size = arc_first_colour_token + arc_num_colours;

// Top-left corner of a grid inside the canvas.
struct canvas_offset {
  int row = 0;
  int col = 0;
  bool operator==(const canvas_offset&) const = default;
};

// out: [side²] (900 for ARC's 30x30 canvas; ETRM's generated episodes use smaller canvases).
// Both EOS lines stop at the grid's extent, so the corner cell past both stays PAD.
inline void encode_grid(const grid& g, canvas_offset at, std::span<std::int32_t> out, int side = arc_canvas_side) {
  if (out.size() != std::size_t(side) * std::size_t(side))
    throw std::invalid_argument("encode_grid: output span must hold side² tokens");
  if (at.row < 0 || at.col < 0 || at.row + g.rows > side || at.col + g.cols > side)
    throw std::invalid_argument("encode_grid: grid does not fit the canvas at this offset");
  std::fill(out.begin(), out.end(), arc_pad_token);
  const auto cell = [&](int r, int c) -> std::int32_t& { return out[std::size_t(r) * side + c]; };
  for (int r = 0; r < g.rows; ++r)
    for (int c = 0; c < g.cols; ++c) cell(at.row + r, at.col + c) = arc_first_colour_token + g.at(r, c);
  const int eos_row = at.row + g.rows, eos_col = at.col + g.cols;
  if (eos_row < side)
    for (int c = at.col; c < eos_col; ++c) cell(eos_row, c) = arc_eos_token;
  if (eos_col < side)
    for (int r = at.row; r < eos_row; ++r) cell(r, eos_col) = arc_eos_token;
}

inline std::vector<std::int32_t> encode_grid(const grid& g, canvas_offset at = {}) {
  std::vector<std::int32_t> out(arc_seq_len);
  encode_grid(g, at, out);
  return out;
}

// The evaluator's crop (spec §6.2), which also decodes a canvas written by `encode_grid`: the
// largest rectangle of colour tokens anchored at `at`, scanning rows downward and narrowing the
// width at each row's first non-colour token. A prediction without a colour at `at` decodes to
// an empty 0x0 grid, a vote that can never be right.
inline grid crop_canvas(std::span<const std::int32_t> canvas, canvas_offset at = {}, int side = arc_canvas_side) {
  if (canvas.size() != std::size_t(side) * std::size_t(side))
    throw std::invalid_argument("crop_canvas: canvas must hold side² tokens");
  const auto token = [&](int r, int c) { return canvas[std::size_t(r) * side + c]; };
  const auto is_colour = [](std::int32_t t) { return t >= arc_first_colour_token && t < arc_vocab_size; };
  int width = side - at.col, best_area = 0, best_rows = 0, best_cols = 0;
  for (int rows = 1; rows <= side - at.row; ++rows) {
    for (int c = 0; c < width; ++c)
      if (!is_colour(token(at.row + rows - 1, at.col + c))) {
        width = c;
        break;
      }
    if (rows * width > best_area) {
      best_area = rows * width;
      best_rows = rows;
      best_cols = width;
    }
  }
  grid g(best_rows, best_cols);
  for (int r = 0; r < best_rows; ++r)
    for (int c = 0; c < best_cols; ++c)
      g.at(r, c) = std::uint8_t(token(at.row + r, at.col + c) - arc_first_colour_token);
  return g;
}

}  // namespace data
ETRM_END_NAMESPACE
