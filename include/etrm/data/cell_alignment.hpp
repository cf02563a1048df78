// SPDX-License-Identifier: Apache-2.0
// The geometric alignment of a task's demonstrations: which input cell each output cell comes
// from. A hypothesis is one of the 8 dihedral transforms (dihedral.hpp ids) followed by a shift
// (dr, dc) with |dr|, |dc| <= max_alignment_shift, so 392 in all; the search scores each by how
// well the transported input explains the outputs of all present demos and keeps the best.
//
// The score is functional consistency, not equality: over every output cell of every demo, with
// a = the transported input token (or `outside` when the shifted source leaves the input grid)
// and b = the output token, it counts Σ_a max_b N[a][b], the cells a single colour map a → b
// would get right. So a recolouring after a flip scores as well as the flip alone, and the
// identity (tried first, kept on ties) wins for rules that move nothing.
//
// Canvases are G × G token grids in ARC's encoding (PAD 0, EOS 1, colours ≥ 2); a grid is the
// bounding box of its colour tokens, wherever it sits on the canvas.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc_tokens.hpp>
#include <etrm/data/dihedral.hpp>

#include <cstddef>
#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace data {

inline constexpr int max_alignment_shift = 3;
inline constexpr int max_alignment_vocab = 32;  // contingency table bound

struct cell_alignment {
  int transform = 0;  // dihedral id, dihedral.hpp numbering
  int dr = 0, dc = 0;
  friend bool operator==(const cell_alignment&, const cell_alignment&) = default;
};

namespace detail {

struct canvas_box {
  int r0 = 0, c0 = 0, rows = 0, cols = 0;  // rows == 0: no grid on the canvas
};

// The bounding box of the colour tokens (≥ 2) of a G × G canvas.
ETRM_HD canvas_box colour_box(const std::int32_t* canvas, int G) {
  int r0 = G, c0 = G, r1 = -1, c1 = -1;
  for (int r = 0; r < G; ++r)
    for (int c = 0; c < G; ++c)
      if (canvas[r * G + c] >= 2) {
        r0 = r < r0 ? r : r0, c0 = c < c0 ? c : c0;
        r1 = r > r1 ? r : r1, c1 = c > c1 ? c : c1;
      }
  return r1 < 0 ? canvas_box{} : canvas_box{r0, c0, r1 - r0 + 1, c1 - c0 + 1};
}

// The input token that lands on cell (i, j) of the shifted transform, or -1 outside the input.
ETRM_HD std::int32_t transported_token(const std::int32_t* in, int G, const canvas_box& b, const cell_alignment& h,
                                       int i, int j) {
  const bool swap = dihedral_swaps_sides(h.transform);
  const int rows = swap ? b.cols : b.rows, cols = swap ? b.rows : b.cols, si = i - h.dr, sj = j - h.dc;
  if (si < 0 || sj < 0 || si >= rows || sj >= cols) return -1;
  const grid_cell s = dihedral_source(h.transform, si, sj, b.rows, b.cols);
  return in[(b.r0 + s.row) * G + b.c0 + s.col];
}

}  // namespace detail

