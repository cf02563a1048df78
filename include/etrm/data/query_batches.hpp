// SPDX-License-Identifier: Apache-2.0
// A task's test inputs as ETRM rows, each under a list of augmentations whose answers vote
// (train/task_solver.hpp, the ARC evaluation of the etrm tool).
#pragma once

#include <etrm/data/arc_encoding.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/token_batch.hpp>

#include <algorithm>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE

// A task's test inputs as ETRM rows: test input q under augmentation a is row q·A + a of the
// concatenated batches (A = max(1, augmentations); the first augmentation is the identity), the
// demos are the task's first max_demos train pairs under the same augmentation. Labels are the
// known test outputs (ignored where unknown or too large for the canvas). Padding rows have no
// demos and ignored labels.
// What of a task a model with canvas `shape` can answer: the task with the demos that fit (the
// others dropped); nullopt when no demo fits or a test input does not (the task gets no answer).
inline std::optional<data::task> answerable_part(const data::task& t, const data::episode_shape& shape) {
  data::task fitting{t.id, t.train, t.test};
  std::erase_if(fitting.train, [&](const data::grid_pair& p) { return !shape.fits(p); });
  const bool inputs_fit =
      std::all_of(t.test.begin(), t.test.end(), [&](const data::grid_pair& p) { return shape.fits(p.input); });
  if (fitting.train.empty() || !inputs_fit) return std::nullopt;
  return fitting;
}

struct query_batches {
  std::vector<token_batch> batches;              // [B, side²] inputs and labels, [B, context_width] demos
  std::vector<index_t> valid;                    // per batch: rows [0, valid) are real
  std::vector<std::vector<data::augmentation>> augs;  // per batch: each real row's augmentation
  std::vector<data::task> tasks;                 // per real row: the augmented demos + its query as test[0]
};

// Throws data::data_error naming `source` when a demo used or a test input does not fit the
// canvas.   seed: of the augmentations (stream 0x501E, draw a for augmentation a)
inline query_batches make_query_batches(const data::task& t, const data::episode_shape& shape, int augmentations,
                                        std::uint64_t seed, index_t B, const std::string& source) {
  const auto check = [&](const data::grid& g, const std::string& where) {
    if (!shape.fits(g))
      throw data::data_error(source + ": " + where + " is " + std::to_string(g.rows) + "x" + std::to_string(g.cols) +
                             ", larger than the model's canvas side " + std::to_string(shape.side));
  };
  if (B < 1) throw std::invalid_argument("make_query_batches: the batch needs at least one row");
  for (std::size_t i = 0; i < t.train.size() && i < std::size_t(shape.max_demos); ++i) {
    check(t.train[i].input, "train[" + std::to_string(i) + "].input");
    check(t.train[i].output, "train[" + std::to_string(i) + "].output");
  }
  for (std::size_t i = 0; i < t.test.size(); ++i) check(t.test[i].input, "test[" + std::to_string(i) + "].input");
  const std::size_t n = std::size_t(shape.seq_len()), w = std::size_t(shape.context_width());
  std::vector<std::size_t> demos(std::min<std::size_t>(t.train.size(), std::size_t(shape.max_demos)));
  std::iota(demos.begin(), demos.end(), std::size_t(0));
  query_batches out;
  const int A = std::max(1, augmentations);
  for (std::size_t q = 0; q < t.test.size(); ++q)
    for (int a = 0; a < A; ++a) {
      if (out.batches.empty() || out.valid.back() == B) {
        out.batches.push_back(padding_batch(B, index_t(n), index_t(w)));
        out.valid.push_back(0);
        out.augs.emplace_back();
      }
      token_batch& b = out.batches.back();
      const std::size_t r = std::size_t(out.valid.back()++);
      const data::augmentation aug =
          a == 0 ? data::augmentation{} : data::augmentation_draw({seed, data::stream_id({0x501E})}, std::uint64_t(a));
      const data::task at = data::apply(aug, t);
      data::task row{at.id, at.train, {at.test[q]}};
      // An output that does not fit (an unknown answer of another size) is simply not scored.
      if (row.test[0].output.rows > 0 && !shape.fits(row.test[0].output)) row.test[0].output = {};
      const auto lab = std::span(b.labels).subspan(r * n, n);
      data::encode_episode(row, demos, 0, shape, std::span(b.inputs).subspan(r * n, n), {},
                           std::span(b.context).subspan(r * w, w));
      if (row.test[0].output.rows > 0) {
        data::encode_grid(row.test[0].output, {}, lab, shape.side);
        std::replace(lab.begin(), lab.end(), std::int32_t(data::arc_pad_token), std::int32_t(-100));
      }
      out.augs.back().push_back(aug);
      out.tasks.push_back(std::move(row));
    }
  return out;
}

ETRM_END_NAMESPACE
