// SPDX-License-Identifier: Apache-2.0
// Sudoku data (trm-computation.md §5.3): loaders for the Sudoku-Extreme CSV and the sudoku-exchange puzzle
// bank, an exact solver that also proves uniqueness, TRM's augmentation, a generator of
// unique-solution puzzles with a clue-count knob, and the token encoding (PAD 0, blank 1,
// digit d -> d+1; vocab 11, 81 tokens).
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/generator_random.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// Row-major 9x9, 0 = blank, 1..9 = digits.
using sudoku_board = std::array<std::uint8_t, 81>;

struct sudoku_example {
  sudoku_board question{};
  sudoku_board answer{};  // all zero until known (the bank ships no solutions; see label_sudoku)
  float rating = 0;
  std::string source;
  bool operator==(const sudoku_example&) const = default;
};

inline constexpr std::size_t sudoku_seq_len = 81;
inline constexpr std::int32_t sudoku_pad_token = 0;
inline constexpr std::int32_t sudoku_blank_token = 1;
inline constexpr std::int32_t sudoku_vocab_size = 11;

// ---------------------------------------------------------------------------------------------
// Solver

namespace detail {

inline constexpr std::uint16_t sudoku_all_digits = 0x1FF;

constexpr int sudoku_box(int cell) { return (cell / 27) * 3 + (cell % 9) / 3; }

// The 27 units' cells: rows 0..8, columns 9..17, boxes 18..26.
inline constexpr auto sudoku_units = [] {
  std::array<std::array<std::uint8_t, 9>, 27> u{};
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) {
      u[i][j] = std::uint8_t(i * 9 + j);
      u[9 + i][j] = std::uint8_t(j * 9 + i);
      u[18 + i][j] = std::uint8_t((i / 3 * 3 + j / 3) * 9 + i % 3 * 3 + j % 3);
    }
  return u;
}();

// Used-digit masks (bit d-1 for digit d) per row, column and box, and the cells still empty.
// Search swaps the chosen cell to the end of `empty` and shrinks the live prefix, so picking the
// most constrained cell scans only empty cells.
struct sudoku_search {
  sudoku_board cells{};
  std::array<std::uint16_t, 9> row{}, col{}, box{};
  std::array<std::uint8_t, 81> empty{};
  int num_empty = 0;
  int limit = 2;
  int found = 0;
  sudoku_board first{};
  data_rng* rng = nullptr;  // set: try candidates in random order (generating full grids)

  // False when the clues already clash.
  bool load(const sudoku_board& b) {
    cells = b;
    for (int i = 0; i < 81; ++i) {
      if (b[i] == 0) {
        empty[num_empty++] = std::uint8_t(i);
        continue;
      }
      const std::uint16_t bit = std::uint16_t(1u << (b[i] - 1));
      if ((row[i / 9] | col[i % 9] | box[sudoku_box(i)]) & bit) return false;
      place(i, bit);
    }
    return true;
  }
  void place(int i, std::uint16_t bit) { row[i / 9] |= bit, col[i % 9] |= bit, box[sudoku_box(i)] |= bit; }
  void unplace(int i, std::uint16_t bit) { row[i / 9] &= ~bit, col[i % 9] &= ~bit, box[sudoku_box(i)] &= ~bit; }
  std::uint16_t candidates(int i) const {
    return std::uint16_t(~(row[i / 9] | col[i % 9] | box[sudoku_box(i)]) & sudoku_all_digits);
  }

