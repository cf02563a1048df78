// SPDX-License-Identifier: Apache-2.0
// The per-task priors alone, with no network: what the hand-written searches over a task's demos
// answer by themselves. The baseline that an ETRM with priors must beat to show that its network
// adds anything, and that the learned ETRM (no priors) is measured against.
//
// 1. On generated tasks of one split, at the few-shot defaults' sizes (examples/configs/fewshot_etrm.json:
//    grids of side 2..5 on a 6×6 canvas, 2..4 demos of which the encoder reads 3, 10% compositions):
//    the share of tasks whose every query cell the pattern cells' look-alikes (data/cell_patterns.hpp)
//    answer right, per rule family, and how often the answer is "sure" (its key answers every demo
//    cell right) when it is right and when it is wrong.
//      example_pattern_cells_probe [held_out|train] [TASKS] [SEED]
// 2. On a folder of ARC-format tasks (ARC-AGI, ConceptARC, `etrm generate` output), scored as the
//    `etrm eval` suites are: every task counts, one that does not fit the SIDE×SIDE canvas (a test
//    pair, or every demo) is failed; attempt 1 is the pattern cells' answer of the whole canvas (a
//    cell that is not a colour keeps its token, so an output larger than the input is wrong),
//    attempt 2 the alignment search's move-then-recolour candidate (data/cell_alignment.hpp).
//      example_pattern_cells_probe --tasks DIR [SIDE = 10]
#include <etrm/data/arc.hpp>
#include <etrm/data/batching.hpp>
#include <etrm/data/cell_alignment.hpp>
#include <etrm/data/cell_patterns.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/generator.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace {
namespace d = etrm::data;
using etrm::index_t;

struct tally {
  int tasks = 0, right = 0, sure_right = 0, sure_wrong = 0;
};

// The relations of N stacked G × G canvases, as the encoder computes them: [17, N, G, G].
std::vector<std::int32_t> relations(const std::vector<std::int32_t>& grids, index_t N, int G) {
  std::vector<std::int32_t> out(std::size_t(d::pattern_relations * N * G * G));
  const d::pattern_neighbours f{grids.data(), N, G, out.data()};
  for (index_t i = 0; i < index_t(out.size()); ++i) f(i);
  return out;
}
// The pattern cells' answer (attempt 0) and the alignment search's candidate (attempt 1) for the
// query pair q of a task on the canvas of `shape`: whether each equals the answer on every cell.
std::array<bool, 2> priors_answer(const d::task& t, const d::grid_pair& q, const d::episode_shape& shape) {
  const index_t M = shape.max_demos, n = shape.seq_len();
  const int G = shape.side, V = d::arc_vocab_size;
  const auto cells = static_cast<std::size_t>(n);
  std::vector<std::int32_t> inputs(cells), labels(cells), context(static_cast<std::size_t>(shape.context_width()));
  std::vector<std::size_t> demos;
  for (std::size_t i = 0; i < t.train.size() && i < std::size_t(M); ++i) demos.push_back(i);
  d::encode_episode(t.train, demos, q, shape, inputs, labels, context);
  const std::vector<std::int32_t> pairs(context.begin(), context.begin() + 2 * M * n);
  const std::int32_t* present = context.data() + 2 * M * n;
  const auto demo_ids = relations(pairs, 2 * M, G), query_ids = relations(inputs, 1, G);
  d::pattern_demos look_alikes{pairs.data(), present, demo_ids.data(), 2 * M * n, int(M), G, V};
  look_alikes.find_voters().rank_keys();
  std::vector<std::int32_t> pattern = inputs, candidate(cells), map(static_cast<std::size_t>(V));
  for (index_t i = 0; i < n; ++i)
    if (inputs[std::size_t(i)] >= d::arc_first_colour_token)
      pattern[std::size_t(i)] = look_alikes.answer(inputs[std::size_t(i)], {query_ids.data() + i, n}, -1).token;
  const d::cell_alignment h = d::search_alignment(pairs.data(), present, int(M), G, V, map.data());
  d::transport_canvas(inputs.data(), G, h, V, candidate.data());
  d::recolour_canvas(candidate.data(), G, V, map.data());
  for (auto& v : candidate) v = v >= V ? v - V : v;  // a colour the demos say nothing about stays
  const auto right = [&](const std::vector<std::int32_t>& answer) {
    for (index_t i = 0; i < n; ++i)
      if (labels[std::size_t(i)] != d::ignore_label && answer[std::size_t(i)] != labels[std::size_t(i)]) return false;
    return true;
  };
  return {right(pattern), right(candidate)};
}

