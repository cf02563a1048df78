// SPDX-License-Identifier: Apache-2.0
// ARC augmentations (trm-computation.md §5.5): the 8 dihedral transforms with TRM's ids, colour
// permutations that keep black (0) fixed, and an `augmentation` that applies both to a whole task
// (colours first, then the dihedral) plus an optional seed for per-pair canvas translation. Also
// the content hashes used to reject duplicate augmentations, to match predictions to test pairs
// and to find evaluation tasks inside training data.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/core/rng.hpp>
#include <etrm/data/arc_encoding.hpp>
#include <etrm/data/dihedral.hpp>
#include <etrm/data/grid.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// ---- random draws ---------------------------------------------------------------------------

// Sequential draws from the counter-based RNG: a key fixes the whole sequence, so an
// augmentation or an offset can be regenerated at any time instead of being stored.
struct draw_stream {
  philox_key key;
  std::uint64_t index = 0;
  std::uint64_t below(std::uint64_t n) { return uniform_index(key, index++, n); }
};

namespace detail {
// splitmix64 finaliser: cheap, well mixed, constexpr (hash tables below are built at compile time).
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace detail

// Folds several counters (group, augmentation, example, ...) into one RNG stream id.
constexpr std::uint64_t stream_id(std::initializer_list<std::uint64_t> parts) {
  std::uint64_t h = 0x5EEDull;
  for (auto p : parts) h = detail::mix64(h ^ p);
  return h;
}

// ---- dihedral transforms (ids and cell maps in dihedral.hpp) -------------------------------------

inline grid dihedral(const grid& g, int id) {
  if (id < 0 || id >= num_dihedral) throw std::invalid_argument("dihedral: id must be 0..7");
  grid out = dihedral_swaps_sides(id) ? grid(g.cols, g.rows) : grid(g.rows, g.cols);
  for (int i = 0; i < out.rows; ++i)
    for (int j = 0; j < out.cols; ++j) {
      const auto [r, c] = dihedral_source(id, i, j, g.rows, g.cols);
      out.at(i, j) = g.at(r, c);
    }
  return out;
}

// ---- colour permutations ----------------------------------------------------------------------

// map[c] is the new colour of colour c; map[0] == 0 always.
using colour_map = std::array<std::uint8_t, arc_num_colours>;

constexpr colour_map identity_colours() {
  colour_map m{};
  for (int c = 0; c < arc_num_colours; ++c) m[std::size_t(c)] = std::uint8_t(c);
  return m;
}

inline colour_map invert_colours(const colour_map& m) {
  colour_map inv{};
  for (int c = 0; c < arc_num_colours; ++c) inv[m[std::size_t(c)]] = std::uint8_t(c);
  return inv;
}

inline grid apply_colours(const grid& g, const colour_map& m) {
  grid out = g;
  for (auto& v : out.cells) v = m[v];
  return out;
}

// Uniform over the 9! permutations of 1..9 (Fisher-Yates).
inline colour_map random_colour_map(draw_stream& s) {
  colour_map m = identity_colours();
  for (std::size_t i = arc_num_colours - 1; i >= 2; --i) std::swap(m[i], m[1 + s.below(i)]);
  return m;
}

// ---- content hashes ---------------------------------------------------------------------------
// A grid hash is linear in per-colour sums of position keys, so the hash of a recoloured grid
// costs 10 multiplications instead of a pass over the cells: that is what makes rejecting
// duplicate augmentations (up to 5000 draws per task) cheap.

namespace detail {
inline constexpr auto position_keys = [] {
  std::array<std::uint64_t, 32 * 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = mix64(0xA5A5ull + i);
  return k;
}();
inline constexpr auto colour_keys = [] {
  std::array<std::uint64_t, arc_num_colours> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = mix64(0xC0105ull + i) | 1u;
  return k;
}();

struct colour_sums {
  std::uint64_t shape = 0;
  std::array<std::uint64_t, arc_num_colours> by_colour{};
};

inline colour_sums sums_of(const grid& g) {
  colour_sums s;
  s.shape = mix64((std::uint64_t(g.rows) << 32) | std::uint64_t(g.cols));
  for (int r = 0; r < g.rows; ++r)
    for (int c = 0; c < g.cols; ++c) s.by_colour[g.at(r, c)] += position_keys[std::size_t(r) * 32 + c];
  return s;
}

inline std::uint64_t hash_recoloured(const colour_sums& s, const colour_map& m) {
  std::uint64_t h = s.shape;
  for (std::size_t c = 0; c < arc_num_colours; ++c) h += colour_keys[m[c]] * s.by_colour[c];
  return mix64(h);
}

inline std::uint64_t pair_hash(std::uint64_t input, std::uint64_t output) { return mix64(input ^ mix64(output ^ 0x9A125ull)); }

// Order-insensitive: sorts its argument.
inline std::uint64_t multiset_hash(std::vector<std::uint64_t>& hashes) {
  std::sort(hashes.begin(), hashes.end());
  std::uint64_t h = mix64(hashes.size());
  for (auto x : hashes) h = mix64(h ^ x);
  return h;
}
}  // namespace detail

inline std::uint64_t grid_hash(const grid& g) { return detail::hash_recoloured(detail::sums_of(g), identity_colours()); }

// The set of a task's input/output pairs, demonstrations and tests together, in any order: equal
// for two copies of a task even when pairs were reordered or moved between train and test.
inline std::uint64_t pair_set_hash(const task& t) {
  std::vector<std::uint64_t> hs;
  for (const auto* pairs : {&t.train, &t.test})
    for (const auto& p : *pairs) hs.push_back(detail::pair_hash(grid_hash(p.input), grid_hash(p.output)));
  return detail::multiset_hash(hs);
}

// ---- augmentation -------------------------------------------------------------------------------

struct augmentation {
  int dihedral = 0;
  colour_map colours = identity_colours();
  // Seed of the per-pair canvas offsets; none: every pair at (0, 0), as for the test split.
  std::optional<std::uint64_t> translation;
  bool operator==(const augmentation&) const = default;
};

inline grid apply(const augmentation& a, const grid& g) { return dihedral(apply_colours(g, a.colours), a.dihedral); }

inline grid_pair apply(const augmentation& a, const grid_pair& p) { return {apply(a, p.input), apply(a, p.output)}; }

inline task apply(const augmentation& a, const task& t) {
  task out{t.id, {}, {}};
  for (const auto& p : t.train) out.train.push_back(apply(a, p));
  for (const auto& p : t.test) out.test.push_back(apply(a, p));
  return out;
}

// Back to the original frame: inverse dihedral first, then inverse colours.
inline grid invert(const augmentation& a, const grid& g) {
  return apply_colours(dihedral(g, dihedral_inverse[std::size_t(a.dihedral)]), invert_colours(a.colours));
}

// Offset of example `example` of `num_examples` whose (augmented) input and output span at most
// rows x cols: uniform so that both fit, input and output sharing it; one example chosen by the
// seed stays at (0, 0) so the model also sees the test placement (spec §5.5).
inline canvas_offset translation_offset(const augmentation& a, std::size_t example, std::size_t num_examples,
                                        int rows, int cols) {
  if (!a.translation) return {};
  const std::uint64_t seed = *a.translation;
  if (example == uniform_index({seed, ~0ull}, 0, num_examples)) return {};
  const philox_key key{seed, example};
  return {int(uniform_index(key, 0, std::uint64_t(arc_canvas_side - rows + 1))),
          int(uniform_index(key, 1, std::uint64_t(arc_canvas_side - cols + 1)))};
}

// The draw-th random augmentation of a key: a dihedral id and a colour map, each uniform. Draws
// are random-access, so a dataset stores only the numbers of the draws it keeps.
inline augmentation augmentation_draw(philox_key key, std::uint64_t draw) {
  constexpr std::uint64_t draws_per_augmentation = 1 + (arc_num_colours - 2);  // dihedral + Fisher-Yates swaps
  draw_stream s{key, draw * draws_per_augmentation};
  augmentation a;
  a.dihedral = int(s.below(num_dihedral));
  a.colours = random_colour_map(s);
  return a;
}

// Numbers of the draws of `key` whose augmented tasks differ from each other and from the
// original, up to `count` of them within retries_factor * count draws (TRM's rejection by
// content hash over all of the task's pairs). Fewer come back for tasks with few colours or
// symmetric grids.
inline std::vector<std::uint32_t> distinct_augmentation_draws(const task& t, std::size_t count, philox_key key,
                                                              std::size_t retries_factor = 5) {
  struct pair_sums {
    std::array<detail::colour_sums, num_dihedral> input, output;
  };
  std::vector<pair_sums> sums;
  for (const auto* pairs : {&t.train, &t.test})
    for (const auto& p : *pairs) {
      pair_sums& s = sums.emplace_back();
      for (int d = 0; d < num_dihedral; ++d) {
        s.input[std::size_t(d)] = detail::sums_of(dihedral(p.input, d));
        s.output[std::size_t(d)] = detail::sums_of(dihedral(p.output, d));
      }
    }
  std::vector<std::uint64_t> scratch(sums.size());
  const auto content_hash = [&](const augmentation& a) {
    const auto d = std::size_t(a.dihedral);
    for (std::size_t i = 0; i < sums.size(); ++i)
      scratch[i] = detail::pair_hash(detail::hash_recoloured(sums[i].input[d], a.colours),
                                     detail::hash_recoloured(sums[i].output[d], a.colours));
    return detail::multiset_hash(scratch);
  };

  std::vector<std::uint32_t> kept;
  std::unordered_set<std::uint64_t> seen{content_hash(augmentation{})};
  for (std::uint32_t draw = 0; draw < retries_factor * count && kept.size() < count; ++draw)
    if (seen.insert(content_hash(augmentation_draw(key, draw))).second) kept.push_back(draw);
  return kept;
}

}  // namespace data
ETRM_END_NAMESPACE
