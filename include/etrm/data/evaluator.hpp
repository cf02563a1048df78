// SPDX-License-Identifier: Apache-2.0
// The ARC evaluator (trm-computation.md §6.2): every prediction is cropped from its canvas, mapped back
// through the inverse of its augmentation and filed under the test pair whose input it answers
// (found by the de-augmented input's hash), so augmented duplicates vote together. Candidates
// rank by vote count, then by mean halting confidence; pass@k holds when the answer is among
// the top k. Writes one result file per task and an ARC Prize `submission.json`.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc.hpp>
#include <etrm/data/arc_dataset.hpp>
#include <etrm/data/arc_encoding.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/batching.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/grid.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

struct evaluator_options {
  std::vector<std::size_t> pass_ks = {1, 2, 5, 10, 100, 1000};
  std::size_t submission_k = 2;
  // TRM's `aggregated_voting`: votes persist across evaluation rounds until `clear()`.
  bool aggregate_across_rounds = true;
  std::size_t saved_candidates = 10;  // per test pair in the per-task result files
};

struct candidate {
  grid prediction;
  std::size_t count = 0;
  double mean_confidence = 0;  // mean sigmoid(q_halt) of its votes
};

struct test_pair_result {
  std::vector<candidate> ranked;  // distinct predictions, best first
  std::size_t correct_rank = 0;   // 1-based rank of the right answer; 0: not among the candidates
  bool pass(std::size_t k) const { return correct_rank != 0 && correct_rank <= k; }
};

struct task_result {
  std::string task_id;
  std::vector<test_pair_result> pairs;  // in the order of the task's test list
  double score(std::size_t k) const {
    std::size_t ok = 0;
    for (const auto& p : pairs) ok += p.pass(k);
    return double(ok) / double(pairs.size());
  }
};

struct evaluation_result {
  std::vector<std::size_t> pass_ks;
  std::vector<double> pass_per_task;  // TRM's ARC/pass@k: mean over tasks of the fraction of test pairs solved
  std::vector<double> pass_per_pair;  // fraction of all test pairs solved
  std::vector<task_result> tasks;
  std::size_t unmatched = 0;  // predictions whose de-augmented input is no test input of their task

  // Tasks with a candidate for at least one test pair (the others were not attempted).
  std::size_t answered_tasks() const {
    return std::size_t(std::count_if(tasks.begin(), tasks.end(), [](const task_result& t) {
      return std::any_of(t.pairs.begin(), t.pairs.end(), [](const test_pair_result& p) { return !p.ranked.empty(); });
    }));
  }

  nlohmann::json summary_json() const {
    nlohmann::json j = {{"tasks", tasks.size()}, {"answered_tasks", answered_tasks()}, {"unmatched_predictions", unmatched}};
    for (std::size_t i = 0; i < pass_ks.size(); ++i) {
      j["ARC/pass@" + std::to_string(pass_ks[i])] = pass_per_task[i];
      j["ARC/pair_pass@" + std::to_string(pass_ks[i])] = pass_per_pair[i];
    }
    return j;
  }

  // ARC Prize format: {task_id: [{"attempt_1": grid, ..., "attempt_k": grid} per test pair]}. Short
  // candidate lists repeat their best entry; a pair without any prediction gets [[0]].
  nlohmann::json submission_json(std::size_t k) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& t : tasks) {
      auto attempts = nlohmann::json::array();
      for (const auto& p : t.pairs) {
        nlohmann::json a = nlohmann::json::object();
        for (std::size_t i = 0; i < k; ++i) {
          const grid g = p.ranked.empty() ? grid(1, 1) : p.ranked[i < p.ranked.size() ? i : 0].prediction;
          a["attempt_" + std::to_string(i + 1)] = arc_json(g);
        }
        attempts.push_back(std::move(a));
      }
      j[t.task_id] = std::move(attempts);
    }
    return j;
  }
};

