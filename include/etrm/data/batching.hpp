// SPDX-License-Identifier: Apache-2.0
// TRM's batch samplers (trm-computation.md §5.2) over any grouped dataset: a group is an original puzzle
// with its augmentations (the "puzzles"), each holding a few examples. Training visits groups
// in a seeded random order, takes one puzzle per group and all of its examples, and cuts batches
// of exactly B examples; evaluation walks every example in order and pads the last batch. Only
// the current batch is materialised, encoded in parallel with oneTBB.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/core/rng.hpp>
#include <etrm/data/parallel_for.hpp>


#include <algorithm>
#include <concepts>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

// Label of a token the loss skips (PAD cells); the loss head tests for it.
inline constexpr std::int32_t ignore_label = -100;

// encode(group, puzzle, example, inputs, labels) writes one example: inputs [seq_len] tokens and
// labels [seq_len] with ignore_label where nothing is scored. Every puzzle of a group may have
// its own example count; identifiers are >= 1 (0 is the blank id of padding rows).
template <class D>
concept grouped_dataset =
    requires(const D& d, std::size_t i, std::span<std::int32_t> row) {
      { d.seq_len() } -> std::convertible_to<std::size_t>;
      { d.num_groups() } -> std::convertible_to<std::size_t>;
      { d.num_puzzles(i) } -> std::convertible_to<std::size_t>;
      { d.num_examples(i, i) } -> std::convertible_to<std::size_t>;
      { d.puzzle_identifier(i, i) } -> std::convertible_to<std::int32_t>;
      d.encode(i, i, i, row, row);
    };

// Plain host arrays, row-major. Rows at or past num_valid are padding: PAD (0) inputs,
// ignore_label labels, identifier 0.
struct batch {
  std::size_t size = 0;
  std::size_t seq_len = 0;
  std::size_t num_valid = 0;
  std::vector<std::int32_t> inputs;              // [size, seq_len]
  std::vector<std::int32_t> labels;              // [size, seq_len]
  std::vector<std::int32_t> puzzle_identifiers;  // [size]
};

struct example_ref {
  std::size_t group = 0;
  std::size_t puzzle = 0;
  std::size_t example = 0;
};

namespace detail {
template <grouped_dataset D>
void fill_batch(const D& data, std::span<const example_ref> rows, std::size_t batch_size, batch& out) {
  const std::size_t L = data.seq_len();
  out.size = batch_size;
  out.seq_len = L;
  out.num_valid = rows.size();
  out.inputs.resize(batch_size * L);
  out.labels.resize(batch_size * L);
  out.puzzle_identifiers.resize(batch_size);
  data::parallel_for(batch_size, [&](std::size_t i) {
    const std::span<std::int32_t> in(out.inputs.data() + i * L, L), lab(out.labels.data() + i * L, L);
    if (i < rows.size()) {
      const example_ref& r = rows[i];
      data.encode(r.group, r.puzzle, r.example, in, lab);
      out.puzzle_identifiers[i] = data.puzzle_identifier(r.group, r.puzzle);
    } else {
      std::fill(in.begin(), in.end(), 0);
      std::fill(lab.begin(), lab.end(), ignore_label);
      out.puzzle_identifiers[i] = 0;
    }
  });
}
}  // namespace detail

// TRM `_iter_train`. An iteration walks `epochs_per_iter` concatenated random permutations of
// the groups; each visited group contributes one uniformly chosen puzzle and its examples in
// random order, the last puzzle of a batch truncated so the batch holds exactly batch_size
// examples; an incomplete final batch is dropped. Everything is a function of (seed, iteration).
template <grouped_dataset D>
class train_sampler {
 public:
  train_sampler(const D& data, std::size_t batch_size, std::uint64_t seed, std::size_t epochs_per_iter = 1)
      : data_(&data), batch_size_(batch_size), seed_(seed), epochs_per_iter_(epochs_per_iter) {
    if (batch_size == 0) throw std::invalid_argument("train_sampler: batch_size must be positive");
    begin_iteration(0);
  }
  // The sampler keeps a pointer: a temporary (say `ds.split(...)`) would dangle.
  train_sampler(const D&&, std::size_t, std::uint64_t, std::size_t = 1) = delete;

