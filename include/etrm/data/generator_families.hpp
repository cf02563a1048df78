// SPDX-License-Identifier: Apache-2.0
// The rule families of the few-shot task generator (generator.hpp): for each family, how its
// parameters are drawn, which parameter values are held out, what its input grids look like and
// what it computes. Most families draw inputs from a few shared distributions (random noise,
// separated objects), so one query input is consistent with many rules and a model has to read
// the demonstrations to know which one applies.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/generator_grid.hpp>
#include <etrm/data/generator_random.hpp>
#include <etrm/data/grid.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// Training families first, then the held-out ones (marked in the family table below).
enum class family : std::uint8_t {
  dihedral,           // p0 = transform 1..7 (augment.hpp numbering)
  color_map,          // p0 = pairs 2..3, p1..p3 = from colours, p4..p6 = to colours
  translate,          // p0 = dr, p1 = dc in -3..3, cells pushed off the grid are lost
  gravity,            // p0 = direction: 0 up, 1 right, 2 down, 3 left
  fill_enclosed,      // p0 = colour filling background cells not reachable from the border
  recolor_by_size,    // p0 = size threshold 2..4, p1 = colour of big objects, p2 = of small ones
  crop_object,        // p0 = 0 the largest object, 1 the smallest
  scale_up,           // p0, p1 = row and column factors 1..3
  tile,               // p0, p1 = row and column repeats 1..3
  extend_lines,       // p0 = 0 up, 1 right, 2 down, 3 left, 4 both horizontal, 5 both vertical, 6 all four
  denoise,            // no parameters: isolated pixels vanish
  count_objects,      // p0 = 0 a 1xN row, 1 an Nx1 column; p1 = its colour; N = number of objects
  symmetry_complete,  // p0 = symmetry: 0 left-right, 1 top-bottom, 2 both
  draw_border,        // p0 = colour of the outermost ring
  mirror_extend,      // p0 = 0 [g | mirror] , 1 [g ; mirror], 2 both (2x2)
  outline,            // p0 = colour of object interiors (0 hollows them)
  keep_color,         // p0 = the colour kept, every other one becomes background
  connect_pixels,     // p0 = 0 line in the endpoints' colour, 1..9 in that colour
};
inline constexpr int num_families = 18;

// One primitive rule: a family and its parameters (meaning per family above).
struct rule_step {
  family fam = family::dihedral;
  std::array<int, 7> p{};
  bool operator==(const rule_step&) const = default;
};

namespace detail {

// ---- shared input distributions ------------------------------------------------------------

// n distinct colours from 1..9 outside `exclude`.
inline std::vector<std::uint8_t> random_palette(data_rng& rng, int n, std::initializer_list<int> exclude = {}) {
  std::vector<std::uint8_t> all;
  for (int c = 1; c <= 9; ++c)
    if (std::find(exclude.begin(), exclude.end(), c) == exclude.end()) all.push_back(std::uint8_t(c));
  rand_shuffle(rng, all);
  all.resize(std::size_t(n));
  return all;
}

// 0..n-1 in random order.
inline std::vector<int> shuffled_indices(data_rng& rng, int n) {
  std::vector<int> v(std::size_t(n), 0);
  for (int i = 0; i < n; ++i) v[std::size_t(i)] = i;
  rand_shuffle(rng, v);
  return v;
}

inline std::uint8_t pick_colour(data_rng& rng, const std::vector<std::uint8_t>& palette) {
  return palette[rand_below(rng, palette.size())];
}

// 10..60% of cells coloured from the palette, each palette colour at least once (where the grid
// has room), so a demonstration shows what happens to every colour.
inline grid noise_input(data_rng& rng, int rows, int cols, const std::vector<std::uint8_t>& palette) {
  grid g(rows, cols);
  const int density = rand_int(rng, 10, 60);
  for (auto& v : g.cells)
    if (rand_chance(rng, density, 100)) v = pick_colour(rng, palette);
  const auto order = shuffled_indices(rng, int(g.cells.size()));
  for (std::size_t k = 0; k < palette.size() && k < order.size(); ++k) g.cells[std::size_t(order[k])] = palette[k];
  return g;
}

// A grid being filled with shapes that must not touch (not even diagonally), so each shape stays
// one object. `blocked` marks shape cells and their 8-neighbourhoods.
struct canvas {
  grid g;
  std::vector<char> blocked;
  canvas(int rows, int cols) : g(rows, cols), blocked(std::size_t(rows) * cols, 0) {}

