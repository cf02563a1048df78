// SPDX-License-Identifier: Apache-2.0
// What the pattern cells (data/cell_patterns.hpp) answer with no model at all: for generated
// tasks of one split, at the few-shot defaults' sizes (examples/configs/fewshot_etrm.json: grids
// of side 2..5 on a 6×6 canvas, 2..4 demos of which the encoder reads 3, 10% compositions), the
// share of tasks whose every query cell the look-alikes answer right, per rule family, and how
// often the answer is "sure" (its key answers every demo cell right) when it is right and when
// it is wrong. The ceiling of what the model can take from them as they are.
//   example_pattern_cells_probe [held_out|train] [TASKS] [SEED]
#include <etrm/data/cell_patterns.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/generator.hpp>

#include <algorithm>
#include <cstdio>
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
}  // namespace

int main(int argc, char** argv) {
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