class arc_evaluator {
 public:
  // `tasks`: the evaluation tasks with their test outputs (the ground truth).
  explicit arc_evaluator(std::span<const task> tasks, evaluator_options opt = {})
      : opt_(std::move(opt)), tasks_(tasks.begin(), tasks.end()), votes_(tasks_.size()) {
    if (opt_.submission_k == 0) throw std::invalid_argument("arc_evaluator: submission_k must be positive");
    for (std::size_t i = 0; i < tasks_.size(); ++i) index_.emplace(tasks_[i].id, i);
  }

  const evaluator_options& options() const { return opt_; }

  // Call at the start of every evaluation round.
  void begin_round() {
    if (!opt_.aggregate_across_rounds) clear();
  }

  void clear() {
    for (auto& v : votes_) v.clear();
    grids_.clear();
    unmatched_ = 0;
  }

  // One prediction for a puzzle of task `task_id` under `aug`: both canvases are [900] tokens with
  // the grid at (0, 0), as in the test split; confidence is sigmoid(q_halt).
  void add(std::string_view task_id, const augmentation& aug, std::span<const std::int32_t> input_canvas,
           std::span<const std::int32_t> prediction_canvas, double confidence) {
    add(task_id, aug, crop_canvas(input_canvas), crop_canvas(prediction_canvas), confidence);
  }

  // The same with the grids already cropped from their canvases (of any side), still augmented.
  void add(std::string_view task_id, const augmentation& aug, const grid& augmented_input,
           const grid& augmented_prediction, double confidence) {
    const auto it = index_.find(std::string(task_id));
    if (it == index_.end()) throw std::invalid_argument("arc_evaluator: unknown task id " + std::string(task_id));
    const grid input = invert(aug, augmented_input);
    const task& t = tasks_[it->second];
    const std::uint64_t input_hash = grid_hash(input);
    if (std::none_of(t.test.begin(), t.test.end(), [&](const grid_pair& p) { return grid_hash(p.input) == input_hash; })) {
      ++unmatched_;
      return;
    }
    grid prediction = invert(aug, augmented_prediction);
    const std::uint64_t h = grid_hash(prediction);
    vote& v = votes_[it->second][input_hash][h];
    ++v.count;
    v.confidence_sum += confidence;
    grids_.try_emplace(h, std::move(prediction));
  }

  // A test-split batch and the model's answers: predictions [B, 900] (argmax tokens) and
  // q_halt_logits [B]. Padding rows (identifier 0) are skipped.
  void add_batch(const arc_dataset& ds, const batch& b, std::span<const std::int32_t> predictions,
                 std::span<const float> q_halt_logits) {
    if (b.seq_len != arc_seq_len || predictions.size() != b.size * b.seq_len || q_halt_logits.size() != b.size)
      throw std::invalid_argument("arc_evaluator::add_batch: predictions must be [B, 900] and q_halt_logits [B]");
    for (std::size_t i = 0; i < b.num_valid; ++i) {
      const auto puzzle = ds.identify(b.puzzle_identifiers[i]);
      if (!puzzle) continue;
      const double q = 1.0 / (1.0 + std::exp(-double(q_halt_logits[i])));
      add(puzzle->source->id, puzzle->aug, std::span(b.inputs).subspan(i * arc_seq_len, arc_seq_len),
          predictions.subspan(i * arc_seq_len, arc_seq_len), q);
    }
  }