  void commit(const std::vector<int>& cells, std::uint8_t colour) {
    for (int i : cells) {
      g.cells[std::size_t(i)] = colour;
      const int r = i / g.cols, c = i % g.cols;
      for (int rr = std::max(0, r - 1); rr <= std::min(g.rows - 1, r + 1); ++rr)
        for (int cc = std::max(0, c - 1); cc <= std::min(g.cols - 1, c + 1); ++cc)
          blocked[std::size_t(rr * g.cols + cc)] = 1;
    }
  }
  bool free(int r, int c) const {
    return r >= 0 && r < g.rows && c >= 0 && c < g.cols && !blocked[std::size_t(r * g.cols + c)];
  }

  // Top-left of a free h x w spot, or {-1, -1}.
  std::pair<int, int> find_rect(data_rng& rng, int h, int w) const {
    if (h > g.rows || w > g.cols) return {-1, -1};
    for (int attempt = 0; attempt < 30; ++attempt) {
      const int r0 = rand_int(rng, 0, g.rows - h), c0 = rand_int(rng, 0, g.cols - w);
      bool ok = true;
      for (int r = r0; r < r0 + h && ok; ++r)
        for (int c = c0; c < c0 + w && ok; ++c) ok = free(r, c);
      if (ok) return {r0, c0};
    }
    return {-1, -1};
  }

  // A random 4-connected shape of exactly `size` cells, or nothing if there is no room.
  bool grow_blob(data_rng& rng, int size, std::uint8_t colour) {
    std::vector<int> starts;
    for (int i = 0; i < int(blocked.size()); ++i)
      if (!blocked[std::size_t(i)]) starts.push_back(i);
    if (starts.empty()) return false;
    std::vector<int> shape{starts[rand_below(rng, starts.size())]};
    while (int(shape.size()) < size) {
      std::vector<int> frontier;
      for (int i : shape) {
        const int r = i / g.cols, c = i % g.cols;
        const int nr[4] = {r - 1, r + 1, r, r}, nc[4] = {c, c, c - 1, c + 1};
        for (int k = 0; k < 4; ++k) {
          const int n = nr[k] * g.cols + nc[k];
          if (free(nr[k], nc[k]) && std::find(shape.begin(), shape.end(), n) == shape.end()) frontier.push_back(n);
        }
      }
      if (frontier.empty()) return false;
      shape.push_back(frontier[rand_below(rng, frontier.size())]);
    }
    commit(shape, colour);
    return true;
  }

