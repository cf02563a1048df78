// SPDX-License-Identifier: Apache-2.0
// Maze data (trm-computation.md §5.4), generated here because the HRM maze set exists only on Hugging
// Face: N x N mazes (30 by default) with a start and a goal; the label is the maze with its
// shortest path marked. Tokens follow the charset "# SGo" -> 1..5 (PAD 0, vocab 6, N*N tokens).
// A "hard" filter keeps mazes whose shortest path is long (HRM's Maze-Hard: more than 110 moves
// on 30x30), and the 8 dihedral transforms augment.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/generator_random.hpp>
#include <etrm/data/grid.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// Cell codes in the grids; the token of a code is code + 1.
inline constexpr std::uint8_t maze_wall = 0;
inline constexpr std::uint8_t maze_open = 1;
inline constexpr std::uint8_t maze_start = 2;
inline constexpr std::uint8_t maze_goal = 3;
inline constexpr std::uint8_t maze_path = 4;

inline constexpr std::int32_t maze_pad_token = 0;
inline constexpr std::int32_t maze_vocab_size = 6;
inline constexpr char maze_charset[] = "# SGo";
inline constexpr int maze_hard_longer_than = 110;

struct maze_config {
  int size = 30;
  int min_path_length = 0;  // maze_hard_longer_than + 1 for Maze-Hard
  // Extra walls knocked out, in percent: 0 gives a perfect maze (one route between any two
  // cells); more gives loops. Mazes whose shortest path is not unique are redrawn either way.
  int loop_percent = 0;
  int max_tries = 1000;
};

struct maze_example {
  grid question;        // walls, open cells, one start, one goal
  grid answer;          // question with the shortest path's inner cells set to maze_path
  int path_length = 0;  // moves from start to goal
  bool operator==(const maze_example&) const = default;
};

namespace detail {

struct maze_bfs_result {
  std::vector<int> dist;           // -1 where unreachable
  std::vector<std::uint8_t> ways;  // number of shortest routes from the source, capped at 2
};

inline void maze_neighbours(const grid& g, int i, int (&out)[4], int& n) {
  const int r = i / g.cols, c = i % g.cols;
  n = 0;
  if (r > 0) out[n++] = i - g.cols;
  if (r + 1 < g.rows) out[n++] = i + g.cols;
  if (c > 0) out[n++] = i - 1;
  if (c + 1 < g.cols) out[n++] = i + 1;
}

inline maze_bfs_result maze_bfs(const grid& g, int source) {
  maze_bfs_result res{std::vector<int>(g.cells.size(), -1), std::vector<std::uint8_t>(g.cells.size(), 0)};
  std::vector<int> queue{source};
  res.dist[std::size_t(source)] = 0;
  res.ways[std::size_t(source)] = 1;
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const int u = queue[head];
    int nb[4], n;
    maze_neighbours(g, u, nb, n);
    for (int k = 0; k < n; ++k) {
      const auto v = std::size_t(nb[k]);
      if (g.cells[v] == maze_wall) continue;
      if (res.dist[v] < 0) {
        res.dist[v] = res.dist[std::size_t(u)] + 1;
        queue.push_back(nb[k]);
      }
      if (res.dist[v] == res.dist[std::size_t(u)] + 1)
        res.ways[v] = std::uint8_t(std::min(2, res.ways[v] + res.ways[std::size_t(u)]));
    }
  }
  return res;
}

inline int maze_find(const grid& g, std::uint8_t code, const char* what) {
  int at = -1;
  for (int i = 0; i < int(g.cells.size()); ++i)
    if (g.cells[std::size_t(i)] == code) {
      if (at >= 0) throw data_error(std::string("maze.hpp: more than one ") + what);
      at = i;
    }
  if (at < 0) throw data_error(std::string("maze.hpp: no ") + what);
  return at;
}

// Randomised depth-first carving on the lattice of even coordinates.
inline grid carve_maze(data_rng& rng, int n, int loop_percent) {
  grid g(n, n, maze_wall);
  const int cells = (n + 1) / 2;
  std::vector<char> visited(std::size_t(cells) * cells, 0);
  std::vector<int> stack{0};
  visited[0] = 1;
  g.at(0, 0) = maze_open;
  while (!stack.empty()) {
    const int cur = stack.back(), r = cur / cells, c = cur % cells;
    int options[4], count = 0;
    const int dr[4] = {-1, 1, 0, 0}, dc[4] = {0, 0, -1, 1};
    for (int d = 0; d < 4; ++d) {
      const int nr = r + dr[d], nc = c + dc[d];
      if (nr >= 0 && nr < cells && nc >= 0 && nc < cells && !visited[std::size_t(nr * cells + nc)])
        options[count++] = d;
    }
    if (count == 0) {
      stack.pop_back();
      continue;
    }
    const int d = options[rand_below(rng, std::uint64_t(count))];
    const int nr = r + dr[d], nc = c + dc[d];
    visited[std::size_t(nr * cells + nc)] = 1;
    g.at(2 * r + dr[d], 2 * c + dc[d]) = maze_open;
    g.at(2 * nr, 2 * nc) = maze_open;
    stack.push_back(nr * cells + nc);
  }
  // Knock out walls that separate two lattice cells (one coordinate odd, the other even).
  if (loop_percent > 0)
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) {
        const bool between = (r % 2) != (c % 2) && (r % 2 ? r + 1 < n : c + 1 < n);
        if (between && g.at(r, c) == maze_wall && rand_chance(rng, loop_percent, 100)) g.at(r, c) = maze_open;
      }
  return g;
}

}  // namespace detail

