// SPDX-License-Identifier: Apache-2.0
// Data throughput: the Sudoku solver with its uniqueness proof (puzzles/s; the sudoku-exchange
// bank when ETRM_DATA_DIR is set, generated 24-clue puzzles otherwise), the few-shot task
// generator (tasks/s), the maze generator (mazes/s) and ETRM's alignment search (rows/s, per
// canvas side: 6 with 3 demos as the few-shot defaults, 30 with 4 as ARC; generated tasks of
// the training rules with input sides up to 5 and 10 whose grids fit the canvas).
#include <etrm/data/cell_alignment.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/generator.hpp>
#include <etrm/data/maze.hpp>
#include <etrm/data/sudoku.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace d = etrm::data;

namespace {

const std::vector<d::sudoku_example>& sudoku_puzzles() {
  static const auto puzzles = [] {
    if (const char* root = std::getenv("ETRM_DATA_DIR"))
      return d::load_sudoku_bank(std::filesystem::path(root) / "sudoku" / "sudoku-exchange-diabolical.txt");
    d::data_rng rng(1);
    std::vector<d::sudoku_example> out;
    for (int i = 0; i < 200; ++i) out.push_back(d::generate_sudoku(rng, 24));
    return out;
  }();
  return puzzles;
}

void bm_sudoku_solve_unique(benchmark::State& state) {
  const auto& puzzles = sudoku_puzzles();
  std::size_t i = 0;
  for (auto _ : state) {
    d::sudoku_board solution{};
    benchmark::DoNotOptimize(d::count_sudoku_solutions(puzzles[i].question, 2, &solution));
    i = (i + 1) % puzzles.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::getenv("ETRM_DATA_DIR") ? "puzzles: sudoku-exchange bank" : "puzzles: generated, 24 clues");
}
BENCHMARK(bm_sudoku_solve_unique);

void bm_sudoku_generate(benchmark::State& state) {
  d::data_rng rng(2);
  for (auto _ : state) benchmark::DoNotOptimize(d::generate_sudoku(rng, int(state.range(0))));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_sudoku_generate)->Arg(30)->Arg(25);

void bm_generator_sample_task(benchmark::State& state) {
  const auto split = state.range(0) ? d::rule_split::held_out : d::rule_split::train;
  std::uint64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(d::sample_task(split, 1, i++));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_generator_sample_task)->Arg(0)->Arg(1);

void bm_maze_generate_hard(benchmark::State& state) {
  d::data_rng rng(3);
  const d::maze_config hard{.min_path_length = d::maze_hard_longer_than + 1};
  for (auto _ : state) benchmark::DoNotOptimize(d::generate_maze(hard, rng));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_maze_generate_hard);

}  // namespace

void bm_search_alignment(benchmark::State& state) {
  const d::episode_shape shape{int(state.range(0)), int(state.range(1))};
  d::generator_config g;
  g.max_side = shape.side == 6 ? 5 : 10;
  const int n = int(shape.seq_len()), rows = 64;
  std::vector<std::int32_t> context(std::size_t(rows) * std::size_t(shape.context_width())), scratch(std::size_t(2 * n));
  std::uint64_t index = 0;
  const auto fits = [&](const d::task& t) {
    return std::all_of(t.train.begin(), t.train.end(), [&](const d::grid_pair& p) { return shape.fits(p); }) &&
           shape.fits(t.test.front());
  };
  for (int r = 0; r < rows; ++r) {
    d::task t = d::sample_task(d::rule_split::train, 5, index++, g);
    while (!fits(t)) t = d::sample_task(d::rule_split::train, 5, index++, g);
    std::vector<std::size_t> demos;
    for (std::size_t i = 0; i < t.train.size() && i < std::size_t(shape.max_demos); ++i) demos.push_back(i);
    d::encode_episode(t, demos, 0, shape, std::span(scratch).first(std::size_t(n)), std::span(scratch).last(std::size_t(n)),
                      std::span(context).subspan(std::size_t(r) * std::size_t(shape.context_width()),
                                                 std::size_t(shape.context_width())));
  }
  int r = 0;
  for (auto _ : state) {
    const std::int32_t* row = context.data() + std::size_t(r) * std::size_t(shape.context_width());
    benchmark::DoNotOptimize(d::search_alignment(row, row + shape.max_demos * shape.pair_len(), shape.max_demos,
                                                 shape.side, d::arc_vocab_size));
    r = (r + 1) % rows;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_search_alignment)->Args({6, 3})->Args({30, 4})->ArgNames({"side", "demos"});
