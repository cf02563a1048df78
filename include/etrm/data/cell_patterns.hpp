// SPDX-License-Identifier: Apache-2.0
// A local rule read off a task's demonstrations: what the demos' input cells that look like a
// given cell became in their outputs. "Look like" is one of 19 keys (pattern_key_at): the same
// token, or only both black or both coloured, with the same neighbour relations
// (cell_neighbours.hpp: the cell's own token, black, another colour, the border, beyond) of the
// adjacent cells, or of the first non-black cells along the 8 rays, in all 8 directions, or in
// the 4 orthogonal ones, or with only "holds the cell's own token or not", or "lies past the
// grid or not", of each of the 4; or the same token alone (a colour map); or the same role, a
// colour every voting demo's input shows or not ("keep the colour all demos share, clear the
// rest" for colours no demo shows); or whether the cell lies between two cells of one colour
// along its row or column ("join pixel pairs", whichever way the query's pairs lie). A key
// without the token does not depend on the palette, so an interior cell of a colour no demo
// shows still finds the demos' interior cells.
//
// Which key a task's rule reads is found from its demos: each key is scored by the demos' input
// cells it answers right from the other demos (the share of the changed cells plus that of the
// kept ones, since most cells keep their token), and a cell is answered by the best-scored key
// under which some demo cell looks like it (ties: the order of the list). The matches vote on their outcome,
// "kept its token", "took the colour it lies between" or the output token they took (a cell
// votes for every outcome that fits it, so a cell that already had the colour a rule paints
// agrees with the painted ones); the answer is the winner applied to the cell (ties: the lower
// code, "kept" first). The answer says too whether its key answered every demo cell right
// (sure): a rule the demos show without exception. Only demos whose output grid has the size
// and place of their input grid vote: the rule maps a cell to the cell at the same place.
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

// A cell's relations: ids[d · stride] for relation d.
struct neighbour_view {
  const std::int32_t* ids;
  index_t stride;
  ETRM_HD std::int32_t operator[](int d) const { return ids[d * stride]; }
};

// A cell's relations (pattern_neighbours): the 8 adjacent cells', the 8 rays', then the colour it
// lies between (pattern_between).
inline constexpr int pattern_relations = 17;
inline constexpr int pattern_between = 16;

// How a key compares the relations it reads: all of each, only whether it is the cell's own
// token, or only whether it is a token of the grid (past the grid, or no colour to lie between).
enum class pattern_match : std::uint8_t { exact, own_token, outside };
// What a look-alike holds: the same token, the same class (black or coloured), or the same class
// and role (a colour every voting demo's input shows, or not).
enum class pattern_look : std::uint8_t { token, colour_class, role };

// One way for a demo cell to look like another (see the top): `look`, and the same relations, as
// `match` compares them, in the relations of `mask` (bit d: relation d of the 17).
struct pattern_key {
  pattern_look look;
  unsigned mask;
  pattern_match match;
};
inline constexpr int pattern_keys = 19;
// Keys in the order that breaks ties: the adjacent cells, then the rays, each by token, then by
// class, with all 8 relations, the 4 orthogonal ones, whether those are the cell's token, whether
// they lie past the grid; then the token alone, the role alone, lying between two cells of one
// colour or not. A function, not a table, for device code.
ETRM_HD constexpr pattern_key pattern_key_at(int k) {
  constexpr unsigned all = 0xFF, orthogonal = 0x5A;  // ↑ ← → ↓ are 1, 3, 4, 6
  if (k >= 16)
    return k == 16   ? pattern_key{pattern_look::token, 0, pattern_match::exact}
           : k == 17 ? pattern_key{pattern_look::role, 0, pattern_match::exact}
                     : pattern_key{pattern_look::colour_class, 1u << pattern_between, pattern_match::outside};
  const int shift = k < 8 ? 0 : 8, j = k % 8;
  const pattern_match match = j < 4 ? pattern_match::exact : j < 6 ? pattern_match::own_token : pattern_match::outside;
  return {j % 2 == 0 ? pattern_look::token : pattern_look::colour_class, (j < 2 ? all : orthogonal) << shift, match};
}

// out[d, n, r, c] for the N stacked G × G canvases `grids` ([N, G, G]): the relation to the
// cell of its adjacent neighbour in direction d < 8, of the first non-black cell along
// direction d − 8 for d < 16 (neighbour_tokens); for d = 16 the colour that the first
// non-black cells left and right of it both hold, or else those above and below it, PAD when
// neither. call(i) writes out[i], for a backend's for_each.
//   out: [17, N, G, G]
struct pattern_neighbours {
  const std::int32_t* grids;
  index_t N;
  int G;
  std::int32_t* out;

