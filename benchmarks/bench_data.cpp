// SPDX-License-Identifier: Apache-2.0
// Data throughput: the Sudoku solver with its uniqueness proof (puzzles/s; the sudoku-exchange
// bank when ETRM_DATA_DIR is set, generated 24-clue puzzles otherwise), the few-shot task
// generator (tasks/s) and the maze generator (mazes/s).
#include <etrm/data/generator.hpp>
#include <etrm/data/maze.hpp>
#include <etrm/data/sudoku.hpp>

#include <benchmark/benchmark.h>

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
