// SPDX-License-Identifier: Apache-2.0
// The group-aware samplers on a toy dataset (exact batch sizes, one puzzle per group, distinct
// examples, determinism, padding) and the ARC dataset's splits, identifiers and encoding.
#include <etrm/data/arc.hpp>
#include <etrm/data/arc_dataset.hpp>
#include <etrm/data/batching.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>

using namespace etrm::data;

std::optional<std::filesystem::path> arc_data_dir();  // data_arc_test.cpp

namespace {

// Group g has g+1 puzzles; puzzle p of group g has 1 + (g+p) % 4 examples. Every token of a row
// spells out (group, puzzle, example) so the tests can read batches back.
struct toy_dataset {
  std::size_t groups = 10;
  std::size_t seq_len() const { return 4; }
  std::size_t num_groups() const { return groups; }
  std::size_t num_puzzles(std::size_t g) const { return g + 1; }
  std::size_t num_examples(std::size_t g, std::size_t p) const { return 1 + (g + p) % 4; }
  std::int32_t puzzle_identifier(std::size_t g, std::size_t p) const { return std::int32_t(1 + g * 100 + p); }
  void encode(std::size_t g, std::size_t p, std::size_t e, std::span<std::int32_t> in, std::span<std::int32_t> lab) const {
    std::fill(in.begin(), in.end(), std::int32_t(g * 10000 + p * 100 + e));
    std::fill(lab.begin(), lab.end(), std::int32_t(e));
  }
};
static_assert(grouped_dataset<toy_dataset>);

example_ref decode(const batch& b, std::size_t row) {
  const auto v = std::size_t(b.inputs[row * b.seq_len]);
  return {v / 10000, v / 100 % 100, v % 100};
}

std::vector<std::vector<std::int32_t>> all_batches(train_sampler<toy_dataset>& s) {
  std::vector<std::vector<std::int32_t>> out;
  batch b;
  while (s.next(b)) out.push_back(b.inputs);
  return out;
}

grid filled(int rows, int cols, std::uint8_t base) {
  grid g(rows, cols);
  for (std::size_t i = 0; i < g.cells.size(); ++i) g.cells[i] = std::uint8_t((base + i) % 10);
  return g;
}

}  // namespace

TEST_CASE("train sampler: exact batches, one puzzle per group, distinct examples, seeded") {
  const toy_dataset data;
  train_sampler sampler(data, 7, 1234);
  batch b;
  std::map<std::size_t, std::size_t> puzzle_of_group;
  std::size_t rows = 0, batches = 0;
  while (sampler.next(b)) {
    ++batches;
    CHECK(b.size == 7);
    CHECK(b.num_valid == 7);
    CHECK(b.inputs.size() == 7 * 4);
    CHECK(b.labels.size() == 7 * 4);
    std::set<std::tuple<std::size_t, std::size_t, std::size_t>> in_batch;
    for (std::size_t i = 0; i < b.size; ++i) {
      const example_ref r = decode(b, i);
      CHECK(b.puzzle_identifiers[i] == data.puzzle_identifier(r.group, r.puzzle));
      CHECK(r.example < data.num_examples(r.group, r.puzzle));
      CHECK(in_batch.insert({r.group, r.puzzle, r.example}).second);
      const auto [it, fresh] = puzzle_of_group.emplace(r.group, r.puzzle);
      CHECK(it->second == r.puzzle);  // one augmentation per group per epoch
      ++rows;
    }
  }
  CHECK(batches >= 2);
  CHECK(rows == batches * 7);
  CHECK(puzzle_of_group.size() >= 9);  // at most the groups of the dropped tail are missing

  train_sampler again(data, 7, 1234), other(data, 7, 99);
  const auto first = all_batches(again);
  train_sampler same_seed(data, 7, 1234);
  CHECK(first == all_batches(same_seed));
  CHECK(first != all_batches(other));
  again.begin_iteration(1);
  const auto second = all_batches(again);
  CHECK(second != first);
  again.begin_iteration(0);
  CHECK(all_batches(again) == first);

  train_sampler multi(data, 5, 1, 3);  // three epochs per iteration: every group thrice
  std::size_t multi_rows = 0;
  while (multi.next(b)) multi_rows += b.size;
  CHECK(multi_rows >= 3 * data.num_groups() - 5);
}