  void rect(int r0, int c0, int h, int w, std::uint8_t colour, bool hollow) {
    std::vector<int> cells;
    for (int r = r0; r < r0 + h; ++r)
      for (int c = c0; c < c0 + w; ++c)
        if (!hollow || r == r0 || r == r0 + h - 1 || c == c0 || c == c0 + w - 1) cells.push_back(r * g.cols + c);
    commit(cells, colour);
    for (int r = r0; r < r0 + h; ++r)  // a hollow interior is not room for other shapes
      for (int c = c0; c < c0 + w; ++c) blocked[std::size_t(r * g.cols + c)] = 1;
  }
};

// 2..6 separated blobs of 1..max_size cells; distinct sizes make "largest" and "smallest" unique.
inline grid objects_input(data_rng& rng, int rows, int cols, int max_size, bool distinct_sizes,
                          const std::vector<std::uint8_t>& palette) {
  canvas cv(rows, cols);
  std::vector<int> sizes;
  for (int s = 1; s <= max_size; ++s) sizes.push_back(s);
  rand_shuffle(rng, sizes);
  const int count = rand_int(rng, 2, distinct_sizes ? 4 : 6);
  for (int k = 0; k < count; ++k)
    cv.grow_blob(rng, distinct_sizes ? sizes[std::size_t(k)] : rand_int(rng, 1, max_size), pick_colour(rng, palette));
  return cv.g;
}

// 1..3 rectangles of side min_side..6 (clipped to the grid).
inline void add_rects(data_rng& rng, canvas& cv, int min_side, bool hollow, const std::vector<std::uint8_t>& palette) {
  const int count = rand_int(rng, 1, 3);
  for (int k = 0; k < count; ++k) {
    const int h = rand_int(rng, min_side, std::max(min_side, std::min(6, cv.g.rows)));
    const int w = rand_int(rng, min_side, std::max(min_side, std::min(6, cv.g.cols)));
    const auto [r0, c0] = cv.find_rect(rng, h, w);
    if (r0 >= 0) cv.rect(r0, c0, h, w, pick_colour(rng, palette), hollow);
  }
}

// ---- per-family pieces ---------------------------------------------------------------------

inline bool held_out_colour_pair(int from, int to) { return (from + 2 * to) % 9 == 0; }

inline bool held_out_shift(int dr, int dc) {
  constexpr std::pair<int, int> reserved[] = {{1, 2}, {-2, -1}, {3, 0}, {0, -3}};
  return std::find(std::begin(reserved), std::end(reserved), std::pair{dr, dc}) != std::end(reserved);
}

// Draws a pair (a, b) in 1..3 x 1..3 other than (1, 1).
inline void sample_factors(data_rng& rng, rule_step& s) {
  do {
    s.p[0] = rand_int(rng, 1, 3), s.p[1] = rand_int(rng, 1, 3);
  } while (s.p[0] == 1 && s.p[1] == 1);
}

inline grid apply_extend_lines(const rule_step& s, const grid& in) {
  const int dr[4] = {-1, 0, 1, 0}, dc[4] = {0, 1, 0, -1};
  constexpr std::array<std::array<bool, 4>, 7> dirs = {
      {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}, {0, 1, 0, 1}, {1, 0, 1, 0}, {1, 1, 1, 1}}};
  grid out = in;
  // Horizontal rays first, so vertical ones win where rays cross.
  for (int d : {1, 3, 0, 2}) {
    if (!dirs[std::size_t(s.p[0])][std::size_t(d)]) continue;
    for (int i = 0; i < int(in.cells.size()); ++i) {
      if (!in.cells[std::size_t(i)]) continue;
      for (int r = i / in.cols + dr[d], c = i % in.cols + dc[d]; r >= 0 && r < in.rows && c >= 0 && c < in.cols;
           r += dr[d], c += dc[d])
        if (!in.at(r, c)) out.at(r, c) = in.cells[std::size_t(i)];
    }
  }
  return out;
}

inline grid apply_gravity(int dir, const grid& in) {
  grid out(in.rows, in.cols);
  const bool vertical = dir == 0 || dir == 2;
  const int lines = vertical ? in.cols : in.rows, len = vertical ? in.rows : in.cols;
  // Position p along a line counts from the side the cells fall towards.
  const auto cell = [&](grid& g, int l, int p) -> std::uint8_t& {
    switch (dir) {
      case 0:
        return g.at(p, l);
      case 1:
        return g.at(l, len - 1 - p);
      case 2:
        return g.at(len - 1 - p, l);
      default:
        return g.at(l, p);
    }
  };
  grid src = in;
  for (int l = 0; l < lines; ++l)
    for (int p = 0, next = 0; p < len; ++p)
      if (const auto v = cell(src, l, p)) cell(out, l, next++) = v;
  return out;
}

inline grid apply_fill_enclosed(std::uint8_t colour, const grid& in) {
  std::vector<char> outside(in.cells.size(), 0);
  std::vector<int> stack;
  for (int r = 0; r < in.rows; ++r)
    for (int c = 0; c < in.cols; ++c)
      if ((r == 0 || c == 0 || r == in.rows - 1 || c == in.cols - 1) && !in.at(r, c)) {
        outside[std::size_t(r * in.cols + c)] = 1;
        stack.push_back(r * in.cols + c);
      }
  while (!stack.empty()) {
    const int i = stack.back(), r = i / in.cols, c = i % in.cols;
    stack.pop_back();
    const int nr[4] = {r - 1, r + 1, r, r}, nc[4] = {c, c, c - 1, c + 1};
    for (int k = 0; k < 4; ++k) {
      if (nr[k] < 0 || nr[k] >= in.rows || nc[k] < 0 || nc[k] >= in.cols) continue;
      const int n = nr[k] * in.cols + nc[k];
      if (!outside[std::size_t(n)] && !in.cells[std::size_t(n)]) {
        outside[std::size_t(n)] = 1;
        stack.push_back(n);
      }
    }
  }
  grid out = in;
  for (std::size_t i = 0; i < out.cells.size(); ++i)
    if (!in.cells[i] && !outside[i]) out.cells[i] = colour;
  return out;
}