  void begin_iteration(std::uint64_t iteration) {
    iteration_ = iteration;
    key_ = {seed_, iteration};
    draws_ = 0;
    const std::size_t n = data_->num_groups();
    group_order_.resize(n * epochs_per_iter_);
    for (std::size_t e = 0; e < epochs_per_iter_; ++e) {
      const auto first = group_order_.begin() + std::ptrdiff_t(e * n);
      std::iota(first, first + std::ptrdiff_t(n), std::size_t(0));
      for (std::size_t i = n; i > 1; --i) std::swap(first[std::ptrdiff_t(i - 1)], first[std::ptrdiff_t(below(i))]);
    }
    cursor_ = 0;
  }

  std::uint64_t iteration() const { return iteration_; }

  // False, leaving `out` untouched, once the iteration cannot fill another batch.
  bool next(batch& out) {
    plan_.clear();
    while (cursor_ < group_order_.size() && plan_.size() < batch_size_) {
      const std::size_t g = group_order_[cursor_++];
      const std::size_t p = below(data_->num_puzzles(g));
      const std::size_t n = data_->num_examples(g, p);
      const std::size_t take = std::min(n, batch_size_ - plan_.size());
      order_.resize(n);
      std::iota(order_.begin(), order_.end(), std::size_t(0));
      for (std::size_t i = 0; i < take; ++i) {  // partial Fisher-Yates: `take` distinct examples
        std::swap(order_[i], order_[i + below(n - i)]);
        plan_.push_back({g, p, order_[i]});
      }
    }
    if (plan_.size() < batch_size_) return false;
    detail::fill_batch(*data_, plan_, batch_size_, out);
    return true;
  }

 private:
  std::uint64_t below(std::uint64_t n) { return uniform_index(key_, draws_++, n); }

  const D* data_;
  std::size_t batch_size_;
  std::uint64_t seed_;
  std::size_t epochs_per_iter_;
  std::uint64_t iteration_ = 0;
  philox_key key_{};
  std::uint64_t draws_ = 0;
  std::vector<std::size_t> group_order_;
  std::size_t cursor_ = 0;
  std::vector<example_ref> plan_;
  std::vector<std::size_t> order_;
};

// TRM `_iter_test`: every example of every puzzle of every group, in order, batch_size at a
// time; the last batch is padded (num_valid tells how many rows are real).
template <grouped_dataset D>
class sequential_batches {
 public:
  sequential_batches(const D& data, std::size_t batch_size) : data_(&data), batch_size_(batch_size) {
    if (batch_size == 0) throw std::invalid_argument("sequential_batches: batch_size must be positive");
    reset();
  }
  sequential_batches(const D&&, std::size_t) = delete;

  void reset() {
    at_ = {};
    skip_empty();
  }

  bool next(batch& out) {
    if (at_.group >= data_->num_groups()) return false;
    plan_.clear();
    while (plan_.size() < batch_size_ && at_.group < data_->num_groups()) {
      plan_.push_back(at_);
      ++at_.example;
      skip_empty();
    }
    detail::fill_batch(*data_, plan_, batch_size_, out);
    return true;
  }

 private:
  // Moves the cursor past finished puzzles and groups.
  void skip_empty() {
    while (at_.group < data_->num_groups()) {
      if (at_.puzzle < data_->num_puzzles(at_.group)) {
        if (at_.example < data_->num_examples(at_.group, at_.puzzle)) return;
        ++at_.puzzle;
      } else {
        ++at_.group;
        at_.puzzle = 0;
      }
      at_.example = 0;
    }
  }

  const D* data_;
  std::size_t batch_size_;
  example_ref at_;
  std::vector<example_ref> plan_;
};

}  // namespace data
ETRM_END_NAMESPACE
