// SPDX-License-Identifier: Apache-2.0
// Augmentation against the generator's split. Augmenting a task of rule r (colours permuted,
// then a dihedral transform: augment.hpp) shows the task of another rule r' of the same
// families: the colour map's pairs permuted, a shift or a transform conjugated, scale factors
// swapped. r' can be held out although r is not (a colour map 1>5 becomes 2>8 and
// held_out_colour_pair(2, 8) holds), so a training stream that augments must reject those
// draws, or "held-out parameter values" are shown in training after all.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/generator.hpp>

#include <array>
#include <stdexcept>
#include <utility>

ETRM_BEGIN_NAMESPACE
namespace data {

namespace detail {

// Where the dihedral transform d sends the displacement (dr, dc), |dr|, |dc| <= 3: the images of
// cells (3, 3) and (3 + dr, 3 + dc) of a 7 x 7 frame, found on cell coordinates alone.
constexpr std::pair<int, int> dihedral_displacement(int d, int dr, int dc) {
  int r1 = 0, c1 = 0, r2 = 0, c2 = 0;
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j) {
      const auto [r, c] = dihedral_source(d, i, j, 7, 7);
      if (r == 3 && c == 3) r1 = i, c1 = j;
      if (r == 3 + dr && c == 3 + dc) r2 = i, c2 = j;
    }
  return {r2 - r1, c2 - c1};
}

// A 2 x 3 grid of distinct cells, as the ids of its cells in row-major order.
struct labelled_grid {
  int rows = 2, cols = 3;
  std::array<int, 6> ids{0, 1, 2, 3, 4, 5};
  constexpr bool operator==(const labelled_grid&) const = default;
};

constexpr labelled_grid transformed(const labelled_grid& g, int d) {
  labelled_grid out{dihedral_swaps_sides(d) ? g.cols : g.rows, dihedral_swaps_sides(d) ? g.rows : g.cols, {}};
  for (int i = 0; i < out.rows; ++i)
    for (int j = 0; j < out.cols; ++j) {
      const auto [r, c] = dihedral_source(d, i, j, g.rows, g.cols);
      out.ids[std::size_t(i * out.cols + j)] = g.ids[std::size_t(r * g.cols + c)];
    }
  return out;
}

// conjugation[d][k] = the transform k seen through d: d ∘ k ∘ d⁻¹ (augment.hpp numbering).
using dihedral_table = std::array<std::array<int, num_dihedral>, num_dihedral>;
constexpr dihedral_table conjugation_table() {
  const labelled_grid g;
  dihedral_table t{};
  for (int d = 0; d < num_dihedral; ++d)
    for (int k = 0; k < num_dihedral; ++k) {
      const labelled_grid target = transformed(transformed(transformed(g, dihedral_inverse[std::size_t(d)]), k), d);
      int j = 0;
      while (transformed(g, j) != target)
        if (++j == num_dihedral) throw std::logic_error("conjugation_table: the dihedral group is not closed");
      t[std::size_t(d)][std::size_t(k)] = j;
    }
  return t;
}
inline constexpr dihedral_table conjugation = conjugation_table();

inline int conjugate_dihedral(int d, int k) { return conjugation.at(std::size_t(d)).at(std::size_t(k)); }

// The step an augmented task shows, for every parameter the split depends on
// (step_params_held_out): colours of color_map and fill_enclosed, the dihedral transform, the
// shift, scale and tile factors. extend_lines' held-out value (all four directions) is fixed by
// every transform, so its parameters are left as they are, as are the other families' (which
// hold no parameter value out).
inline rule_step split_image(const rule_step& s, const augmentation& a) {
  rule_step out = s;
  auto& p = out.p;
  const auto colour = [&](int c) { return int(a.colours[std::size_t(c)]); };
  switch (s.fam) {
    case family::color_map:
      for (int k = 0; k < s.p[0]; ++k) {
        p[std::size_t(1 + k)] = colour(s.p[std::size_t(1 + k)]);
        p[std::size_t(4 + k)] = colour(s.p[std::size_t(4 + k)]);
      }
      break;
    case family::fill_enclosed:
      p[0] = colour(s.p[0]);
      break;
    case family::dihedral:
      p[0] = conjugate_dihedral(a.dihedral, s.p[0]);
      break;
    case family::translate: {
      const auto [dr, dc] = dihedral_displacement(a.dihedral, s.p[0], s.p[1]);
      p[0] = dr, p[1] = dc;
      break;
    }
    case family::scale_up:
    case family::tile:
      if (dihedral_swaps_sides(a.dihedral)) std::swap(p[0], p[1]);
      break;
    default:
      break;
  }
  return out;
}

}  // namespace detail

// Whether tasks of r, augmented by a, are tasks of a held-out rule.
inline bool shows_held_out(const rule& r, const augmentation& a) {
  rule image{detail::split_image(r.first, a), std::nullopt};
  if (r.then) image.then = detail::split_image(*r.then, a);
  return is_held_out(image);
}

}  // namespace data
ETRM_END_NAMESPACE
