// SPDX-License-Identifier: Apache-2.0
// The ARC evaluator on hand-made predictions (augmented duplicates voting together, ties broken
// by mean confidence, wrong shapes, unknown inputs, rounds), its files, and end to end: an
// oracle fed through the test split and the samplers scores 100%.
#include <etrm/data/arc.hpp>
#include <etrm/data/arc_dataset.hpp>
#include <etrm/data/batching.hpp>
#include <etrm/data/evaluator.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <optional>

using namespace etrm::data;
namespace fs = std::filesystem;

std::optional<fs::path> arc_data_dir();  // data_arc_test.cpp

namespace {

grid filled(int rows, int cols, std::uint8_t base) {
  grid g(rows, cols);
  for (std::size_t i = 0; i < g.cells.size(); ++i) g.cells[i] = std::uint8_t((base + i) % 10);
  return g;
}

augmentation aug(int dihedral, std::uint64_t draw) {
  augmentation a = augmentation_draw({1, 2}, draw);
  a.dihedral = dihedral;
  return a;
}

// What a model would emit for `prediction` (in the original frame) on the puzzle augmented by `a`.
void vote(arc_evaluator& ev, const task& t, std::size_t pair, const augmentation& a, const grid& prediction, double q) {
  ev.add(t.id, a, encode_grid(apply(a, t.test[pair].input)), encode_grid(apply(a, prediction)), q);
}

// The oracle: the labels with ignored cells back to PAD.
std::vector<std::int32_t> oracle(const batch& b) {
  std::vector<std::int32_t> p = b.labels;
  std::replace(p.begin(), p.end(), ignore_label, arc_pad_token);
  return p;
}

double run_oracle(const arc_dataset& ds, arc_evaluator& ev) {
  const auto test = ds.split(arc_split::test);
  sequential_batches batches(test, 256);
  batch b;
  while (batches.next(b)) ev.add_batch(ds, b, oracle(b), std::vector<float>(b.size, 0.0f));
  return ev.result().pass_per_task[0];
}

const task sample{"t",
                  {{filled(2, 2, 1), filled(2, 3, 2)}},
                  {{filled(2, 2, 3), filled(2, 3, 4)}, {filled(3, 1, 5), filled(1, 1, 6)}}};

}  // namespace

TEST_CASE("votes: augmented duplicates count together, ties go to the more confident") {
  arc_evaluator ev(std::vector<task>{sample}, {.pass_ks = {1, 2, 3}});
  const grid right = sample.test[0].output, wrong = filled(2, 3, 7);
  vote(ev, sample, 0, aug(0, 0), right, 0.6);
  vote(ev, sample, 0, aug(1, 1), right, 0.8);  // another augmentation: same answer once de-augmented
  vote(ev, sample, 0, aug(6, 2), wrong, 0.9);
  vote(ev, sample, 0, aug(3, 3), wrong, 0.9);
  auto r = ev.result();
  REQUIRE(r.tasks.size() == 1);
  auto p = r.tasks[0].pairs[0];
  REQUIRE(p.ranked.size() == 2);
  CHECK(p.ranked[0].prediction == wrong);  // 2 votes each: mean 0.9 beats mean 0.7
  CHECK(p.ranked[0].count == 2);
  CHECK(p.ranked[1].mean_confidence == doctest::Approx(0.7));
  CHECK(p.correct_rank == 2);
  CHECK(!p.pass(1));
  CHECK(p.pass(2));
  CHECK(r.tasks[0].score(2) == 0.5);  // the second test pair has no votes at all
  CHECK(r.pass_per_task == std::vector<double>{0.0, 0.5, 0.5});
  CHECK(r.pass_per_pair == std::vector<double>{0.0, 0.5, 0.5});

  const task silent{"s", sample.train, sample.test};  // never voted on: scored, not answered
  arc_evaluator two(std::vector<task>{sample, silent}, {.pass_ks = {2}});
  vote(two, sample, 0, aug(0, 0), right, 0.6);
  const auto summary = two.result().summary_json();
  CHECK(summary.at("tasks") == 2);
  CHECK(summary.at("answered_tasks") == 1);
  CHECK(summary.at("ARC/pass@2") == doctest::Approx(0.25));  // 1 of 2 pairs of 1 of 2 tasks

  vote(ev, sample, 0, aug(7, 4), right, 0.01);  // a third vote outweighs any confidence
  p = ev.result().tasks[0].pairs[0];
  CHECK(p.correct_rank == 1);
  CHECK(p.ranked[0].count == 3);
}

TEST_CASE("votes: wrong shapes, empty crops and foreign inputs") {
  arc_evaluator ev(std::vector<task>{sample}, {.pass_ks = {1, 2, 3}});
  const grid right = sample.test[1].output;  // 1x1
  vote(ev, sample, 1, aug(2, 5), filled(1, 2, 6), 0.9);  // one column too many
  vote(ev, sample, 1, aug(0, 6), filled(2, 1, 6), 0.8);  // one row too many
  ev.add("t", augmentation{}, encode_grid(sample.test[1].input), std::vector<std::int32_t>(arc_seq_len, 0), 0.99);
  vote(ev, sample, 1, aug(5, 7), right, 0.1);
  ev.add("t", augmentation{}, encode_grid(filled(4, 4, 0)), encode_grid(right), 1.0);  // answers no test input
  CHECK_THROWS_AS(ev.add("nope", augmentation{}, encode_grid(right), encode_grid(right), 1.0), std::invalid_argument);
  const auto r = ev.result();
  CHECK(r.unmatched == 1);
  const auto& p = r.tasks[0].pairs[1];
  REQUIRE(p.ranked.size() == 4);
  CHECK(p.ranked[0].prediction.rows == 0);  // the empty crop: one vote, most confident
  CHECK(p.correct_rank == 4);
  CHECK(p.pass(3) == false);
  CHECK(r.tasks[0].pairs[0].ranked.empty());
}