// Mode 2: every task of a folder, pass@1 and pass@2 of the priors alone.
int probe_folder(const std::string& dir, int side) {
  const d::episode_shape shape{side, 3};
  const auto tasks = d::load_arc_tasks(std::filesystem::path(dir));
  int fit = 0, pass1 = 0, pass2 = 0;
  for (const auto& t : tasks) {
    const auto fits = [&](const d::grid_pair& p) { return shape.fits(p); };
    if (t.test.empty() || !std::all_of(t.test.begin(), t.test.end(), fits) ||
        std::none_of(t.train.begin(), t.train.end(), fits))
      continue;  // failed: no answer fits the canvas
    ++fit;
    d::task part{t.id, {}, {}};
    std::copy_if(t.train.begin(), t.train.end(), std::back_inserter(part.train), fits);
    bool first = true, either = true;
    for (const auto& q : t.test) {
      const auto a = priors_answer(part, q, shape);
      first = first && a[0];
      either = either && (a[0] || a[1]);
    }
    pass1 += first;
    pass2 += either;
  }
  const double n = tasks.empty() ? 1.0 : double(tasks.size());
  std::printf("%s: %zu tasks, %d fit the %dx%d canvas; priors alone: pass@1 %.2f%% (%d), pass@2 %.2f%% (%d) over "
              "every task\n", dir.c_str(), tasks.size(), fit, side, side, 100.0 * pass1 / n, pass1, 100.0 * pass2 / n, pass2);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--tasks") {
    const int side = argc > 3 ? std::atoi(argv[3]) : 10;
    if (argc < 3 || argc > 4 || side < 3 || side > 30) {
      std::fprintf(stderr, "usage: %s --tasks DIR [SIDE 3..30]\n", argv[0]);
      return 2;
    }
    try {
      return probe_folder(argv[2], side);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: error: %s\n", argv[0], e.what());
      return 1;
    }
  }
  const std::string split = argc > 1 ? argv[1] : "held_out";
  const long tasks = argc > 2 ? std::atol(argv[2]) : 1000;
  const unsigned long long seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 77;
  if (argc > 4 || (split != "held_out" && split != "train") || tasks < 1) {
    std::fprintf(stderr, "usage: %s [held_out|train] [TASKS >= 1] [SEED]\n", argv[0]);
    return 2;
  }
  d::generator_config cfg;
  cfg.min_side = 2, cfg.max_side = 5, cfg.min_demos = 2, cfg.max_demos = 4, cfg.compose_percent = 10;
  const d::episode_shape shape{6, 3};
  const index_t M = shape.max_demos, n = shape.seq_len();
  const int G = int(shape.side);
  std::map<std::string, tally> families;
  tally all;
  int skipped = 0;
  for (long index = 0; index < tasks; ++index) {
    const auto [rule, task] = d::sample_rule_and_task(
        split == "train" ? d::rule_split::train : d::rule_split::held_out, seed, std::uint64_t(index), cfg);
    const auto cells = static_cast<std::size_t>(n);
    std::vector<std::int32_t> inputs(cells), labels(cells), context(static_cast<std::size_t>(shape.context_width()));
    std::vector<std::size_t> demos;
    for (std::size_t i = 0; i < task.train.size() && i < std::size_t(M); ++i) demos.push_back(i);
    const auto fits = [&](const d::grid_pair& p) { return shape.fits(p); };
    if (!std::all_of(task.train.begin(), task.train.end(), fits) ||
        !std::all_of(task.test.begin(), task.test.end(), fits)) {
      ++skipped;  // a grid larger than the canvas: the trainer skips such tasks too
      continue;
    }
    d::encode_episode(task, demos, 0, shape, inputs, labels, context);
    const std::vector<std::int32_t> pairs(context.begin(), context.begin() + 2 * M * n);
    const auto demo_ids = relations(pairs, 2 * M, G), query_ids = relations(inputs, 1, G);
    d::pattern_demos look_alikes{pairs.data(), context.data() + 2 * M * n, demo_ids.data(), 2 * M * n, int(M), G,
                                 d::arc_vocab_size};
    look_alikes.find_voters().rank_keys();
    bool right = true, sure = true;
    for (index_t i = 0; i < n; ++i) {
      if (inputs[std::size_t(i)] < d::arc_first_colour_token) continue;
      const d::pattern_answer a = look_alikes.answer(inputs[std::size_t(i)], {query_ids.data() + i, n}, -1);
      right = right && a.token == labels[std::size_t(i)];
      sure = sure && a.sure;
    }
    for (tally* t : {&families[rule.then ? "(compositions)" : d::info(rule.first.fam).name], &all}) {
      ++t->tasks;
      t->right += right;
      t->sure_right += sure && right;
      t->sure_wrong += sure && !right;
    }
  }
  std::printf("%s split, seed %llu: %d tasks (%d skipped: a grid larger than the canvas)\n", split.c_str(), seed,
              all.tasks, skipped);
  std::printf("%-18s %6s %8s %12s %12s\n", "family", "tasks", "right", "sure, right", "sure, wrong");
  const auto line = [](const std::string& name, const tally& t) {
    std::printf("%-18s %6d %7.1f%% %12d %12d\n", name.c_str(), t.tasks, 100.0 * t.right / (t.tasks ? t.tasks : 1),
                t.sure_right, t.sure_wrong);
  };
  for (const auto& [name, t] : families) line(name, t);
  line("total", all);
}