TEST_CASE("sequential batches: every example once, in order, last batch padded") {
  const toy_dataset data;
  std::size_t total = 0;
  for (std::size_t g = 0; g < data.num_groups(); ++g)
    for (std::size_t p = 0; p < data.num_puzzles(g); ++p) total += data.num_examples(g, p);
  sequential_batches seq(data, 16);
  batch b;
  std::vector<example_ref> seen;
  std::size_t batches = 0;
  while (seq.next(b)) {
    ++batches;
    CHECK(b.size == 16);
    for (std::size_t i = 0; i < b.num_valid; ++i) seen.push_back(decode(b, i));
    for (std::size_t i = b.num_valid; i < b.size; ++i) {
      CHECK(b.puzzle_identifiers[i] == 0);
      CHECK(b.inputs[i * 4] == 0);
      CHECK(b.labels[i * 4 + 3] == ignore_label);
    }
  }
  CHECK(batches == (total + 15) / 16);
  REQUIRE(seen.size() == total);
  std::size_t k = 0;
  for (std::size_t g = 0; g < data.num_groups(); ++g)
    for (std::size_t p = 0; p < data.num_puzzles(g); ++p)
      for (std::size_t e = 0; e < data.num_examples(g, p); ++e, ++k)
        CHECK((seen[k].group == g && seen[k].puzzle == p && seen[k].example == e));
  seq.reset();
  CHECK(seq.next(b));
  CHECK(decode(b, 0).group == 0);
}

TEST_CASE("ARC dataset: splits, shared identifiers, labels and placement") {
  const task a{"a", {{filled(3, 4, 1), filled(2, 2, 2)}, {filled(5, 1, 3), filled(1, 5, 4)}}, {{filled(2, 3, 5), filled(3, 2, 6)}}};
  const task b{"b", {{filled(6, 6, 7), filled(6, 6, 8)}}, {{filled(4, 4, 9), filled(4, 4, 1)}}};
  const task e{"e", {{filled(2, 2, 1), filled(2, 2, 3)}, {filled(3, 3, 2), filled(3, 3, 4)}, {filled(1, 1, 5), filled(1, 1, 6)}},
               {{filled(7, 2, 3), filled(2, 7, 3)}}};
  arc_dataset_config cfg;
  cfg.num_aug = 5;
  const arc_dataset ds({a, b}, {e}, cfg);
  const auto train = ds.split(arc_split::train), test = ds.split(arc_split::test);
  CHECK(train.num_groups() == 3);
  CHECK(test.num_groups() == 1);
  CHECK(train.num_puzzles(0) == 6);
  CHECK(train.num_examples(0, 0) == 3);  // a: 2 demonstrations + 1 test
  CHECK(train.num_examples(2, 0) == 3);  // e: its 3 demonstrations only
  CHECK(test.num_examples(0, 0) == 1);   // e: its test pair
  CHECK(ds.num_puzzle_identifiers() == 1 + 3 * 6);
  CHECK(train.puzzle_identifier(0, 0) == 1);
  CHECK(train.puzzle_identifier(2, 3) == test.puzzle_identifier(0, 3));  // demos and tests share an id
  CHECK(train.total_examples() == 6 * (3 + 2 + 3));
  CHECK(!ds.identify(0));
  CHECK(!ds.identify(ds.num_puzzle_identifiers()));
  CHECK(ds.leakage().same_id.empty());

  std::vector<std::int32_t> in(arc_seq_len), lab(arc_seq_len);
  for (std::size_t p = 0; p < test.num_puzzles(0); ++p) {
    const auto who = ds.identify(test.puzzle_identifier(0, p));
    REQUIRE(who);
    CHECK(who->source->id == "e");
    test.encode(0, p, 0, in, lab);
    CHECK(crop_canvas(in) == apply(who->aug, e.test[0].input));  // test pairs sit at (0, 0)
    const grid out = apply(who->aug, e.test[0].output);
    CHECK(std::count_if(lab.begin(), lab.end(), [](auto t) { return t != ignore_label; }) == 14 + 2 + 7);  // grid and EOS
    std::replace(lab.begin(), lab.end(), ignore_label, arc_pad_token);
    CHECK(lab == encode_grid(out));
  }
  // Training examples move around the canvas but keep input and output together.
  std::size_t moved = 0;
  for (std::size_t p = 0; p < train.num_puzzles(1); ++p) {
    train.encode(1, p, 0, in, lab);
    const auto first = std::size_t(std::find_if(in.begin(), in.end(), [](auto t) { return t >= 2; }) - in.begin());
    moved += first != 0;
    CHECK(lab[first] >= 2);
    CHECK(crop_canvas(in, {int(first / 30), int(first % 30)}) == apply(ds.identify(train.puzzle_identifier(1, p))->aug, b.train[0].input));
  }
  CHECK(moved > 0);

  // A training source equal to the evaluation task is dropped (and kept when asked).
  const task copy{"copy", e.test, e.train};
  CHECK(arc_dataset({a, copy}, {e}, cfg).split(arc_split::train).num_groups() == 2);
  cfg.exclude_leaked = false;
  const arc_dataset keep({a, copy}, {e}, cfg);
  CHECK(keep.split(arc_split::train).num_groups() == 3);
  CHECK(keep.leakage().same_pairs == std::vector<std::string>{"copy"});
}

