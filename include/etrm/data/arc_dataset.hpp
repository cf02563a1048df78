// SPDX-License-Identifier: Apache-2.0
// The TRM-style ARC dataset (trm-computation.md §5.5). Training split: every pair of the training-source
// tasks plus the demonstration pairs of the evaluation tasks; test split: the evaluation tasks'
// test pairs. Each task is a group of puzzles, the original and up to `num_aug` distinct
// augmentations, and each puzzle has its own identifier (0 is blank), shared by both splits.
// Augmented grids are produced when a batch asks for them: per task only the numbers of the kept
// random draws are stored. A leakage check finds evaluation tasks hidden in the training sources.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc_encoding.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/batching.hpp>
#include <etrm/data/grid.hpp>
#include <etrm/data/parallel_for.hpp>


#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// ---- leakage ------------------------------------------------------------------------------------

// Training-source tasks that are evaluation tasks, found by id and, independently, by content
// (the order-insensitive set of pairs, which catches copies whose pairs were reordered or moved
// between train and test).
struct leakage_report {
  std::vector<std::string> same_id;     // training ids that are evaluation ids
  std::vector<std::string> same_pairs;  // training ids whose pair set equals an evaluation task's

  bool leaked(std::string_view training_id) const {
    const auto has = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), training_id) != v.end(); };
    return has(same_id) || has(same_pairs);
  }
};

inline leakage_report find_leakage(const std::vector<task>& training, const std::vector<task>& evaluation) {
  std::unordered_set<std::string> eval_ids;
  std::unordered_set<std::uint64_t> eval_hashes;
  for (const auto& t : evaluation) {
    eval_ids.insert(t.id);
    eval_hashes.insert(pair_set_hash(t));
  }
  leakage_report r;
  for (const auto& t : training) {
    if (eval_ids.contains(t.id)) r.same_id.push_back(t.id);
    if (eval_hashes.contains(pair_set_hash(t))) r.same_pairs.push_back(t.id);
  }
  return r;
}

inline std::vector<task> exclude_leaked(std::vector<task> training, const leakage_report& r) {
  std::erase_if(training, [&](const task& t) { return r.leaked(t.id); });
  return training;
}

// ---- dataset ------------------------------------------------------------------------------------

struct arc_dataset_config {
  std::size_t num_aug = 1000;  // augmentations per task besides the original
  std::uint64_t seed = 42;
  std::size_t retries_factor = 5;  // at most retries_factor * num_aug draws per task
  bool translate = true;           // random canvas offsets, training split only
  bool exclude_leaked = true;      // drop training sources that are evaluation tasks
};

enum class arc_split { train, test };

// Which task and augmentation a puzzle identifier stands for.
struct arc_puzzle {
  const task* source = nullptr;
  augmentation aug;
};

class arc_dataset {
 public:
  arc_dataset(std::vector<task> training_sources, std::vector<task> evaluation, arc_dataset_config cfg = {})
      : cfg_(cfg), leakage_(find_leakage(training_sources, evaluation)) {
    tasks_ = cfg.exclude_leaked ? exclude_leaked(std::move(training_sources), leakage_) : std::move(training_sources);
    num_training_ = tasks_.size();
    for (auto& t : evaluation) tasks_.push_back(std::move(t));

    groups_.resize(tasks_.size());
    data::parallel_for(tasks_.size(), [&](std::size_t i) {
      groups_[i].key = {cfg_.seed, stream_id({task_key(tasks_[i].id)})};
      groups_[i].draws = distinct_augmentation_draws(tasks_[i], cfg_.num_aug, groups_[i].key, cfg_.retries_factor);
    });
    std::int32_t next_id = 1;
    for (auto& g : groups_) {
      g.first_identifier = next_id;
      next_id += std::int32_t(g.draws.size() + 1);
    }
    num_identifiers_ = next_id;
  }

  const arc_dataset_config& config() const { return cfg_; }
  const leakage_report& leakage() const { return leakage_; }
  std::span<const task> training_tasks() const { return {tasks_.data(), num_training_}; }
  std::span<const task> evaluation_tasks() const { return {tasks_.data() + num_training_, tasks_.size() - num_training_}; }

  // Including the blank identifier 0: the row count of a puzzle-embedding table.
  std::int32_t num_puzzle_identifiers() const { return num_identifiers_; }

