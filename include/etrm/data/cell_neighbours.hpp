// SPDX-License-Identifier: Apache-2.0
// The 8 neighbours of a cell that the encoder's neighbour tables read: the adjacent cells, or
// with `rays` what the cell sees along each of the 8 directions: the first token that is not
// black (ARC colour 0, the generator's and most ARC tasks' background). Either is PAD past the
// canvas. Inside a grid a ray meets the nearest coloured cell in that direction, or the grid's
// EOS border where there is none, so "a pixel of colour c somewhere to my left" or "the same
// colour above and below me" is a property of the cell itself rather than a relation across the
// grid. Next to a coloured cell the ray stops at once, so the 3×3 neighbourhood of a cell inside
// a shape is kept too. With `relations` each of the 8 ids says how that neighbour relates to the
// cell itself (the same token, black, another colour, the border, beyond the canvas), a pattern
// that does not depend on the task's colours: "an interior cell", "a lone pixel", "the same
// colour further along this row" read the same in every palette.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc_tokens.hpp>

#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace data {

// The 8 directions (row, column steps), in the order of the encoder's neighbour tables.
// (−1,−1) (−1,0) (−1,1) (0,−1) (0,1) (1,−1) (1,0) (1,1); functions, not tables, for device code.
ETRM_HD constexpr int neighbour_dr(index_t d) { return d < 3 ? -1 : d < 5 ? 0 : 1; }
ETRM_HD constexpr int neighbour_dc(index_t d) { return d == 0 || d == 3 || d == 5 ? -1 : d == 1 || d == 6 ? 0 : 1; }

// What the 8 ids of a cell hold: the adjacent tokens, or (rays) the first non-black token along
// each direction; with `relations`, that token's relation to the cell's own (neighbour_relation).
struct neighbour_kind {
  bool rays = false;
  bool relations = false;
};

// The relation ids: PAD (0) beyond the canvas and EOS (1) on the border as tokens, then the
// neighbour holds the cell's own token (2), black where the cell is not (3), another colour (4).
inline constexpr std::int32_t neighbour_relation_ids = 5;
ETRM_HD constexpr std::int32_t neighbour_relation(std::int32_t cell, std::int32_t seen) {
  return seen <= arc_eos_token ? seen : seen == cell ? 2 : seen == arc_first_colour_token ? 3 : 4;
}

// The token at (r + dr, c + dc) of a G × G canvas, or with `rays` the first token != black met
// stepping from (r, c) by (dr, dc); PAD when the canvas ends first.
ETRM_HD constexpr std::int32_t seen_from(const std::int32_t* canvas, int G, int r, int c, int dr, int dc, bool rays) {
  for (int y = r + dr, x = c + dc; y >= 0 && x >= 0 && y < G && x < G; y += dr, x += dc)
    if (const std::int32_t t = canvas[y * G + x]; !rays || t != arc_first_colour_token) return t;
  return arc_pad_token;
}

// out[d, n, r, c] = the token at (r + dr, c + dc) of canvas n for (dr, dc) = (neighbour_dr(d),
// neighbour_dc(d)), or with `rays` the first token != black met stepping from (r, c) by (dr, dc);
// PAD (0) when the canvas ends first; with `relations`, its relation to the token at (r, c).
// call(i) writes out[i], so that a backend's for_each runs it where the grids are.
//   grids: [N, G, G]; out: [8, N, G, G]
struct neighbour_tokens {
  const std::int32_t* grids;
  index_t N;
  int G;
  neighbour_kind kind;
  std::int32_t* out;

  ETRM_HD void operator()(index_t i) const {
    const index_t GG = index_t(G) * G, n = N * GG, d = i / n, g = (i - d * n) / GG, cell = i - d * n - g * GG;
    const int r = int(cell / G), c = int(cell % G);
    const std::int32_t* canvas = grids + g * GG;
    const std::int32_t seen = seen_from(canvas, G, r, c, neighbour_dr(d), neighbour_dc(d), kind.rays);
    out[i] = kind.relations ? neighbour_relation(canvas[r * G + c], seen) : seen;
  }
};

}  // namespace data
ETRM_END_NAMESPACE