  void run() {
    if (num_empty == 0) {
      if (found++ == 0) first = cells;
      return;
    }
    // Most constrained cell first ...
    std::array<std::uint16_t, 81> cand{};
    int best = 0, best_count = 10;
    for (int k = 0; k < num_empty; ++k) {
      cand[empty[k]] = candidates(empty[k]);
      const int n = std::popcount(cand[empty[k]]);
      if (n < best_count) best = k, best_count = n;
    }
    if (best_count == 0) return;
    std::uint16_t mask = cand[empty[best]];
    // ... unless a unit has a digit that fits only one of its cells (a hidden single), which
    // prunes far more on hard puzzles; a digit that fits nowhere is a dead end.
    if (best_count > 1)
      for (int u = 0; u < 27; ++u) {
        std::uint16_t once = 0, twice = 0;
        for (int j = 0; j < 9; ++j) {
          const std::uint16_t m = cand[sudoku_units[u][j]];
          twice |= once & m;
          once |= m;
        }
        const std::uint16_t placed = u < 9 ? row[u] : u < 18 ? col[u - 9] : box[u - 18];
        if ((once | placed) != sudoku_all_digits) return;
        if (const auto single = std::uint16_t(once & ~twice)) {
          const std::uint16_t digit = single & std::uint16_t(-single);
          int j = 0;
          while (!(cand[sudoku_units[u][j]] & digit)) ++j;
          best = int(std::find(empty.begin(), empty.begin() + num_empty, sudoku_units[u][j]) - empty.begin());
          mask = digit;
          break;
        }
      }
    std::swap(empty[best], empty[num_empty - 1]);
    const int cell = empty[--num_empty];
    std::array<std::uint8_t, 9> order{};
    int n = 0;
    for (; mask; mask &= std::uint16_t(mask - 1)) order[n++] = std::uint8_t(std::countr_zero(mask) + 1);
    if (rng) {
      std::span<std::uint8_t> live(order.data(), std::size_t(n));
      rand_shuffle(*rng, live);
    }
    for (int k = 0; k < n && found < limit; ++k) {
      const auto bit = std::uint16_t(1u << (order[k] - 1));
      cells[cell] = order[k];
      place(cell, bit);
      run();
      unplace(cell, bit);
    }
    cells[cell] = 0;
    ++num_empty;
  }
};

}  // namespace detail

// Number of solutions, counted up to `limit` (2 answers "is it unique?"); `solution` receives the
// first one found.
inline int count_sudoku_solutions(const sudoku_board& b, int limit = 2, sudoku_board* solution = nullptr) {
  detail::sudoku_search s;
  if (!s.load(b)) return 0;
  s.limit = limit;
  s.run();
  if (solution && s.found > 0) *solution = s.first;
  return s.found;
}

inline std::optional<sudoku_board> solve_sudoku(const sudoku_board& b) {
  sudoku_board solution{};
  if (count_sudoku_solutions(b, 1, &solution) == 0) return std::nullopt;
  return solution;
}

// A complete, rule-abiding grid that keeps every clue of `question`.
inline bool is_sudoku_solution(const sudoku_board& question, const sudoku_board& answer) {
  std::array<std::uint16_t, 27> seen{};
  for (int i = 0; i < 81; ++i) {
    const int d = answer[i];
    if (d < 1 || d > 9 || (question[i] != 0 && question[i] != d)) return false;
    seen[i / 9] |= std::uint16_t(1u << (d - 1));
    seen[9 + i % 9] |= std::uint16_t(1u << (d - 1));
    seen[18 + detail::sudoku_box(i)] |= std::uint16_t(1u << (d - 1));
  }
  for (auto m : seen)
    if (m != detail::sudoku_all_digits) return false;
  return true;
}

// Fills `answer` by solving; throws unless the puzzle has exactly one solution, since a
// two-solution puzzle would train the model on an arbitrary label.
inline void label_sudoku(sudoku_example& e) {
  const int n = count_sudoku_solutions(e.question, 2, &e.answer);
  if (n != 1)
    throw data_error("sudoku puzzle " + e.source + ": " + (n == 0 ? "no solution" : "more than one solution"));
}

// ---------------------------------------------------------------------------------------------
// Loaders