  ETRM_HD void operator()(index_t i) const {
    const index_t half = 8 * N * G * G;
    if (i >= 2 * half) {
      out[i] = between(i - 2 * half);
      return;
    }
    const bool rays = i >= half;
    neighbour_tokens{grids, N, G, {rays, true}, out + (rays ? half : 0)}(i - (rays ? half : 0));
  }

 private:
  ETRM_HD std::int32_t between(index_t cell) const {
    const index_t GG = index_t(G) * G;
    const std::int32_t* canvas = grids + cell / GG * GG;
    const int r = int(cell % GG / G), c = int(cell % G);
    for (int axis = 0; axis < 2; ++axis) {  // (0, ±1) along the row, then (±1, 0)
      const std::int32_t a = seen_from(canvas, G, r, c, -axis, axis - 1, true);
      if (a > arc_first_colour_token && a == seen_from(canvas, G, r, c, axis, 1 - axis, true)) return a;
    }
    return arc_pad_token;
  }
};

// A cell's answer: the token, or V for none, and whether the key that gave it answered every
// demo cell right. id() numbers the pairs for an embedding table of pattern_answer_ids(V) rows.
struct pattern_answer {
  std::int32_t token;
  bool sure;
  ETRM_HD std::int32_t id(int V) const { return token + (sure ? V + 1 : 0); }
};
ETRM_HD constexpr index_t pattern_answer_ids(index_t V) { return 2 * (V + 1); }
inline constexpr int pattern_ranking_ints = 2 + 2 * pattern_keys;  // pattern_demos::save

// The demos as the vote reads them. pairs: [M, 2, G, G] (input then output canvas), present: [M],
// neighbours: relations of every cell of pairs (pattern_neighbours), relation d of cell i at
// neighbours[d · stride + i].
// find_voters, then rank_keys, before answer.
struct pattern_demos {
  const std::int32_t* pairs;
  const std::int32_t* present;
  const std::int32_t* neighbours;
  index_t stride;
  int M, G, V;  // V: vocabulary size, at most max_alignment_vocab (the caller checks)
  unsigned voters = 0;  // bit m: demo m votes (find_voters)
  unsigned shared = 0;  // bit t: token t shows in every voting demo's input (find_voters)
  int order[pattern_keys] = {};  // the keys, best-scored first (rank_keys)
  bool sure[pattern_keys] = {};  // by key: it answers every voting demo's cell right (rank_keys)

  // Demo m votes when present, with an output grid the size and place of its input grid.
  ETRM_HD pattern_demos& find_voters() {
    voters = 0;
    shared = ~0u;
    for (int m = 0; m < M && m < 32; ++m) {
      if (!present[m]) continue;
      const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
      const detail::canvas_box a = detail::colour_box(in, G), b = detail::colour_box(in + G * G, G);
      if (!a.rows || a.r0 != b.r0 || a.c0 != b.c0 || a.rows != b.rows || a.cols != b.cols) continue;
      voters |= 1u << m;
      unsigned shows = 0;
      for (int i = 0; i < G * G; ++i) shows |= 1u << in[i];
      shared &= shows;
    }
    if (!voters) shared = 0;
    return *this;
  }
  ETRM_HD bool votes(int m) const { return m < 32 && (voters >> m & 1u); }

  // Scores every key by the voting demos' input cells it answers right from the other demos: the
  // share of the changed cells plus the share of the kept ones, so that neither a key that
  // keeps every cell nor one that changes every cell like the changed ones scores well.
  ETRM_HD pattern_demos& rank_keys() {
    int changed = 0, kept = 0, scores[pattern_keys];
    for (int k = 0; k < pattern_keys; ++k) {
      int changed_right = 0, kept_right = 0;
      for (int m = 0; m < M; ++m) {
        if (!votes(m)) continue;
        const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
        for (int i = 0; i < G * G; ++i) {
          const std::int32_t t = in[i], want = in[G * G + i];
          if (t < arc_first_colour_token) continue;
          if (k == 0) ++(want != t ? changed : kept);
          if (apply(vote(pattern_key_at(k), t, cell(m, i), m), t, cell(m, i)) == want)
            ++(want != t ? changed_right : kept_right);
        }
      }
      scores[k] = changed_right * (kept > 0 ? kept : 1) + kept_right * (changed > 0 ? changed : 1);
      sure[k] = changed_right == changed && kept_right == kept;
      order[k] = k;
      for (int j = k; j > 0 && scores[order[j]] > scores[order[j - 1]]; --j) {  // stable: ties keep list order
        const int o = order[j];
        order[j] = order[j - 1], order[j - 1] = o;
      }
    }
    return *this;
  }

