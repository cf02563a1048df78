// SPDX-License-Identifier: Apache-2.0
// A colour grid (ARC: 1..30 per side, colours 0..9) and the few operations every data
// module needs. `data/` knows grids, tokens and tasks, never tensors of a backend.
#pragma once

#include <etrm/core/config.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// cells: [rows, cols] row-major.
struct grid {
  int rows = 0;
  int cols = 0;
  std::vector<std::uint8_t> cells;

  grid() = default;
  grid(int r, int c, std::uint8_t fill = 0) : rows(r), cols(c), cells(std::size_t(r) * c, fill) {}

  std::uint8_t& at(int r, int c) { return cells[std::size_t(r) * cols + c]; }
  std::uint8_t at(int r, int c) const { return cells[std::size_t(r) * cols + c]; }
  bool operator==(const grid&) const = default;
};

// One demonstration or query: an input grid and its output grid.
struct grid_pair {
  grid input;
  grid output;
  bool operator==(const grid_pair&) const = default;
};

// A few-shot task: demonstrations ("train") and queries ("test").
struct task {
  std::string id;
  std::vector<grid_pair> train;
  std::vector<grid_pair> test;
};

}  // namespace data
ETRM_END_NAMESPACE