// A rule that cannot apply (no unique object, nothing to count) answers with a 0x0 grid, which
// the task builder rejects.
inline grid apply_crop_object(int mode, const grid& in) {
  const auto objects = find_objects(in);
  if (objects.empty()) return {};
  const auto better = [&](const grid_object& a, const grid_object& b) {
    return mode == 0 ? a.size() > b.size() : a.size() < b.size();
  };
  const grid_object* best = &objects[0];
  bool tie = false;
  for (const auto& o : objects) {
    if (better(o, *best))
      best = &o, tie = false;
    else if (&o != best && o.size() == best->size())
      tie = true;
  }
  if (tie) return {};
  grid out(best->bottom - best->top + 1, best->right - best->left + 1);
  for (int i : best->cells) out.at(i / in.cols - best->top, i % in.cols - best->left) = best->colour;
  return out;
}

inline grid apply_symmetry_complete(int type, const grid& in) {
  grid out = in;
  for (int r = 0; r < in.rows; ++r)
    for (int c = 0; c < in.cols; ++c) {
      if (in.at(r, c)) continue;
      const std::pair<int, int> images[3] = {
          {r, in.cols - 1 - c}, {in.rows - 1 - r, c}, {in.rows - 1 - r, in.cols - 1 - c}};
      for (int k = 0; k < 3 && !out.at(r, c); ++k)
        if (type == 2 || type == k) out.at(r, c) = in.at(images[k].first, images[k].second);
    }
  return out;
}

inline grid apply_connect_pixels(int colour, const grid& in) {
  grid out = in;
  // Pass 0 joins along rows, pass 1 along columns; both read the input.
  for (int pass = 0; pass < 2; ++pass) {
    const int lines = pass ? in.cols : in.rows, len = pass ? in.rows : in.cols;
    for (int l = 0; l < lines; ++l) {
      const auto at = [&](const grid& g, int p) { return pass ? g.at(p, l) : g.at(l, p); };
      int prev = -1;
      for (int p = 0; p < len; ++p) {
        if (!at(in, p)) continue;
        if (prev >= 0 && p - prev > 1 && at(in, prev) == at(in, p))
          for (int q = prev + 1; q < p; ++q)
            (pass ? out.at(q, l) : out.at(l, q)) = std::uint8_t(colour ? colour : at(in, p));
        prev = p;
      }
    }
  }
  return out;
}

// 1..3 same-coloured pixel pairs sharing a row or a column. No other pixel shares their row or
// columns and no two joins would cross, so the rule's answer is exactly the intended lines.
inline grid connect_pixels_input(data_rng& rng, int rows, int cols, const std::vector<std::uint8_t>& palette) {
  grid g(rows, cols);
  std::vector<char> row_used(std::size_t(rows), 0), col_used(std::size_t(cols), 0);
  struct segment {
    bool horizontal;
    int line, from, to;
  };
  std::vector<segment> segs;
  const int want = rand_int(rng, 1, 3);
  for (int attempt = 0; attempt < 40 && int(segs.size()) < want; ++attempt) {
    const bool h = rand_chance(rng, 1, 2);
    const int line = rand_int(rng, 0, (h ? rows : cols) - 1), len = h ? cols : rows;
    int a = rand_int(rng, 0, len - 1), b = rand_int(rng, 0, len - 1);
    if (a > b) std::swap(a, b);
    auto& line_used = h ? row_used : col_used;
    auto& end_used = h ? col_used : row_used;
    if (b - a < 2 || line_used[std::size_t(line)] || end_used[std::size_t(a)] || end_used[std::size_t(b)]) continue;
    const bool crosses = std::any_of(segs.begin(), segs.end(), [&](const segment& s) {
      return s.horizontal != h && s.from < line && line < s.to && a < s.line && s.line < b;
    });
    if (crosses) continue;
    line_used[std::size_t(line)] = 1, end_used[std::size_t(a)] = end_used[std::size_t(b)] = 1;
    segs.push_back({h, line, a, b});
    const std::uint8_t colour = pick_colour(rng, palette);
    (h ? g.at(line, a) : g.at(a, line)) = colour;
    (h ? g.at(line, b) : g.at(b, line)) = colour;
  }
  return g;
}

