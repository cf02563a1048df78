// SPDX-License-Identifier: Apache-2.0
// A local rule read off a task's demonstrations: what the demos' input cells that look like a
// given cell became in their outputs. "Look like" is one of 17 keys (pattern_key_at): the same
// token, or only both black or both coloured, with the same neighbour relations
// (cell_neighbours.hpp: the cell's own token, black, another colour, the border, beyond) of the
// adjacent cells, or of the first non-black cells along the 8 rays, in all 8 directions, or in
// the 4 orthogonal ones, or with only "holds the cell's own token or not", or "lies past the
// grid or not", of each of the 4; or the same token alone (a colour map). A key without the
// token does not depend on the palette, so an interior cell of a colour no demo shows still
// finds the demos' interior cells, and the rays make "between two pixels of one colour" a key.
//
// Which key a task's rule reads is found from its demos: each key is scored by the demos' input
// cells it answers right from the other demos (a changed cell outweighs all kept ones, since
// most cells keep their token), and a cell is answered by the best-scored key under which some
// demo cell looks like it (ties: the order of the list). The matches vote on their outcome,
// "kept its token" or the output token they took (a kept cell votes for both, so a cell that
// already had the colour a rule paints agrees with the painted ones); the answer is the winner
// applied to the cell (ties: the lower code, "kept" first). Only demos whose output grid has
// the size and place of their input grid vote: the rule maps a cell to the cell at the same place.
//
// Canvases are G × G token grids in ARC's encoding (PAD 0, EOS 1, colours ≥ 2). The cost is
// quadratic in the demo cells: meant for small canvases (the generator's), not 30 × 30 ARC.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc_tokens.hpp>
#include <etrm/data/cell_alignment.hpp>
#include <etrm/data/cell_neighbours.hpp>

#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace data {

// A cell's neighbour relations: ids[d · stride] for direction d.
struct neighbour_view {
  const std::int32_t* ids;
  index_t stride;
  ETRM_HD std::int32_t operator[](int d) const { return ids[d * stride]; }
};

// A cell's 16 neighbour relations (pattern_neighbours): the 8 adjacent cells', then the 8 rays'.
inline constexpr int pattern_directions = 16;

// How a key compares the relations in its directions: all of each, only whether it is the
// cell's own token, or only whether it lies past the grid (the border or beyond).
enum class pattern_match : std::uint8_t { exact, own_token, outside };

// One way for a demo cell to look like another (see the top): the same token, or only the same
// class (black or coloured), and the same relations, as `match` compares them, in the directions
// of `mask` (bit d: direction d of the 16).
struct pattern_key {
  bool by_token;
  unsigned mask;
  pattern_match match;
};
inline constexpr int pattern_keys = 17;
// Keys in the order that breaks ties: the adjacent cells, then the rays, each by token, then by
// class, with all 8 relations, the 4 orthogonal ones, whether those are the cell's token, whether
// they lie past the grid; then the token alone. A function, not a table, for device code.
ETRM_HD constexpr pattern_key pattern_key_at(int k) {
  constexpr unsigned all = 0xFF, orthogonal = 0x5A;  // ↑ ← → ↓ are 1, 3, 4, 6
  const int shift = k < 8 ? 0 : 8, j = k % 8;
  const pattern_match match = j < 4 ? pattern_match::exact : j < 6 ? pattern_match::own_token : pattern_match::outside;
  return k == pattern_keys - 1 ? pattern_key{true, 0, pattern_match::exact}
                               : pattern_key{j % 2 == 0, (j < 2 ? all : orthogonal) << shift, match};
}

// out[d, n, r, c] for the N stacked G × G canvases `grids` ([N, G, G]): the relation to the
// cell of its adjacent neighbour in direction d < 8, of the first non-black cell along
// direction d − 8 otherwise (neighbour_tokens). call(i) writes out[i], for a backend's for_each.
//   out: [16, N, G, G]
struct pattern_neighbours {
  const std::int32_t* grids;
  index_t N;
  int G;
  std::int32_t* out;

  ETRM_HD void operator()(index_t i) const {
    const index_t half = 8 * N * G * G;
    const bool rays = i >= half;
    neighbour_tokens{grids, N, G, {rays, true}, out + (rays ? half : 0)}(i - (rays ? half : 0));
  }
};

