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

// Where the dihedral transform d sends the displacement (dr, dc), |dr|, |dc| <= 3.
inline std::pair<int, int> dihedral_displacement(int d, int dr, int dc) {
  grid g(7, 7);
  g.at(3, 3) = 1;
  g.at(3 + dr, 3 + dc) = 2;
  const grid h = dihedral(g, d);
  int r1 = 0, c1 = 0, r2 = 0, c2 = 0;
  for (int r = 0; r < h.rows; ++r)
    for (int c = 0; c < h.cols; ++c) {
      if (h.at(r, c) == 1) r1 = r, c1 = c;
      if (h.at(r, c) == 2) r2 = r, c2 = c;
    }
  return {r2 - r1, c2 - c1};
}

// The transform k seen through d: d ∘ k ∘ d⁻¹ (augment.hpp numbering), from a table built once
// by applying the transforms to a grid whose cells are all distinct.
inline int conjugate_dihedral(int d, int k) {
  using table_t = std::array<std::array<int, num_dihedral>, num_dihedral>;
  static const table_t table = [] {
    grid g(2, 3);
    for (std::size_t i = 0; i < g.cells.size(); ++i) g.cells[i] = std::uint8_t(i + 1);
    table_t t{};
    for (int dd = 0; dd < num_dihedral; ++dd)
      for (int kk = 0; kk < num_dihedral; ++kk) {
        const grid target = dihedral(dihedral(dihedral(g, dihedral_inverse[std::size_t(dd)]), kk), dd);
        int j = 0;
        while (dihedral(g, j) != target)
          if (++j == num_dihedral) throw std::logic_error("conjugate_dihedral: the dihedral group is not closed");
        t[std::size_t(dd)][std::size_t(kk)] = j;
      }
    return t;
  }();
  return table.at(std::size_t(d)).at(std::size_t(k));
}

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
