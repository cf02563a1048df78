// SPDX-License-Identifier: Apache-2.0
// Dihedral transforms against numpy's definitions, every transform undone by its inverse,
// colour maps, whole-task augmentations, content hashes, duplicate rejection and translation.
#include <etrm/data/arc.hpp>
#include <etrm/data/augment.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <string>

using namespace etrm::data;

std::optional<std::filesystem::path> arc_data_dir();  // data_arc_test.cpp

namespace {

grid random_grid(draw_stream& s) {
  grid g(1 + int(s.below(30)), 1 + int(s.below(30)));
  for (auto& v : g.cells) v = std::uint8_t(s.below(10));
  return g;
}

// 2x3 grid [[1,2,3],[4,5,6]] and the results numpy gives for it.
grid g23() {
  grid g(2, 3);
  for (int i = 0; i < 6; ++i) g.cells[std::size_t(i)] = std::uint8_t(i + 1);
  return g;
}
grid from(int rows, int cols, std::vector<std::uint8_t> cells) {
  grid g(rows, cols);
  g.cells = std::move(cells);
  return g;
}

}  // namespace

TEST_CASE("dihedral ids match TRM's numpy transforms") {
  const grid g = g23();
  CHECK(dihedral(g, 0) == g);
  CHECK(dihedral(g, 1) == from(3, 2, {3, 6, 2, 5, 1, 4}));  // np.rot90(a, 1)
  CHECK(dihedral(g, 2) == from(2, 3, {6, 5, 4, 3, 2, 1}));  // np.rot90(a, 2)
  CHECK(dihedral(g, 3) == from(3, 2, {4, 1, 5, 2, 6, 3}));  // np.rot90(a, 3)
  CHECK(dihedral(g, 4) == from(2, 3, {3, 2, 1, 6, 5, 4}));  // np.fliplr
  CHECK(dihedral(g, 5) == from(2, 3, {4, 5, 6, 1, 2, 3}));  // np.flipud
  CHECK(dihedral(g, 6) == from(3, 2, {1, 4, 2, 5, 3, 6}));  // a.T
  CHECK(dihedral(g, 7) == from(3, 2, {6, 3, 5, 2, 4, 1}));  // np.fliplr(np.rot90(a, 1))
  CHECK_THROWS_AS(dihedral(g, 8), std::invalid_argument);
  // The 8 results are distinct: a group of order 8 acting freely on this grid.
  std::set<std::string> seen;  // cells as bytes (a set of byte vectors trips a GCC 12 false warning)
  for (int d = 0; d < 8; ++d) {
    const auto cells = dihedral(g, d).cells;
    seen.insert(std::string(cells.begin(), cells.end()));
  }
  CHECK(seen.size() == 8);
}

TEST_CASE("every dihedral composed with its inverse is the identity") {
  draw_stream s{{7, 1}};
  for (int trial = 0; trial < 200; ++trial) {
    const grid g = random_grid(s);
    for (int d = 0; d < num_dihedral; ++d) {
      CHECK(dihedral(dihedral(g, d), dihedral_inverse[std::size_t(d)]) == g);
      CHECK(dihedral(dihedral(g, dihedral_inverse[std::size_t(d)]), d) == g);
    }
  }
  const auto dir = arc_data_dir();
  if (!dir) return;
  std::size_t checked = 0, ok = 0;
  for (const auto& t : load_arc_tasks(*dir / "arc-agi-1" / "evaluation"))
    for (const auto& p : t.train)
      for (int d = 0; d < num_dihedral; ++d) {
        ++checked;
        ok += dihedral(dihedral(p.input, d), dihedral_inverse[std::size_t(d)]) == p.input;
      }
  CHECK(ok == checked);
  MESSAGE("dihedral round trips on real grids: " << ok << " of " << checked);
}

TEST_CASE("colour maps keep black, are permutations, and invert") {
  draw_stream s{{11, 2}};
  std::set<colour_map> distinct;
  for (int trial = 0; trial < 500; ++trial) {
    const colour_map m = random_colour_map(s);
    distinct.insert(m);
    CHECK(m[0] == 0);
    colour_map sorted = m;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == identity_colours());
    const colour_map inv = invert_colours(m);
    for (int c = 0; c < 10; ++c) CHECK(inv[m[std::size_t(c)]] == c);
    const grid g = random_grid(s);
    CHECK(apply_colours(apply_colours(g, m), inv) == g);
  }
  CHECK(distinct.size() > 490);  // 9! maps: repeats are rare
}