  evaluation_result result() const {
    evaluation_result r;
    r.pass_ks = opt_.pass_ks;
    r.unmatched = unmatched_;
    r.pass_per_task.assign(opt_.pass_ks.size(), 0.0);
    r.pass_per_pair.assign(opt_.pass_ks.size(), 0.0);
    std::size_t num_pairs = 0;
    for (std::size_t ti = 0; ti < tasks_.size(); ++ti) {
      const task& t = tasks_[ti];
      task_result tr{t.id, {}};
      for (const auto& pair : t.test) {
        test_pair_result pr;
        std::vector<std::pair<std::uint64_t, vote>> ranked;
        if (const auto it = votes_[ti].find(grid_hash(pair.input)); it != votes_[ti].end())
          ranked.assign(it->second.begin(), it->second.end());
        // Ties in count go to the more confident answer; the hash only makes the order total.
        std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
          const double qa = a.second.mean(), qb = b.second.mean();
          if (a.second.count != b.second.count) return a.second.count > b.second.count;
          if (qa != qb) return qa > qb;
          return a.first < b.first;
        });
        const bool known = pair.output.rows > 0;
        const std::uint64_t answer = grid_hash(pair.output);
        for (std::size_t i = 0; i < ranked.size(); ++i) {
          const auto& [h, v] = ranked[i];
          if (known && pr.correct_rank == 0 && h == answer) pr.correct_rank = i + 1;
          pr.ranked.push_back({grids_.at(h), v.count, v.mean()});
        }
        tr.pairs.push_back(std::move(pr));
      }
      for (std::size_t k = 0; k < opt_.pass_ks.size(); ++k) {
        r.pass_per_task[k] += tr.score(opt_.pass_ks[k]);
        for (const auto& p : tr.pairs) r.pass_per_pair[k] += p.pass(opt_.pass_ks[k]);
      }
      num_pairs += tr.pairs.size();
      r.tasks.push_back(std::move(tr));
    }
    for (std::size_t k = 0; k < opt_.pass_ks.size(); ++k) {
      if (!tasks_.empty()) r.pass_per_task[k] /= double(tasks_.size());
      if (num_pairs > 0) r.pass_per_pair[k] /= double(num_pairs);
    }
    return r;
  }

  // dir/submission.json, dir/summary.json and dir/tasks/<task id>.json.
  void write(const evaluation_result& r, const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir / "tasks");
    const auto save = [](const std::filesystem::path& file, const nlohmann::json& j) {
      std::ofstream out(file, std::ios::binary);
      out << j.dump() << '\n';
      if (!out) throw data_error(file.string() + ": cannot write file");
    };
    save(dir / "submission.json", r.submission_json(opt_.submission_k));
    save(dir / "summary.json", r.summary_json());
    for (std::size_t i = 0; i < r.tasks.size(); ++i)
      save(dir / "tasks" / (r.tasks[i].task_id + ".json"), task_json(r, i));
  }

 private:
  nlohmann::json task_json(const evaluation_result& r, std::size_t task_index) const {
    const task_result& t = r.tasks[task_index];
    const task& truth = tasks_[task_index];
    nlohmann::json pairs = nlohmann::json::array();
    for (std::size_t i = 0; i < t.pairs.size(); ++i) {
      const auto& p = t.pairs[i];
      nlohmann::json cands = nlohmann::json::array();
      for (std::size_t c = 0; c < std::min(opt_.saved_candidates, p.ranked.size()); ++c)
        cands.push_back({{"grid", arc_json(p.ranked[c].prediction)},
                         {"count", p.ranked[c].count},
                         {"mean_confidence", p.ranked[c].mean_confidence}});
      nlohmann::json pj = {{"index", i}, {"distinct_predictions", p.ranked.size()}, {"candidates", std::move(cands)}};
      pj["correct_rank"] = p.correct_rank == 0 ? nlohmann::json(nullptr) : nlohmann::json(p.correct_rank);
      if (truth.test[i].output.rows > 0) pj["ground_truth"] = arc_json(truth.test[i].output);
      pairs.push_back(std::move(pj));
    }
    nlohmann::json j = {{"task_id", t.task_id}, {"test", std::move(pairs)}};
    for (auto k : r.pass_ks) j["pass@" + std::to_string(k)] = t.score(k);
    return j;
  }

  struct vote {
    std::size_t count = 0;
    double confidence_sum = 0;
    double mean() const { return confidence_sum / double(count); }
  };

  evaluator_options opt_;
  std::vector<task> tasks_;
  std::unordered_map<std::string, std::size_t> index_;
  // votes_[task][de-augmented input hash][prediction hash]
  std::vector<std::unordered_map<std::uint64_t, std::unordered_map<std::uint64_t, vote>>> votes_;
  std::unordered_map<std::uint64_t, grid> grids_;  // one copy of every distinct prediction
  std::size_t unmatched_ = 0;
};

}  // namespace data
ETRM_END_NAMESPACE