  // Translation is left out: it only moves grids inside the canvas.
  std::optional<arc_puzzle> identify(std::int32_t identifier) const {
    if (identifier <= 0 || identifier >= num_identifiers_) return std::nullopt;
    const auto it = std::upper_bound(groups_.begin(), groups_.end(), identifier,
                                     [](std::int32_t id, const group& g) { return id < g.first_identifier; });
    const auto gi = std::size_t(std::distance(groups_.begin(), it)) - 1;
    return arc_puzzle{&tasks_[gi], augmentation_of(gi, std::size_t(identifier - groups_[gi].first_identifier))};
  }

  // One split as a `grouped_dataset` for the samplers; it refers to this dataset.
  class split_view {
   public:
    std::size_t seq_len() const { return arc_seq_len; }
    std::size_t num_groups() const { return end_ - begin_; }
    std::size_t num_puzzles(std::size_t g) const { return ds_->groups_[begin_ + g].draws.size() + 1; }
    std::size_t num_examples(std::size_t g, std::size_t) const { return count(begin_ + g); }
    std::int32_t puzzle_identifier(std::size_t g, std::size_t p) const {
      return ds_->groups_[begin_ + g].first_identifier + std::int32_t(p);
    }

    // Labels are the output tokens with PAD replaced by ignore_label: EOS cells are scored.
    void encode(std::size_t g, std::size_t p, std::size_t e, std::span<std::int32_t> inputs,
                std::span<std::int32_t> labels) const {
      const auto gi = begin_ + g;
      augmentation a = ds_->augmentation_of(gi, p);
      if (split_ == arc_split::train && ds_->cfg_.translate) a.translation = stream_id({ds_->cfg_.seed, task_key(ds_->tasks_[gi].id), p});
      const grid_pair pair = apply(a, example(gi, e));
      const canvas_offset at = translation_offset(a, e, count(gi), std::max(pair.input.rows, pair.output.rows),
                                                  std::max(pair.input.cols, pair.output.cols));
      encode_grid(pair.input, at, inputs);
      encode_grid(pair.output, at, labels);
      std::replace(labels.begin(), labels.end(), arc_pad_token, ignore_label);
    }

    std::size_t total_puzzles() const {
      std::size_t n = 0;
      for (std::size_t g = 0; g < num_groups(); ++g) n += num_puzzles(g);
      return n;
    }
    std::size_t total_examples() const {
      std::size_t n = 0;
      for (std::size_t g = 0; g < num_groups(); ++g) n += num_puzzles(g) * num_examples(g, 0);
      return n;
    }

   private:
    friend class arc_dataset;
    split_view(const arc_dataset* ds, arc_split s, std::size_t begin, std::size_t end)
        : ds_(ds), split_(s), begin_(begin), end_(end) {}

    // Training sources contribute all pairs (demonstrations, then tests), evaluation tasks their
    // demonstrations to the training split and their tests to the test split.
    std::size_t count(std::size_t gi) const {
      const task& t = ds_->tasks_[gi];
      if (split_ == arc_split::test) return t.test.size();
      return t.train.size() + (gi < ds_->num_training_ ? t.test.size() : 0);
    }
    const grid_pair& example(std::size_t gi, std::size_t e) const {
      const task& t = ds_->tasks_[gi];
      if (split_ == arc_split::test) return t.test[e];
      return e < t.train.size() ? t.train[e] : t.test[e - t.train.size()];
    }

    const arc_dataset* ds_;
    arc_split split_;
    std::size_t begin_, end_;
  };

  split_view split(arc_split s) const {
    return s == arc_split::train ? split_view(this, s, 0, tasks_.size()) : split_view(this, s, num_training_, tasks_.size());
  }

 private:
  struct group {
    philox_key key{};
    std::vector<std::uint32_t> draws;  // puzzle p >= 1 is augmentation_draw(key, draws[p - 1])
    std::int32_t first_identifier = 0;
  };

  // Keyed by task id, so a task keeps its augmentations when other tasks are added or excluded.
  static std::uint64_t task_key(std::string_view id) {
    std::uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
    for (unsigned char ch : id) h = (h ^ ch) * 0x100000001B3ull;
    return h;
  }

  augmentation augmentation_of(std::size_t gi, std::size_t p) const {
    return p == 0 ? augmentation{} : augmentation_draw(groups_[gi].key, groups_[gi].draws[p - 1]);
  }

  arc_dataset_config cfg_;
  leakage_report leakage_;
  std::vector<task> tasks_;  // training sources, then evaluation tasks
  std::size_t num_training_ = 0;
  std::vector<group> groups_;  // one per task, same order
  std::int32_t num_identifiers_ = 1;
};

static_assert(grouped_dataset<arc_dataset::split_view>);

}  // namespace data
ETRM_END_NAMESPACE