TEST_CASE("ARC-AGI-1 dataset as TRM builds it, batched at 768") {
  const auto dir = arc_data_dir();
  if (!dir) return;
  auto training = load_arc_tasks(*dir / "arc-agi-1" / "training");
  const auto concept_tasks = load_arc_tasks(*dir / "concept-arc" / "corpus");
  training.insert(training.end(), concept_tasks.begin(), concept_tasks.end());
  const arc_dataset ds(training, load_arc_tasks(*dir / "arc-agi-1" / "evaluation"));
  const auto train = ds.split(arc_split::train), test = ds.split(arc_split::test);
  CHECK(ds.leakage().same_pairs == std::vector<std::string>{"40853293"});
  CHECK(train.num_groups() == 399 + 160 + 400);
  CHECK(test.num_groups() == 400);
  const double mean = double(train.total_examples()) / double(train.total_puzzles());
  CHECK(mean == doctest::Approx(4.154).epsilon(0.01));  // TRM's metadata says 4.154
  CHECK(ds.num_puzzle_identifiers() > 850000);
  train_sampler sampler(train, 768, 0);
  batch b;
  std::size_t batches = 0;
  for (; batches < 3 && sampler.next(b); ++batches) {
    CHECK(b.num_valid == 768);
    CHECK(std::all_of(b.puzzle_identifiers.begin(), b.puzzle_identifiers.end(), [&](auto id) { return id >= 1 && id < ds.num_puzzle_identifiers(); }));
    CHECK(std::none_of(b.labels.begin(), b.labels.end(), [](auto t) { return t == arc_pad_token; }));
  }
  CHECK(batches == 3);
  MESSAGE("ARC-AGI-1 + ConceptARC: " << ds.num_puzzle_identifiers() << " puzzle identifiers, train split "
          << train.num_groups() << " groups, " << train.total_puzzles() << " puzzles, " << train.total_examples()
          << " examples (mean " << mean << " per puzzle); test split " << test.total_examples() << " examples");
}