TEST_CASE("rounds accumulate votes unless told not to; clear() always empties") {
  const grid right = sample.test[0].output;
  arc_evaluator keep(std::vector<task>{sample});
  arc_evaluator fresh(std::vector<task>{sample}, {.aggregate_across_rounds = false});
  for (auto* ev : {&keep, &fresh})
    for (int round = 0; round < 3; ++round) {
      ev->begin_round();
      vote(*ev, sample, 0, aug(round, std::uint64_t(round)), right, 0.5);
    }
  CHECK(keep.result().tasks[0].pairs[0].ranked[0].count == 3);
  CHECK(fresh.result().tasks[0].pairs[0].ranked[0].count == 1);
  keep.clear();
  CHECK(keep.result().tasks[0].pairs[0].ranked.empty());
}

TEST_CASE("results: submission.json in ARC Prize format and one file per task") {
  arc_evaluator ev(std::vector<task>{sample});
  const grid right = sample.test[0].output, wrong = filled(2, 3, 8);
  vote(ev, sample, 0, aug(0, 0), right, 0.9);
  vote(ev, sample, 0, aug(1, 1), right, 0.9);
  vote(ev, sample, 0, aug(2, 2), wrong, 0.9);
  const auto r = ev.result();
  const auto sub = r.submission_json(2);
  REQUIRE(sub.contains("t"));
  REQUIRE(sub["t"].size() == 2);
  CHECK(sub["t"][0]["attempt_1"] == arc_json(right));
  CHECK(sub["t"][0]["attempt_2"] == arc_json(wrong));
  CHECK(sub["t"][1]["attempt_1"] == nlohmann::json::parse("[[0]]"));  // nothing predicted
  CHECK(sub["t"][1]["attempt_2"] == nlohmann::json::parse("[[0]]"));

  const fs::path dir = fs::temp_directory_path() / "etrm_data_evaluator_test";
  fs::remove_all(dir);
  ev.write(r, dir);
  const auto read = [](const fs::path& f) { return nlohmann::json::parse(std::ifstream(f)); };
  CHECK(read(dir / "submission.json") == sub);
  const auto summary = read(dir / "summary.json");
  CHECK(summary["ARC/pass@1"] == 0.5);
  CHECK(summary["ARC/pass@2"] == 0.5);
  const auto per_task = read(dir / "tasks" / "t.json");
  CHECK(per_task["task_id"] == "t");
  CHECK(per_task["pass@1"] == 0.5);
  CHECK(per_task["test"][0]["correct_rank"] == 1);
  CHECK(per_task["test"][0]["candidates"][0]["count"] == 2);
  CHECK(per_task["test"][0]["ground_truth"] == arc_json(right));
  CHECK(per_task["test"][1]["correct_rank"].is_null());
  fs::remove_all(dir);
}

TEST_CASE("end to end on hand-made tasks: an oracle through the test split scores 100%") {
  const task e1{"e1", {{filled(2, 2, 1), filled(2, 2, 3)}}, {{filled(3, 5, 2), filled(5, 3, 4)}, {filled(1, 1, 1), filled(4, 4, 4)}}};
  const task e2{"e2", {{filled(6, 1, 1), filled(1, 6, 3)}}, {{filled(30, 30, 7), filled(1, 30, 9)}}};
  arc_dataset_config cfg;
  cfg.num_aug = 20;
  const arc_dataset ds({sample}, {e1, e2}, cfg);
  arc_evaluator ev(ds.evaluation_tasks());
  CHECK(run_oracle(ds, ev) == 1.0);
  const auto r = ev.result();
  CHECK(r.unmatched == 0);
  CHECK(r.pass_per_pair[0] == 1.0);
  CHECK(r.tasks[1].pairs[0].ranked.size() == 1);  // every augmentation agreed
  CHECK(r.tasks[1].pairs[0].ranked[0].count == ds.split(arc_split::test).num_puzzles(1));
}

TEST_CASE("end to end on ARC-AGI-1 evaluation: oracle scores 100% through every augmentation") {
  const auto dir = arc_data_dir();
  if (!dir) return;
  arc_dataset_config cfg;
  cfg.num_aug = 8;
  const arc_dataset ds({}, load_arc_tasks(*dir / "arc-agi-1" / "evaluation"), cfg);
  arc_evaluator ev(ds.evaluation_tasks());
  const double pass1 = run_oracle(ds, ev);
  CHECK(pass1 == 1.0);
  CHECK(ev.result().unmatched == 0);
  MESSAGE("oracle on ARC-AGI-1 evaluation (" << ds.evaluation_tasks().size() << " tasks, "
          << ds.split(arc_split::test).total_examples() << " augmented test rows): pass@1 " << pass1);
}