inline grid symmetric_input(data_rng& rng, int type, int rows, int cols) {
  const auto palette = random_palette(rng, rand_int(rng, 2, 4));
  grid g(rows, cols);
  for (auto& v : g.cells) v = pick_colour(rng, palette);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int sr = type != 0 ? std::min(r, rows - 1 - r) : r, sc = type != 1 ? std::min(c, cols - 1 - c) : c;
      g.at(r, c) = g.at(sr, sc);
    }
  // The hole stays inside one half (quadrant), so a mirror image of every hidden cell is visible.
  const int half_r = type == 0 ? rows : rows / 2, half_c = type == 1 ? cols : cols / 2;
  const int h = rand_int(rng, 1, std::max(1, std::min(3, half_r))),
            w = rand_int(rng, 1, std::max(1, std::min(3, half_c)));
  int r0 = rand_int(rng, 0, half_r - h), c0 = rand_int(rng, 0, half_c - w);
  if (type != 0 && rand_chance(rng, 1, 2)) r0 = rows - r0 - h;
  if (type != 1 && rand_chance(rng, 1, 2)) c0 = cols - c0 - w;
  for (int r = r0; r < r0 + h; ++r)
    for (int c = c0; c < c0 + w; ++c) g.at(r, c) = 0;
  return g;
}

}  // namespace detail

// ---- the family table and per-family dispatch ----------------------------------------------

struct family_info {
  family fam;
  const char* name;
  const char* summary;
  bool held_out;    // never in the training split, alone or in a composition
  bool can_follow;  // may be the second step of a composition (works on any grid)
  int min_side;     // smallest input side its inputs need
};

inline const std::vector<family_info>& families() {
  static const std::vector<family_info> table = {
      {family::dihedral, "dihedral", "rotate, flip or transpose the grid", false, true, 2},
      {family::color_map, "color_map", "recolour 2-3 colours", false, false, 2},
      {family::translate, "translate", "shift everything by (dr, dc), dropping what leaves the grid", false, true, 3},
      {family::gravity, "gravity", "cells fall towards one side", false, true, 2},
      {family::fill_enclosed, "fill_enclosed", "fill background enclosed by shapes", false, false, 5},
      {family::recolor_by_size, "recolor_by_size", "recolour objects by size against a threshold", false, false, 4},
      {family::crop_object, "crop_object", "crop to the largest or smallest object", false, false, 4},
      {family::scale_up, "scale_up", "blow every cell up to an a x b block", false, true, 1},
      {family::tile, "tile", "repeat the grid a x b times", false, true, 1},
      {family::extend_lines, "extend_lines", "shoot lines from pixels to the border", false, false, 3},
      {family::denoise, "denoise", "remove isolated pixels", false, false, 4},
      {family::count_objects, "count_objects", "a bar as long as the number of objects", false, false, 3},
      {family::symmetry_complete, "symmetry_complete", "fill the hole of a symmetric pattern", false, false, 4},
      {family::draw_border, "draw_border", "paint the outermost ring", false, true, 3},
      {family::mirror_extend, "mirror_extend", "append the mirror image", true, false, 2},
      {family::outline, "outline", "recolour or hollow object interiors", true, false, 5},
      {family::keep_color, "keep_color", "keep one colour, clear the rest", true, false, 2},
      {family::connect_pixels, "connect_pixels", "join same-coloured pixel pairs by lines", true, false, 4},
  };
  return table;
}

inline const family_info& info(family f) { return families()[std::size_t(f)]; }

