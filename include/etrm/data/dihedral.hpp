// SPDX-License-Identifier: Apache-2.0
// The 8 dihedral transforms of a grid as cell maps, with TRM's ids; no grid type needed, so the
// model's alignment search (cell_alignment.hpp) uses them without the data loaders.
#pragma once

#include <etrm/core/config.hpp>

#include <array>

ETRM_BEGIN_NAMESPACE
namespace data {

// Ids as TRM's dataset/common.py: 0 identity, 1..3 np.rot90 k times (counter-clockwise),
// 4 fliplr, 5 flipud, 6 transpose, 7 fliplr(rot90) (anti-transpose).
inline constexpr int num_dihedral = 8;
inline constexpr std::array<int, num_dihedral> dihedral_inverse = {0, 3, 2, 1, 4, 5, 6, 7};

// Host and device (the encoder's alignment search runs on the backend's device).
ETRM_HD constexpr bool dihedral_swaps_sides(int id) { return id == 1 || id == 3 || id == 6 || id == 7; }

struct grid_cell {
  int row, col;
};

// The cell of an h x w input that lands on cell (i, j) of its transform `id`.
ETRM_HD constexpr grid_cell dihedral_source(int id, int i, int j, int h, int w) {
  switch (id) {
    case 1: return {j, w - 1 - i};
    case 2: return {h - 1 - i, w - 1 - j};
    case 3: return {h - 1 - j, i};
    case 4: return {i, w - 1 - j};
    case 5: return {h - 1 - i, j};
    case 6: return {j, i};
    case 7: return {h - 1 - j, w - 1 - i};
    default: return {i, j};
  }
}

}  // namespace data
ETRM_END_NAMESPACE