// The best hypothesis for demos pairs[m] = [2, G, G] (input then output canvas) with
// present[m] != 0, m < M. V: vocabulary size, at most max_alignment_vocab (the caller checks:
// this runs on the device too). No present pair with a grid on both canvases: the identity.
// With `map` ([V]), also the colour map the demos support under it, the one its score counts:
// map[a] for a transported token a (a = 0 standing for "outside the input") is the output token
// most often found where a lands (the lowest on ties), or V + a where a lands nowhere (a kept,
// but marked as a colour the demos say nothing about), so map values lie in [0, 2V).
ETRM_HD cell_alignment search_alignment(const std::int32_t* pairs, const std::int32_t* present, int M, int G, int V,
                                        std::int32_t* map = nullptr) {
  constexpr int max_demos = 8;  // at most 8 demos are searched
  detail::canvas_box boxes[2 * max_demos];
  const int demos = M < max_demos ? M : max_demos;
  int cells = 0;
  for (int m = 0; m < demos; ++m) {
    if (!present[m]) continue;
    const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
    boxes[2 * m] = detail::colour_box(in, G);
    boxes[2 * m + 1] = detail::colour_box(in + G * G, G);
    if (!boxes[2 * m].rows) boxes[2 * m + 1].rows = 0;
    cells += boxes[2 * m + 1].rows * boxes[2 * m + 1].cols;
  }
  cell_alignment best{};
  int best_score = -1;
  int counts[max_alignment_vocab * max_alignment_vocab];
  std::int32_t images[max_alignment_vocab];  // the colour map of the current hypothesis
  // Shifts by growing |dr| + |dc| so that, on ties, the smallest move is kept.
  for (int reach = 0; reach <= 2 * max_alignment_shift; ++reach)
    for (int t = 0; t < num_dihedral; ++t)
      for (int dr = -max_alignment_shift; dr <= max_alignment_shift; ++dr)
        for (int dc = -max_alignment_shift; dc <= max_alignment_shift; ++dc) {
          if ((dr < 0 ? -dr : dr) + (dc < 0 ? -dc : dc) != reach) continue;
          const cell_alignment h{t, dr, dc};
          for (int k = 0; k < V * V; ++k) counts[k] = 0;
          for (int m = 0; m < demos; ++m) {
            const detail::canvas_box &bi = boxes[2 * m], &bo = boxes[2 * m + 1];
            if (!present[m] || !bo.rows) continue;
            const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
            const std::int32_t* out = in + G * G;
            for (int i = 0; i < bo.rows; ++i)
              for (int j = 0; j < bo.cols; ++j) {
                const std::int32_t a = detail::transported_token(in, G, bi, h, i, j);
                ++counts[(a < 0 ? 0 : a) * V + out[(bo.r0 + i) * G + bo.c0 + j]];
              }
          }
          int score = 0;
          for (int a = 0; a < V; ++a) {
            int top = 0;  // the most frequent output token where a lands, the lowest on ties
            for (int b = 1; b < V; ++b)
              if (counts[a * V + b] > counts[a * V + top]) top = b;
            score += counts[a * V + top];
            images[a] = std::int32_t(counts[a * V + top] ? top : V + a);
          }
          if (score > best_score) {
            best_score = score, best = h;
            if (map)
              for (int a = 0; a < V; ++a) map[a] = images[a];
          }
          if (best_score == cells) return best;  // nothing can do better
        }
  return best;
}

// A transported canvas (transport_canvas) with every colour cell, and every `outside` cell,
// replaced by its image under map (search_alignment's colour map); PAD and EOS stay. canvas: [G, G].
ETRM_HD void recolour_canvas(std::int32_t* canvas, int G, std::int32_t outside, const std::int32_t* map) {
  for (int i = 0; i < G * G; ++i) {
    std::int32_t& v = canvas[i];
    if (v == outside) v = map[0];
    else if (v >= arc_first_colour_token) v = map[v];
  }
}

// The query's input under h, on the canvas of its answer: out[i, j] for the cells of the
// transformed grid's extent (anchored where the input grid is) is the input token that lands
// there, or `outside` (a token id ≥ V, its own embedding row) where the shift brought in no
// cell; EOS on the border below and right of that extent, PAD beyond. in, out: [G, G].
ETRM_HD void transport_canvas(const std::int32_t* in, int G, const cell_alignment& h, std::int32_t outside,
                              std::int32_t* out) {
  for (int i = 0; i < G * G; ++i) out[i] = 0;
  const detail::canvas_box b = detail::colour_box(in, G);
  if (!b.rows) return;
  const bool swap = dihedral_swaps_sides(h.transform);
  const int rows = swap ? b.cols : b.rows, cols = swap ? b.rows : b.cols;
  for (int i = 0; i <= rows && b.r0 + i < G; ++i)
    for (int j = 0; j <= cols && b.c0 + j < G; ++j) {
      std::int32_t& o = out[(b.r0 + i) * G + b.c0 + j];
      if (i == rows || j == cols) {
        o = i == rows && j == cols ? 0 : arc_eos_token;  // the corner past both EOS lines stays PAD
        continue;
      }
      const std::int32_t a = detail::transported_token(in, G, b, h, i, j);
      o = a < 0 ? outside : a;
    }
}

}  // namespace data
ETRM_END_NAMESPACE