inline rule_step sample_step(family f, data_rng& rng) {
  rule_step s{f, {}};
  auto& p = s.p;
  switch (f) {
    case family::dihedral:
      p[0] = rand_int(rng, 1, 7);
      break;
    case family::color_map: {
      p[0] = rand_int(rng, 2, 3);
      const auto from = detail::random_palette(rng, p[0]);
      for (int k = 0; k < p[0]; ++k) {
        p[std::size_t(1 + k)] = from[std::size_t(k)];
        p[std::size_t(4 + k)] = detail::random_palette(rng, 1, {from[std::size_t(k)]})[0];
      }
      break;
    }
    case family::translate:
      do {
        p[0] = rand_int(rng, -3, 3), p[1] = rand_int(rng, -3, 3);
      } while (p[0] == 0 && p[1] == 0);
      break;
    case family::gravity:
      p[0] = rand_int(rng, 0, 3);
      break;
    case family::recolor_by_size: {
      p[0] = rand_int(rng, 2, 4);
      const auto c = detail::random_palette(rng, 2);
      p[1] = c[0], p[2] = c[1];
      break;
    }
    case family::crop_object:
      p[0] = rand_int(rng, 0, 1);
      break;
    case family::scale_up:
    case family::tile:
      detail::sample_factors(rng, s);
      break;
    case family::extend_lines:
      p[0] = rand_int(rng, 0, 6);
      break;
    case family::denoise:
      break;
    case family::count_objects:
      p[0] = rand_int(rng, 0, 1), p[1] = rand_int(rng, 1, 9);
      break;
    case family::symmetry_complete:
    case family::mirror_extend:
      p[0] = rand_int(rng, 0, 2);
      break;
    case family::outline:
    case family::connect_pixels:
      p[0] = rand_int(rng, 0, 9);
      break;
    case family::fill_enclosed:
    case family::draw_border:
    case family::keep_color:
      p[0] = rand_int(rng, 1, 9);
      break;
  }
  return s;
}

// Parameter values reserved for the held-out split, within training families.
inline bool step_params_held_out(const rule_step& s) {
  const auto& p = s.p;
  switch (s.fam) {
    case family::dihedral:
      return p[0] == 7;
    case family::color_map:
      for (int k = 0; k < p[0]; ++k)
        if (detail::held_out_colour_pair(p[std::size_t(1 + k)], p[std::size_t(4 + k)])) return true;
      return false;
    case family::translate:
      return detail::held_out_shift(p[0], p[1]);
    case family::fill_enclosed:
      return p[0] == 7;
    case family::scale_up:
      return p[0] == 3 && p[1] == 2;
    case family::tile:
      return p[0] == 1 && p[1] == 3;
    case family::extend_lines:
      return p[0] == 6;
    default:
      return false;
  }
}

inline bool step_held_out(const rule_step& s) { return info(s.fam).held_out || step_params_held_out(s); }

// How many times taller and wider the output is than the input.
inline std::pair<int, int> step_growth(const rule_step& s) {
  switch (s.fam) {
    case family::scale_up:
    case family::tile:
      return {s.p[0], s.p[1]};
    case family::mirror_extend:
      return {s.p[0] == 0 ? 1 : 2, s.p[0] == 1 ? 1 : 2};
    default:
      return {1, 1};
  }
}

