// SPDX-License-Identifier: Apache-2.0
// Grid analysis shared by the few-shot generator's rules and its tests: the ARC validity check
// and connected objects. (The dihedral transforms live in augment.hpp.)
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/grid.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// ARC's limits: 1..30 cells per side, colours 0..9.
inline bool is_arc_grid(const grid& g) {
  if (g.rows < 1 || g.rows > 30 || g.cols < 1 || g.cols > 30) return false;
  if (g.cells.size() != std::size_t(g.rows) * g.cols) return false;
  return std::all_of(g.cells.begin(), g.cells.end(), [](std::uint8_t v) { return v <= 9; });
}

// A 4-connected set of equal, non-zero cells. cells: row-major flat indices.
struct grid_object {
  std::uint8_t colour = 0;
  std::vector<int> cells;
  int top = 0, left = 0, bottom = 0, right = 0;  // inclusive bounding box
  int size() const { return int(cells.size()); }
};

// Objects in the row-major order of their first cell.
inline std::vector<grid_object> find_objects(const grid& g) {
  std::vector<grid_object> objects;
  std::vector<char> seen(g.cells.size(), 0);
  std::vector<int> stack;
  for (int start = 0; start < int(g.cells.size()); ++start) {
    if (seen[start] || g.cells[start] == 0) continue;
    grid_object o;
    o.colour = g.cells[start];
    o.top = o.bottom = start / g.cols;
    o.left = o.right = start % g.cols;
    seen[start] = 1;
    stack.assign(1, start);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      o.cells.push_back(i);
      const int r = i / g.cols, c = i % g.cols;
      o.top = std::min(o.top, r), o.bottom = std::max(o.bottom, r);
      o.left = std::min(o.left, c), o.right = std::max(o.right, c);
      const int nr[4] = {r - 1, r + 1, r, r}, nc[4] = {c, c, c - 1, c + 1};
      for (int d = 0; d < 4; ++d) {
        if (nr[d] < 0 || nr[d] >= g.rows || nc[d] < 0 || nc[d] >= g.cols) continue;
        const int n = nr[d] * g.cols + nc[d];
        if (!seen[n] && g.cells[n] == o.colour) {
          seen[n] = 1;
          stack.push_back(n);
        }
      }
    }
    std::sort(o.cells.begin(), o.cells.end());
    objects.push_back(std::move(o));
  }
  return objects;
}

}  // namespace data
ETRM_END_NAMESPACE