// Start-to-goal moves along a shortest path, or -1 when the goal is walled off.
inline int maze_path_length(const grid& question) {
  const int s = detail::maze_find(question, maze_start, "start"), t = detail::maze_find(question, maze_goal, "goal");
  return detail::maze_bfs(question, s).dist[std::size_t(t)];
}

// The label: a shortest path marked on the question (the first one found if several tie).
inline grid solve_maze(const grid& question) {
  const int s = detail::maze_find(question, maze_start, "start"), t = detail::maze_find(question, maze_goal, "goal");
  const auto bfs = detail::maze_bfs(question, s);
  if (bfs.dist[std::size_t(t)] < 0) throw data_error("maze.hpp: goal not reachable from start");
  grid answer = question;
  for (int cur = t; bfs.dist[std::size_t(cur)] > 1;) {
    int nb[4], n;
    detail::maze_neighbours(question, cur, nb, n);
    for (int k = 0; k < n; ++k)
      if (bfs.dist[std::size_t(nb[k])] == bfs.dist[std::size_t(cur)] - 1) {
        cur = nb[k];
        break;
      }
    answer.cells[std::size_t(cur)] = maze_path;
  }
  return answer;
}

// A maze whose shortest start-goal path is unique (so the label is well defined) and at least
// cfg.min_path_length moves long. Throws if max_tries carvings all fail.
inline maze_example generate_maze(const maze_config& cfg, data_rng& rng) {
  if (cfg.size < 3 || cfg.size > 30) throw data_error("maze.hpp: maze size must be 3..30");
  for (int attempt = 0; attempt < cfg.max_tries; ++attempt) {
    grid g = detail::carve_maze(rng, cfg.size, cfg.loop_percent);
    std::vector<int> open;
    for (int i = 0; i < int(g.cells.size()); ++i)
      if (g.cells[std::size_t(i)] == maze_open) open.push_back(i);
    const int s = open[rand_below(rng, open.size())];
    const auto bfs = detail::maze_bfs(g, s);
    std::vector<int> goals;
    for (int i : open)
      if (i != s && bfs.dist[std::size_t(i)] >= cfg.min_path_length && bfs.ways[std::size_t(i)] == 1)
        goals.push_back(i);
    if (goals.empty()) continue;
    const int t = goals[rand_below(rng, goals.size())];
    g.cells[std::size_t(s)] = maze_start;
    g.cells[std::size_t(t)] = maze_goal;
    return {g, solve_maze(g), bfs.dist[std::size_t(t)]};
  }
  throw data_error("maze.hpp: no maze with a unique shortest path of " + std::to_string(cfg.min_path_length) +
                   "+ moves in " + std::to_string(cfg.max_tries) + " tries");
}

inline bool is_hard_maze(const maze_example& m, int longer_than = maze_hard_longer_than) {
  return m.path_length > longer_than;
}

// The same dihedral transform (augment.hpp numbering) on question and answer.
inline maze_example dihedral(const maze_example& m, int k) {
  return {dihedral(m.question, k), dihedral(m.answer, k), m.path_length};
}

// out: [rows * cols].
inline void encode_maze(const grid& g, std::span<std::int32_t> out) {
  if (out.size() != g.cells.size()) throw data_error("maze.hpp: encode_maze needs rows*cols output tokens");
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::int32_t(g.cells[i]) + 1;
}

inline std::vector<std::int32_t> encode_maze(const grid& g) {
  std::vector<std::int32_t> out(g.cells.size());
  encode_maze(g, out);
  return out;
}

// One text row per grid row in the "# SGo" charset, for logs and debugging.
inline std::string maze_text(const grid& g) {
  std::string s;
  for (int r = 0; r < g.rows; ++r) {
    for (int c = 0; c < g.cols; ++c) s += maze_charset[g.at(r, c)];
    s += '\n';
  }
  return s;
}

}  // namespace data
ETRM_END_NAMESPACE