inline grid make_step_input(const rule_step& s, data_rng& rng, int rows, int cols) {
  using namespace detail;
  const auto& p = s.p;
  const auto any_palette = [&] { return random_palette(rng, rand_int(rng, 1, 4)); };
  switch (s.fam) {
    case family::color_map:
      return noise_input(rng, rows, cols, std::vector<std::uint8_t>(p.begin() + 1, p.begin() + 1 + p[0]));
    case family::keep_color: {
      auto palette = random_palette(rng, rand_int(rng, 1, 3), {p[0]});
      palette.push_back(std::uint8_t(p[0]));
      return noise_input(rng, rows, cols, palette);
    }
    case family::fill_enclosed: {
      canvas cv(rows, cols);
      add_rects(rng, cv, 3, true, random_palette(rng, rand_int(rng, 1, 2), {p[0]}));
      // Open some shapes with a gap in their side, so "enclosed" is not just "inside a shape".
      for (const auto& o : find_objects(cv.g)) {
        if (!rand_chance(rng, 1, 3)) continue;
        std::vector<int> sides;
        for (int i : o.cells) {
          const int r = i / cols, c = i % cols;
          if ((r == o.top || r == o.bottom) != (c == o.left || c == o.right)) sides.push_back(i);
        }
        if (!sides.empty()) cv.g.cells[std::size_t(sides[rand_below(rng, sides.size())])] = 0;
      }
      return cv.g;
    }
    case family::recolor_by_size:
      return objects_input(rng, rows, cols, 6, false, random_palette(rng, 1, {p[1], p[2]}));
    case family::crop_object:
      return objects_input(rng, rows, cols, 8, true, any_palette());
    case family::count_objects:
      return objects_input(rng, rows, cols, 5, false, any_palette());
    case family::extend_lines: {
      grid g(rows, cols);
      // Distinct rows and columns: parallel rays never meet.
      const auto rs = shuffled_indices(rng, rows), cs = shuffled_indices(rng, cols);
      const auto palette = any_palette();
      const int n = rand_int(rng, 1, std::min({3, rows, cols}));
      for (int k = 0; k < n; ++k) g.at(rs[std::size_t(k)], cs[std::size_t(k)]) = pick_colour(rng, palette);
      return g;
    }
    case family::denoise: {
      canvas cv(rows, cols);
      const auto palette = any_palette();
      add_rects(rng, cv, 2, false, palette);
      const int noise = rand_int(rng, 1, 5);
      for (int k = 0, tries = 0; k < noise && tries < 50; ++tries) {
        const int r = rand_int(rng, 0, rows - 1), c = rand_int(rng, 0, cols - 1);
        if (cv.free(r, c)) cv.commit({r * cols + c}, pick_colour(rng, palette)), ++k;
      }
      return cv.g;
    }
    case family::outline: {
      canvas cv(rows, cols);
      add_rects(rng, cv, 3, false, random_palette(rng, rand_int(rng, 1, 3), {p[0]}));
      return cv.g;
    }
    case family::symmetry_complete:
      return symmetric_input(rng, p[0], rows, cols);
    case family::connect_pixels:
      return connect_pixels_input(rng, rows, cols, any_palette());
    default:
      return noise_input(rng, rows, cols, any_palette());
  }
}