  // What find_voters and rank_keys found, as pattern_ranking_ints integers: to store once and
  // answer from in another call.
  ETRM_HD void save(std::int32_t* out) const {
    out[0] = std::int32_t(voters), out[1] = std::int32_t(shared);
    for (int k = 0; k < pattern_keys; ++k) out[2 + k] = order[k], out[2 + pattern_keys + k] = sure[k];
  }
  ETRM_HD pattern_demos& load(const std::int32_t* in) {
    voters = unsigned(in[0]), shared = unsigned(in[1]);
    for (int k = 0; k < pattern_keys; ++k) order[k] = in[2 + k], sure[k] = in[2 + pattern_keys + k] != 0;
    return *this;
  }

  // The answer for a cell holding `token` with relations `nb`, from the voting demos other than
  // `skip` (-1: all), or V when no input cell of theirs looks like it (or it is no colour).
  ETRM_HD pattern_answer answer(std::int32_t token, neighbour_view nb, int skip) const {
    if (token < arc_first_colour_token) return {V, false};
    for (int r = 0; r < pattern_keys; ++r)
      if (const int code = vote(pattern_key_at(order[r]), token, nb, skip); code >= 0)
        return {apply(code, token, nb), sure[order[r]]};
    return {V, false};
  }

 private:
  // Outcome codes: 0 kept its token, 1 + t became token t, V + 1 took the colour it lies
  // between. The token a code gives a cell holding `token` with relations `nb`, or V for no
  // outcome (-1) or none to take.
  ETRM_HD std::int32_t apply(int code, std::int32_t token, neighbour_view nb) const {
    if (code == V + 1) return nb[pattern_between] > arc_first_colour_token ? nb[pattern_between] : V;
    return code < 0 ? V : code == 0 ? token : std::int32_t(code - 1);
  }
  ETRM_HD neighbour_view cell(int m, int i) const { return {neighbours + std::size_t(2 * m) * G * G + i, stride}; }
  // Whether two relations (neighbour_relation: PAD 0 and EOS 1 past the grid, 2 the cell's own
  // token; or the colours two cells lie between, PAD for none) are the same as `match` compares
  // them.
  ETRM_HD static bool alike(pattern_match match, std::int32_t a, std::int32_t b) {
    return match == pattern_match::exact       ? a == b
           : match == pattern_match::own_token ? (a == 2) == (b == 2)
                                               : (a <= arc_eos_token) == (b <= arc_eos_token);
  }
  // Whether a demo input token t looks like `token` as key h's look compares them.
  ETRM_HD bool looks_alike(pattern_look look, std::int32_t t, std::int32_t token) const {
    if (look == pattern_look::token) return t == token;
    const bool black = token == arc_first_colour_token;
    return (t == arc_first_colour_token) == black &&
           (look == pattern_look::colour_class || (shared >> t & 1u) == (shared >> token & 1u));
  }

  // The winning outcome of the voting demos' (but `skip`'s) input cells that look like a cell
  // holding `token` with relations `nb` under key h, or -1 when none does.
  ETRM_HD int vote(const pattern_key& h, std::int32_t token, neighbour_view nb, int skip) const {
    int counts[max_alignment_vocab + 2];  // by outcome code
    for (int k = 0; k <= V + 1; ++k) counts[k] = 0;
    int matches = 0;
    for (int m = 0; m < M; ++m) {
      if (m == skip || !votes(m)) continue;
      const std::int32_t* in = pairs + std::size_t(2 * m) * G * G;
      for (int i = 0; i < G * G; ++i) {
        const std::int32_t t = in[i];
        if (t < arc_first_colour_token || !looks_alike(h.look, t, token)) continue;
        const neighbour_view other = cell(m, i);
        bool same = true;
        for (int d = 0; d < pattern_relations && same; ++d)
          if (h.mask >> d & 1u) same = alike(h.match, other[d], nb[d]);
        if (!same) continue;
        // A cell votes for every outcome that fits it: when the rule paints cells one colour,
        // the cells that had it already agree with the others.
        const std::int32_t out = in[G * G + i];
        ++counts[1 + out];
        if (out == t) ++counts[0];
        if (out == other[pattern_between] && out > arc_first_colour_token) ++counts[V + 1];
        ++matches;
      }
    }
    if (!matches) return -1;
    int best = 0;
    for (int k = 1; k <= V + 1; ++k)
      if (counts[k] > counts[best]) best = k;
    return best;
  }
};

}  // namespace data
ETRM_END_NAMESPACE