TEST_CASE("an augmentation applies colours then the dihedral, and invert undoes it") {
  const grid g = g23();
  augmentation a;
  a.dihedral = 1;
  a.colours = identity_colours();
  std::swap(a.colours[1], a.colours[6]);
  CHECK(apply(a, g) == from(3, 2, {3, 1, 2, 5, 6, 4}));
  draw_stream s{{3, 3}};
  for (std::uint64_t draw = 0; draw < 300; ++draw) {
    const augmentation r = augmentation_draw({5, 9}, draw);
    const grid x = random_grid(s);
    CHECK(invert(r, apply(r, x)) == x);
  }
  CHECK(augmentation_draw({5, 9}, 17) == augmentation_draw({5, 9}, 17));  // random access, reproducible
  const task t{"t", {{g, dihedral(g, 3)}}, {{dihedral(g, 5), g}}};
  const task at = apply(a, t);
  CHECK(at.id == "t");
  CHECK(at.train[0].output == apply(a, t.train[0].output));
  CHECK(at.test[0].input == apply(a, t.test[0].input));
}

TEST_CASE("content hashes: grids, and pair sets regardless of order and split") {
  const grid g = g23();
  CHECK(grid_hash(g) == grid_hash(g23()));
  CHECK(grid_hash(g) != grid_hash(dihedral(g, 4)));
  CHECK(grid_hash(grid(2, 3, 0)) != grid_hash(grid(3, 2, 0)));  // shape counts
  CHECK(grid_hash(grid(1, 1, 0)) != grid_hash(grid(1, 1, 1)));
  const grid_pair p1{g, dihedral(g, 1)}, p2{dihedral(g, 2), g}, p3{g, g};
  const task a{"a", {p1, p2}, {p3}};
  const task b{"b", {p3}, {p2, p1}};
  const task c{"c", {p1, p2}, {p2}};
  CHECK(pair_set_hash(a) == pair_set_hash(b));
  CHECK(pair_set_hash(a) != pair_set_hash(c));
  const task swapped{"s", {{p1.output, p1.input}, p2}, {p3}};  // input and output are not interchangeable
  CHECK(pair_set_hash(a) != pair_set_hash(swapped));
}

TEST_CASE("distinct augmentations: no duplicates, capped by what the task allows") {
  const grid g = g23();
  const task rich{"rich", {{g, dihedral(g, 1)}, {dihedral(g, 4), g}}, {{dihedral(g, 2), dihedral(g, 6)}}};
  const auto draws = distinct_augmentation_draws(rich, 100, {42, 1});
  CHECK(draws.size() == 100);
  std::set<std::uint64_t> hashes{pair_set_hash(rich)};
  for (auto d : draws) hashes.insert(pair_set_hash(apply(augmentation_draw({42, 1}, d), rich)));
  CHECK(hashes.size() == 101);  // the fast hash agrees with hashing the augmented task

  // One colour on a 1x1 grid: only the 8 other colours are new, the dihedral changes nothing.
  const task dot{"dot", {{grid(1, 1, 3), grid(1, 1, 3)}}, {{grid(1, 1, 3), grid(1, 1, 0)}}};
  CHECK(distinct_augmentation_draws(dot, 1000, {42, 2}).size() == 8);
  // All black: nothing can change.
  const task black{"black", {{grid(2, 2, 0), grid(2, 2, 0)}}, {{grid(2, 2, 0), grid(2, 2, 0)}}};
  CHECK(distinct_augmentation_draws(black, 1000, {42, 3}).empty());
  // The retry budget bounds the draws.
  const auto few = distinct_augmentation_draws(rich, 10, {42, 4}, 1);
  CHECK(few.size() <= 10);
  CHECK((few.empty() || few.back() < 10));
}

TEST_CASE("translation offsets fit the canvas, keep one example at the origin, and repeat") {
  augmentation a;
  CHECK(translation_offset(a, 3, 5, 10, 10) == canvas_offset{});
  std::size_t at_origin_total = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    a.translation = seed;
    std::size_t at_origin = 0;
    for (std::size_t e = 0; e < 5; ++e) {
      const int rows = 1 + int((seed + e) % 30), cols = 30 - int((seed * 7 + e) % 30);
      const canvas_offset o = translation_offset(a, e, 5, rows, cols);
      CHECK(o == translation_offset(a, e, 5, rows, cols));
      CHECK((o.row >= 0 && o.row + rows <= 30 && o.col >= 0 && o.col + cols <= 30));
      at_origin += o == canvas_offset{};
    }
    CHECK(at_origin >= 1);
    at_origin_total += at_origin;
  }
  CHECK(at_origin_total < 260);  // the others move: (0,0) is rarely drawn at random
}