namespace detail {

// 81 cells of digits, with `blank` ('.' or '0') for an empty cell.
inline sudoku_board parse_sudoku_cells(std::string_view s, char blank, const std::string& where) {
  if (s.size() != 81) throw data_error(where + ": expected 81 cells, got " + std::to_string(s.size()));
  sudoku_board b{};
  for (int i = 0; i < 81; ++i) {
    const char ch = s[std::size_t(i)];
    if (ch == blank || ch == '0') continue;
    if (ch < '1' || ch > '9') throw data_error(where + ": bad cell character '" + std::string(1, ch) + "'");
    b[i] = std::uint8_t(ch - '0');
  }
  return b;
}

inline float parse_rating(const std::string& s, const std::string& where) {
  try {
    std::size_t used = 0;
    const float v = std::stof(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw data_error(where + ": bad rating \"" + s + "\"");
}

inline std::ifstream open_sudoku_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw data_error(path.string() + ": cannot open file");
  return in;
}

// Longer than any line of either format (~200 characters); a longer one is refused before it is
// held in memory, so a file without line breaks cannot exhaust it.
inline constexpr std::size_t sudoku_max_line = 4096;

// The next line without its '\n' or '\r\n'; false at the end of the input.
inline bool read_sudoku_line(std::istream& in, std::string& line, const std::string& origin, std::size_t line_no) {
  line.clear();
  std::streambuf* buf = in.rdbuf();
  using traits = std::char_traits<char>;
  int ch = traits::eof();
  while ((ch = buf->sbumpc()) != traits::eof() && ch != '\n') {
    if (line.size() == sudoku_max_line)
      throw data_error(origin + ":" + std::to_string(line_no) + ": line longer than the limit of " +
                       std::to_string(sudoku_max_line) + " characters");
    line.push_back(traits::to_char_type(ch));
  }
  if (ch == traits::eof() && line.empty()) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace detail

// Sudoku-Extreme (`source,question,answer,rating`, header line, '.' blanks). Reads at most
// `max_count` puzzles; the answer is checked against the question. `origin` names the input in
// errors ("<origin>:<line>: ...").
inline std::vector<sudoku_example> load_sudoku_extreme_csv(
    std::istream& in, const std::string& origin, std::size_t max_count = std::numeric_limits<std::size_t>::max()) {
  std::vector<sudoku_example> out;
  std::string line;
  for (std::size_t line_no = 1; out.size() < max_count && detail::read_sudoku_line(in, line, origin, line_no); ++line_no) {
    if (line.empty() || (line_no == 1 && line.rfind("source,", 0) == 0)) continue;
    const std::string where = origin + ":" + std::to_string(line_no);
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',');) fields.push_back(f);
    if (fields.size() != 4)
      throw data_error(where + ": expected 4 comma-separated fields, got " + std::to_string(fields.size()));
    sudoku_example e;
    e.source = fields[0];
    e.question = detail::parse_sudoku_cells(fields[1], '.', where + " question");
    e.answer = detail::parse_sudoku_cells(fields[2], '.', where + " answer");
    e.rating = detail::parse_rating(fields[3], where);
    if (!is_sudoku_solution(e.question, e.answer)) throw data_error(where + ": answer does not solve the question");
    out.push_back(std::move(e));
  }
  return out;
}

inline std::vector<sudoku_example> load_sudoku_extreme_csv(
    const std::filesystem::path& path, std::size_t max_count = std::numeric_limits<std::size_t>::max()) {
  auto in = detail::open_sudoku_file(path);
  return load_sudoku_extreme_csv(in, path.string(), max_count);
}

// The sudoku-exchange bank: `<hash> <81 digits, 0 = blank> <rating>` per line. No solutions are
// shipped: answers stay zero until label_sudoku. `source` is the hash.
inline std::vector<sudoku_example> load_sudoku_bank(std::istream& in, const std::string& origin) {
  std::vector<sudoku_example> out;
  std::string line;
  for (std::size_t line_no = 1; detail::read_sudoku_line(in, line, origin, line_no); ++line_no) {
    if (line.empty()) continue;
    const std::string where = origin + ":" + std::to_string(line_no);
    std::istringstream ss(line);
    std::string hash, digits, rating, extra;
    if (!(ss >> hash >> digits >> rating) || (ss >> extra))
      throw data_error(where + ": expected `<hash> <81 digits> <rating>`");
    sudoku_example e;
    e.source = hash;
    e.question = detail::parse_sudoku_cells(digits, '0', where);
    e.rating = detail::parse_rating(rating, where);
    out.push_back(std::move(e));
  }
  return out;
}

inline std::vector<sudoku_example> load_sudoku_bank(const std::filesystem::path& path) {
  auto in = detail::open_sudoku_file(path);
  return load_sudoku_bank(in, path.string());
}

// ---------------------------------------------------------------------------------------------
// Augmentation (build_sudoku_dataset.py's shuffle_sudoku)

struct sudoku_transform {
  std::array<std::uint8_t, 10> digit_map{};  // digit_map[0] == 0: blanks stay blank
  bool transpose = false;                    // applied before the row and column permutations
  std::array<std::uint8_t, 9> row_perm{};    // new row r = old row row_perm[r]
  std::array<std::uint8_t, 9> col_perm{};
};

namespace detail {
// Shuffle the 3 bands (stacks), then the 3 lines inside each: the moves that keep boxes intact.
inline std::array<std::uint8_t, 9> sudoku_line_perm(data_rng& rng) {
  std::array<std::uint8_t, 3> bands{0, 1, 2};
  rand_shuffle(rng, bands);
  std::array<std::uint8_t, 9> perm{};
  for (int b = 0; b < 3; ++b) {
    std::array<std::uint8_t, 3> inner{0, 1, 2};
    rand_shuffle(rng, inner);
    for (int k = 0; k < 3; ++k)
      perm[std::size_t(b * 3 + k)] = std::uint8_t(bands[std::size_t(b)] * 3 + inner[std::size_t(k)]);
  }
  return perm;
}
}  // namespace detail

inline sudoku_transform random_sudoku_transform(data_rng& rng) {
  sudoku_transform t;
  std::iota(t.digit_map.begin(), t.digit_map.end(), std::uint8_t(0));
  std::span<std::uint8_t> digits(t.digit_map.data() + 1, 9);
  rand_shuffle(rng, digits);
  t.transpose = rand_chance(rng, 1, 2);
  t.row_perm = detail::sudoku_line_perm(rng);
  t.col_perm = detail::sudoku_line_perm(rng);
  return t;
}

inline sudoku_board apply_sudoku_transform(const sudoku_transform& t, const sudoku_board& b) {
  sudoku_board out{};
  for (int r = 0; r < 9; ++r)
    for (int c = 0; c < 9; ++c) {
      const int sr = t.row_perm[std::size_t(r)], sc = t.col_perm[std::size_t(c)];
      out[std::size_t(r * 9 + c)] = t.digit_map[b[std::size_t(t.transpose ? sc * 9 + sr : sr * 9 + sc)]];
    }
  return out;
}

// One transform for question and answer alike, so the pair stays consistent.
inline sudoku_example augment_sudoku(const sudoku_example& e, data_rng& rng) {
  const auto t = random_sudoku_transform(rng);
  sudoku_example out = e;
  out.question = apply_sudoku_transform(t, e.question);
  out.answer = apply_sudoku_transform(t, e.answer);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Generator

// A puzzle with a unique solution and, where reachable, exactly `target_clues` clues: a random
// full grid, then clues removed in random order while the solution stays unique. A removal pass
// can get stuck at a minimal puzzle above the target (rare above ~25 clues, common below ~22), so
// up to `max_tries` fresh grids are tried and the sparsest puzzle found is returned.
inline sudoku_example generate_sudoku(data_rng& rng, int target_clues, int max_tries = 20) {
  sudoku_example best;
  int best_clues = 82;
  for (int attempt = 0; attempt < max_tries && best_clues > target_clues; ++attempt) {
    detail::sudoku_search fill;
    fill.load(sudoku_board{});
    fill.rng = &rng;
    fill.limit = 1;
    fill.run();
    sudoku_board puzzle = fill.first;
    std::array<std::uint8_t, 81> order{};
    std::iota(order.begin(), order.end(), std::uint8_t(0));
    rand_shuffle(rng, order);
    int clues = 81;
    for (const auto cell : order) {
      if (clues <= target_clues) break;
      const std::uint8_t kept = puzzle[cell];
      puzzle[cell] = 0;
      if (count_sudoku_solutions(puzzle) == 1)
        --clues;
      else
        puzzle[cell] = kept;
    }
    if (clues < best_clues) {
      best_clues = clues;
      best.question = puzzle;
      best.answer = fill.first;
    }
  }
  best.source = "generated";
  return best;
}

// ---------------------------------------------------------------------------------------------
// Tokens

// out: [81].
inline void encode_sudoku(const sudoku_board& b, std::span<std::int32_t> out) {
  if (out.size() != sudoku_seq_len) throw data_error("sudoku.hpp: encode_sudoku needs 81 output tokens");
  for (std::size_t i = 0; i < sudoku_seq_len; ++i) out[i] = std::int32_t(b[i]) + 1;
}

inline std::vector<std::int32_t> encode_sudoku(const sudoku_board& b) {
  std::vector<std::int32_t> out(sudoku_seq_len);
  encode_sudoku(b, out);
  return out;
}

// Inverse of encode_sudoku; PAD or out-of-range tokens (an untrained model's output) become blanks.
inline sudoku_board decode_sudoku(std::span<const std::int32_t> tokens) {
  if (tokens.size() != sudoku_seq_len) throw data_error("sudoku.hpp: decode_sudoku needs 81 tokens");
  sudoku_board b{};
  for (std::size_t i = 0; i < sudoku_seq_len; ++i)
    b[i] = tokens[i] >= 2 && tokens[i] < sudoku_vocab_size ? std::uint8_t(tokens[i] - 1) : 0;
  return b;
}

}  // namespace data
ETRM_END_NAMESPACE
