// SPDX-License-Identifier: Apache-2.0
// Maze data: the label is a connected shortest start-goal path, the hard filter, dihedral
// augmentation round trips, determinism and tokens.
#include <etrm/data/maze.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

namespace d = etrm::data;

namespace {

// Moves from `from` to `to` stepping only on cells `ok` accepts, -1 if unreachable. Written
// independently of maze.hpp's search.
template <class Ok>
int bfs_moves(const d::grid& g, int from, int to, Ok ok) {
  std::vector<int> dist(g.cells.size(), -1), queue{from};
  dist[std::size_t(from)] = 0;
  for (std::size_t h = 0; h < queue.size(); ++h) {
    const int u = queue[h], r = u / g.cols, c = u % g.cols;
    const int nr[4] = {r - 1, r + 1, r, r}, nc[4] = {c, c, c - 1, c + 1};
    for (int k = 0; k < 4; ++k) {
      if (nr[k] < 0 || nr[k] >= g.rows || nc[k] < 0 || nc[k] >= g.cols) continue;
      const int v = nr[k] * g.cols + nc[k];
      if (dist[std::size_t(v)] < 0 && ok(g.cells[std::size_t(v)])) {
        dist[std::size_t(v)] = dist[std::size_t(u)] + 1;
        queue.push_back(v);
      }
    }
  }
  return dist[std::size_t(to)];
}

int index_of(const d::grid& g, std::uint8_t code) {
  return int(std::find(g.cells.begin(), g.cells.end(), code) - g.cells.begin());
}

void check_label(const d::maze_example& m) {
  const auto& q = m.question;
  REQUIRE(std::count(q.cells.begin(), q.cells.end(), d::maze_start) == 1);
  REQUIRE(std::count(q.cells.begin(), q.cells.end(), d::maze_goal) == 1);
  CHECK(std::count(q.cells.begin(), q.cells.end(), d::maze_path) == 0);
  const int s = index_of(q, d::maze_start), t = index_of(q, d::maze_goal);
  const int shortest = bfs_moves(q, s, t, [](std::uint8_t v) { return v != d::maze_wall; });
  CHECK(shortest == m.path_length);
  // The answer changes only open cells into path cells, exactly path_length - 1 of them ...
  int marked = 0;
  for (std::size_t i = 0; i < q.cells.size(); ++i) {
    if (m.answer.cells[i] == q.cells[i]) continue;
    CHECK(q.cells[i] == d::maze_open);
    CHECK(m.answer.cells[i] == d::maze_path);
    ++marked;
  }
  CHECK(marked == m.path_length - 1);
  // ... and they alone connect start to goal in that many moves: a shortest path.
  const int along = bfs_moves(m.answer, s, t, [](std::uint8_t v) { return v == d::maze_path || v == d::maze_goal; });
  CHECK(along == m.path_length);
}

}  // namespace

TEST_CASE("maze label is a connected shortest path from start to goal") {
  d::data_rng rng(1);
  for (int i = 0; i < 20; ++i) {
    const auto m = d::generate_maze({}, rng);
    CHECK(m.question.rows == 30);
    CHECK(m.question.cols == 30);
    check_label(m);
  }
  for (int size : {3, 4, 9, 17}) {
    const auto m = d::generate_maze({.size = size}, rng);
    CHECK(m.question.rows == size);
    check_label(m);
  }
  const auto loopy = d::generate_maze({.loop_percent = 30}, rng);  // loops, still one shortest path
  check_label(loopy);
  CHECK(d::solve_maze(loopy.question) == loopy.answer);
}

TEST_CASE("maze hard filter") {
  d::data_rng rng(2);
  const d::maze_config hard{.min_path_length = d::maze_hard_longer_than + 1};
  for (int i = 0; i < 20; ++i) {
    const auto m = d::generate_maze(hard, rng);
    CHECK(d::is_hard_maze(m));
    check_label(m);
  }
  const auto small = d::generate_maze({.size = 9}, rng);
  CHECK_FALSE(d::is_hard_maze(small));
  CHECK(d::is_hard_maze(small, small.path_length - 1));
  CHECK_THROWS_AS(d::generate_maze({.size = 5, .min_path_length = 100, .max_tries = 10}, rng), d::data_error);
}

TEST_CASE("maze dihedral augmentation round trips and keeps the label valid") {
  d::data_rng rng(3);
  const auto m = d::generate_maze({.size = 30, .loop_percent = 10}, rng);
  for (int k = 0; k < d::num_dihedral; ++k) {
    const auto t = d::dihedral(m, k);
    check_label(t);
    CHECK(d::solve_maze(t.question) == t.answer);
    CHECK(d::dihedral(t, d::dihedral_inverse[std::size_t(k)]) == m);
    if (k != 0) CHECK(t.question != m.question);
  }
}

TEST_CASE("maze generation is deterministic and tokens follow '# SGo'") {
  d::data_rng a(9), b(9);
  const auto m = d::generate_maze({}, a);
  CHECK(m == d::generate_maze({}, b));
  const auto tokens = d::encode_maze(m.answer);
  REQUIRE(tokens.size() == 900);
  const auto text = d::maze_text(m.answer);
  for (std::size_t i = 0, t = 0; i < text.size(); ++i) {
    if (text[i] == '\n') continue;
    CHECK(tokens[t] >= 1);
    CHECK(tokens[t] < d::maze_vocab_size);
    CHECK(d::maze_charset[tokens[t] - 1] == text[i]);
    ++t;
  }
  CHECK(std::count(tokens.begin(), tokens.end(), 3) == 1);  // S
  CHECK(std::count(tokens.begin(), tokens.end(), 4) == 1);  // G
  CHECK(std::count(tokens.begin(), tokens.end(), 5) == m.path_length - 1);
}