// The demos as the vote reads them. pairs: [M, 2, G, G] (input then output canvas), present: [M],
// neighbours: relations of every cell of pairs (pattern_neighbours), direction d of cell i at
// neighbours[d · stride + i].
// find_voters, then rank_keys, before answer.
struct pattern_demos {
  const std::int32_t* pairs;
  const std::int32_t* present;
  const std::int32_t* neighbours;
  index_t stride;
  int M, G, V;  // V: vocabulary size, at most max_alignment_vocab (the caller checks)
  unsigned voters = 0;  // bit m: demo m votes (find_voters)
  int order[pattern_keys] = {};  // the keys, best-scored first (rank_keys)

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

  // Scores every key by the voting demos' input cells it answers right from the other demos.
  ETRM_HD pattern_demos& rank_keys() {
    int score[pattern_keys];
    for (int k = 0; k < pattern_keys; ++k) {
      score[k] = 0;
      for (int m = 0; m < M; ++m) {
        if (!votes(m)) continue;
        const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
        for (int i = 0; i < G * G; ++i)
          if (const std::int32_t t = in[i]; t >= arc_first_colour_token) {
            const std::int32_t want = in[G * G + i];
            // A changed cell answered right outweighs every kept one: most cells keep their token.
            if (apply(vote(pattern_key_at(k), t, cell(m, i), m), t) == want) score[k] += want != t ? 2 * G * G * M : 1;
          }
      }
      order[k] = k;
      for (int j = k; j > 0 && score[order[j]] > score[order[j - 1]]; --j) {  // stable: ties keep list order
        const int o = order[j];
        order[j] = order[j - 1], order[j - 1] = o;
      }
    }
    return *this;
  }

  // The answer for a cell holding `token` with neighbour relations `nb`, from the voting demos
  // other than `skip` (-1: all), or V when no input cell of theirs looks like it (or it is no
  // colour).
  ETRM_HD std::int32_t answer(std::int32_t token, neighbour_view nb, int skip) const {
    if (token < arc_first_colour_token) return V;
    for (int r = 0; r < pattern_keys; ++r)
      if (const int code = vote(pattern_key_at(order[r]), token, nb, skip); code >= 0) return apply(code, token);
    return V;
  }

 private:
  // Outcome codes: 0 kept its token, 1 + t became token t. The token a code gives a cell holding
  // `token`, or V for no outcome (-1).
  ETRM_HD std::int32_t apply(int code, std::int32_t token) const {
    return code < 0 ? V : code == 0 ? token : std::int32_t(code - 1);
  }
  ETRM_HD neighbour_view cell(int m, int i) const { return {neighbours + std::size_t(2 * m) * G * G + i, stride}; }
  // Whether two neighbour relations (neighbour_relation: PAD 0 and EOS 1 past the grid, 2 the
  // cell's own token) are the same as `match` compares them.
  ETRM_HD static bool alike(pattern_match match, std::int32_t a, std::int32_t b) {
    return match == pattern_match::exact       ? a == b
           : match == pattern_match::own_token ? (a == 2) == (b == 2)
                                               : (a <= arc_eos_token) == (b <= arc_eos_token);
  }

  // The winning outcome of the voting demos' (but `skip`'s) input cells that look like a cell
  // holding `token` with relations `nb` under key h, or -1 when none does.
  ETRM_HD int vote(const pattern_key& h, std::int32_t token, neighbour_view nb, int skip) const {
    int counts[max_alignment_vocab + 1];  // by outcome code
    for (int k = 0; k <= V; ++k) counts[k] = 0;
    const bool black = token == arc_first_colour_token;
    int matches = 0;
    for (int m = 0; m < M; ++m) {
      if (m == skip || !votes(m)) continue;
      const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
      for (int i = 0; i < G * G; ++i) {
        const std::int32_t t = in[i];
        if (t < arc_first_colour_token || (h.by_token ? t != token : (t == arc_first_colour_token) != black)) continue;
        const neighbour_view other = cell(m, i);
        bool same = true;
        for (int d = 0; d < pattern_directions && same; ++d)
          if (h.mask >> d & 1u) same = alike(h.match, other[d], nb[d]);
        if (!same) continue;
        // A kept cell votes for "kept" and for its token: when the rule paints cells one colour,
        // the cells that had it already agree with the others.
        const std::int32_t out = in[G * G + i];
        ++counts[1 + out];
        if (out == t) ++counts[0];
        ++matches;
      }
    }
    if (!matches) return -1;
    int best = 0;
    for (int k = 1; k <= V; ++k)
      if (counts[k] > counts[best]) best = k;
    return best;
  }
};

}  // namespace data
ETRM_END_NAMESPACE
