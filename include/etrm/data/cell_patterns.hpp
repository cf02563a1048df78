// SPDX-License-Identifier: Apache-2.0
// A local rule read off a task's demonstrations: what the demos' input cells that look like a
// given cell became in their outputs. A cell looks like another at seven levels, tried in turn:
//   1. the same token and the same 8 neighbour ids (cell_neighbours.hpp: tokens, rays or
//      relations, whatever the encoder reads);
//   2. the same 8 neighbour ids, both black or both coloured: with relations a pattern that
//      does not depend on the palette, so an interior cell of a colour no demo shows still finds
//      the interior cells of the demos;
//   3., 4. the same with the 4 orthogonal neighbours only, where the diagonals differ;
//   5., 6. the same with only "holds the cell's own token or not" of each of the 4, where the
//      rest differs (black beside a cell in one grid, the border in another);
//   7. the same token alone (a colour map).
// At the first level with any match, the matches vote on their outcome: "kept its token", or
// the output token they took; the answer is the winner applied to the cell (ties: the lower
// code, "kept" first). Only demos whose output grid has the size and place of their input grid
// vote: the rule maps a cell to the cell at the same place.
//
// Canvases are G × G token grids in ARC's encoding (PAD 0, EOS 1, colours ≥ 2).
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc_tokens.hpp>
#include <etrm/data/cell_alignment.hpp>

#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace data {

// A cell's 8 neighbour ids: ids[d · stride] for direction d.
struct neighbour_view {
  const std::int32_t* ids;
  index_t stride;
  ETRM_HD std::int32_t operator[](int d) const { return ids[d * stride]; }
};

// The demos as the vote reads them. pairs: [M, 2, G, G] (input then output canvas), present: [M],
// neighbours: ids of every cell of pairs, direction d of cell i at neighbours[d · stride + i].
struct pattern_demos {
  const std::int32_t* pairs;
  const std::int32_t* present;
  const std::int32_t* neighbours;
  index_t stride;
  int M, G, V;  // V: vocabulary size, at most max_alignment_vocab (the caller checks)
  bool relations = false;  // the ids are neighbour_relation codes, not tokens
  unsigned voters = 0;  // bit m: demo m votes (find_voters)

  // Demo m votes when present, with an output grid the size and place of its input grid.
  ETRM_HD pattern_demos& find_voters() {
    voters = 0;
    for (int m = 0; m < M && m < 32; ++m) {
      if (!present[m]) continue;
      const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
      const detail::canvas_box a = detail::colour_box(in, G), b = detail::colour_box(in + G * G, G);
      if (a.rows && a.r0 == b.r0 && a.c0 == b.c0 && a.rows == b.rows && a.cols == b.cols) voters |= 1u << m;
    }
    return *this;
  }
  ETRM_HD bool votes(int m) const { return m < 32 && (voters >> m & 1u); }
  // The id of a neighbour that holds the token of a cell holding t.
  ETRM_HD std::int32_t own(std::int32_t t) const { return relations ? 2 : t; }

  // The answer for a cell holding `token` with neighbour ids `nb`, from the voting demos other
  // than `skip` (-1: all), or V when no input cell of theirs looks like it (or it is no colour).
  ETRM_HD std::int32_t answer(std::int32_t token, neighbour_view nb, int skip) const {
    if (token < arc_first_colour_token) return V;
    constexpr int orthogonal[4] = {1, 3, 4, 6};  // ↑ ← → ↓ in cell_neighbours.hpp's order
    int counts[max_alignment_vocab + 1];  // [0]: kept; [1 + t]: became token t
    const bool black = token == arc_first_colour_token;
    for (int level = 1; level <= 7; ++level) {
      const bool by_token = level % 2 == 1, coarse = level == 5 || level == 6;
      const int directions = level <= 2 ? 8 : level <= 6 ? 4 : 0;
      for (int k = 0; k <= V; ++k) counts[k] = 0;
      int matches = 0;
      for (int m = 0; m < M; ++m) {
        if (m == skip || !votes(m)) continue;
        const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
        for (int i = 0; i < G * G; ++i) {
          const std::int32_t t = in[i];
          if (t < arc_first_colour_token) continue;
          if (by_token ? t != token : (t == arc_first_colour_token) != black) continue;
          const neighbour_view other{neighbours + std::size_t(2 * m) * G * G + i, stride};
          bool same = true;
          for (int k = 0; k < directions && same; ++k) {
            const int d = directions == 8 ? k : orthogonal[k];
            same = coarse ? (other[d] == own(t)) == (nb[d] == own(token)) : other[d] == nb[d];
          }
          if (!same) continue;
          const std::int32_t out = in[G * G + i];
          ++counts[out == t ? 0 : 1 + out];
          ++matches;
        }
      }
      if (!matches) continue;
      int best = 0;
      for (int k = 1; k <= V; ++k)
        if (counts[k] > counts[best]) best = k;
      return best == 0 ? token : std::int32_t(best - 1);
    }
    return V;
  }
};

}  // namespace data
ETRM_END_NAMESPACE