inline grid apply_step(const rule_step& s, const grid& in) {
  using namespace detail;
  const auto& p = s.p;
  switch (s.fam) {
    case family::dihedral:
      return dihedral(in, p[0]);
    case family::color_map: {
      grid out = in;
      for (std::size_t i = 0; i < in.cells.size(); ++i)
        for (int k = 0; k < p[0]; ++k)
          if (in.cells[i] == p[std::size_t(1 + k)]) out.cells[i] = std::uint8_t(p[std::size_t(4 + k)]);
      return out;
    }
    case family::translate: {
      grid out(in.rows, in.cols);
      for (int r = 0; r < in.rows; ++r)
        for (int c = 0; c < in.cols; ++c) {
          const int tr = r + p[0], tc = c + p[1];
          if (tr >= 0 && tr < in.rows && tc >= 0 && tc < in.cols) out.at(tr, tc) = in.at(r, c);
        }
      return out;
    }
    case family::gravity:
      return apply_gravity(p[0], in);
    case family::fill_enclosed:
      return apply_fill_enclosed(std::uint8_t(p[0]), in);
    case family::recolor_by_size: {
      grid out = in;
      for (const auto& o : find_objects(in))
        for (int i : o.cells) out.cells[std::size_t(i)] = std::uint8_t(o.size() >= p[0] ? p[1] : p[2]);
      return out;
    }
    case family::crop_object:
      return apply_crop_object(p[0], in);
    case family::scale_up: {
      grid out(in.rows * p[0], in.cols * p[1]);
      for (int r = 0; r < out.rows; ++r)
        for (int c = 0; c < out.cols; ++c) out.at(r, c) = in.at(r / p[0], c / p[1]);
      return out;
    }
    case family::tile: {
      grid out(in.rows * p[0], in.cols * p[1]);
      for (int r = 0; r < out.rows; ++r)
        for (int c = 0; c < out.cols; ++c) out.at(r, c) = in.at(r % in.rows, c % in.cols);
      return out;
    }
    case family::extend_lines:
      return apply_extend_lines(s, in);
    case family::denoise: {
      grid out = in;
      for (int r = 0; r < in.rows; ++r)
        for (int c = 0; c < in.cols; ++c) {
          const auto v = in.at(r, c);
          const bool alone = (r == 0 || in.at(r - 1, c) != v) && (r + 1 == in.rows || in.at(r + 1, c) != v) &&
                             (c == 0 || in.at(r, c - 1) != v) && (c + 1 == in.cols || in.at(r, c + 1) != v);
          if (v && alone) out.at(r, c) = 0;
        }
      return out;
    }
    case family::count_objects: {
      const int n = int(find_objects(in).size());
      if (n == 0) return {};
      return grid(p[0] ? n : 1, p[0] ? 1 : n, std::uint8_t(p[1]));
    }
    case family::symmetry_complete:
      return apply_symmetry_complete(p[0], in);
    case family::draw_border: {
      grid out = in;
      for (int r = 0; r < in.rows; ++r)
        for (int c = 0; c < in.cols; ++c)
          if (r == 0 || c == 0 || r == in.rows - 1 || c == in.cols - 1) out.at(r, c) = std::uint8_t(p[0]);
      return out;
    }
    case family::mirror_extend: {
      const auto [gr, gc] = step_growth(s);
      grid out(in.rows * gr, in.cols * gc);
      for (int r = 0; r < out.rows; ++r)
        for (int c = 0; c < out.cols; ++c)
          out.at(r, c) = in.at(r < in.rows ? r : out.rows - 1 - r, c < in.cols ? c : out.cols - 1 - c);
      return out;
    }
    case family::outline: {
      grid out = in;
      for (int r = 1; r + 1 < in.rows; ++r)
        for (int c = 1; c + 1 < in.cols; ++c) {
          const auto v = in.at(r, c);
          if (v && in.at(r - 1, c) == v && in.at(r + 1, c) == v && in.at(r, c - 1) == v && in.at(r, c + 1) == v)
            out.at(r, c) = std::uint8_t(p[0]);
        }
      return out;
    }
    case family::keep_color: {
      grid out = in;
      for (auto& v : out.cells)
        if (v != p[0]) v = 0;
      return out;
    }
    case family::connect_pixels:
      return apply_connect_pixels(p[0], in);
  }
  return {};
}

inline std::string describe(const rule_step& s) {
  static const char* const side[] = {"up", "right", "down", "left", "horizontal", "vertical", "all"};
  const auto& p = s.p;
  const auto n = [](int v) { return std::to_string(v); };
  std::string args;
  switch (s.fam) {
    case family::dihedral:
      args = "k=" + n(p[0]);
      break;
    case family::color_map:
      for (int k = 0; k < p[0]; ++k) args += (k ? "," : "") + n(p[std::size_t(1 + k)]) + ">" + n(p[std::size_t(4 + k)]);
      break;
    case family::translate:
      args = "dr=" + n(p[0]) + ",dc=" + n(p[1]);
      break;
    case family::gravity:
    case family::extend_lines:
      args = side[p[0]];
      break;
    case family::recolor_by_size:
      args = "t=" + n(p[0]) + ",big=" + n(p[1]) + ",small=" + n(p[2]);
      break;
    case family::crop_object:
      args = p[0] ? "smallest" : "largest";
      break;
    case family::scale_up:
    case family::tile:
      args = n(p[0]) + "x" + n(p[1]);
      break;
    case family::denoise:
      return info(s.fam).name;
    case family::count_objects:
      args = std::string(p[0] ? "column" : "row") + ",c=" + n(p[1]);
      break;
    case family::symmetry_complete:
    case family::mirror_extend:
      args = p[0] == 0 ? "lr" : p[0] == 1 ? "tb" : "both";
      break;
    case family::outline:
      args = "inside=" + n(p[0]);
      break;
    case family::connect_pixels:
      args = p[0] ? "c=" + n(p[0]) : "same";
      break;
    case family::fill_enclosed:
    case family::draw_border:
    case family::keep_color:
      args = "c=" + n(p[0]);
      break;
  }
  return std::string(info(s.fam).name) + "(" + args + ")";
}

}  // namespace data
ETRM_END_NAMESPACE
