// SPDX-License-Identifier: Apache-2.0
// Encoder-collapse monitor (docs/demo-encoders.md §2): does the decoder's input still depend on the
// demonstrations? Two measures on one batch of rows from distinct tasks:
//  - context_spread: the spread of the K prefix tokens across the rows' tasks;
//  - demo_dependence: how much the whole input embedding (prefix and token rows) changes when
//    each row reads another row's demos. With query attention the task can reach the decoder
//    through the query cells' lookup while the K tokens collapse; this measure sees both routes.
#pragma once

#include <etrm/data/token_batch.hpp>
#include <etrm/train/trainer.hpp>

#include <cmath>
#include <vector>

ETRM_BEGIN_NAMESPACE

// The per-feature standard deviation over rows, averaged over features, relative to the rows'
// RMS. Near 0: every row gets the same vector.   rows_data: [rows, width] on the host
template <class T>
double context_spread(const std::vector<T>& rows_data, index_t rows, index_t width) {
  if (rows < 2 || width <= 0) return 0.0;
  double spread = 0, energy = 0;
  for (index_t f = 0; f < width; ++f) {
    double mean = 0;
    for (index_t r = 0; r < rows; ++r) mean += double(rows_data[std::size_t(r * width + f)]);
    mean /= double(rows);
    double var = 0;
    for (index_t r = 0; r < rows; ++r) {
      const double v = double(rows_data[std::size_t(r * width + f)]);
      var += (v - mean) * (v - mean);
      energy += v * v;
    }
    spread += std::sqrt(var / double(rows - 1));
  }
  const double rms = std::sqrt(energy / double(rows * width));
  return rms > 0 ? spread / double(width) / rms : 0.0;
}

// RMS(a − b) / RMS(a) over the first n values; 0 when a is all zeros.
template <class T>
double relative_change(const std::vector<T>& a, const std::vector<T>& b, std::size_t n) {
  double diff = 0, energy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(b[i]);
    diff += d * d;
    energy += double(a[i]) * double(a[i]);
  }
  return energy > 0 ? std::sqrt(diff / energy) : 0.0;
}

struct collapse_metrics {
  double context_spread = 0;   // of the K prefix tokens across the rows
  double demo_dependence = 0;  // relative change of the input embedding [rows, S, D] under rotated demos
};

// Measures both on the first `rows` rows of b (rows ≥ 2, each from a different task; fewer: zeros)
// under `weights` (the device parameters, e.g. trainer::eval_parameters()). Resets the arena; like
// an evaluation, it replaces the uploaded batch, so training rows start afresh at the next step.
template <class Model>
collapse_metrics measure_collapse(trainer<Model>& tr, const token_batch& b, index_t rows,
                                  const typename Model::scalar_type* weights) {
  using T = typename Model::scalar_type;
  using D = typename Model::device_type;
  collapse_metrics out;
  if (rows < 2) return out;
  const auto& c = tr.model().config();
  const index_t B = b.batch, S = c.full_len(), Dm = c.hidden_size, width = c.prefix_len() * Dm;
  const auto embedding = [&](const token_batch& batch) {
    tr.arena().reset();
    T* x = tr.arena().template take<T>(B * S * Dm);
    tr.upload(batch);
    tr.model().input_embedding(tr.context(), weights, B, tr.inputs_buffer(), tr.context_buffer(), x, tr.arena());
    return to_host<D>(tr.context(), x, B * S * Dm);
  };
  const std::vector<T> own = embedding(b);
  token_batch rotated = b;
  rotate_contexts(rotated, rows);
  const std::vector<T> other = embedding(rotated);
  tr.arena().reset();
  std::vector<T> prefix(std::size_t(rows * width));
  for (index_t r = 0; r < rows; ++r)
    std::copy_n(own.begin() + std::ptrdiff_t(r * S * Dm), width, prefix.begin() + std::ptrdiff_t(r * width));
  out.context_spread = context_spread(prefix, rows, width);
  out.demo_dependence = relative_change(own, other, std::size_t(rows * S * Dm));
  return out;
}

ETRM_END_NAMESPACE
