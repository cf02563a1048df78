// SPDX-License-Identifier: Apache-2.0
// Test-time adaptation for ETRM: a gradient search over the K context tokens on the task's own
// demonstrations (LPN's latent search, docs/demo-encoders.md §3, with ETRM's token context). For each
// task an offset δ [K, D] added to its context tokens is fitted by Adam, model weights frozen,
// to the task's leave-one-out rows (each demo's output predicted from the other demos, every
// supervision step supervised); the query is then answered with δ added to the context that
// the full demo set gives. δ starts at zero, so zero steps is the plain model.
//
//   context_adapter<model_t> tta(trainer, {.steps = 8, .lr = 1e-2});
//   const auto delta = tta.fit(tasks, trainer.eval_parameters());   // [tasks, K·D]
//   tta.evaluate(query_batch, delta, slot_of_row, &pred);            // row r uses task slot[r]
#pragma once

#include <etrm/data/episode.hpp>
#include <etrm/train/task_rows.hpp>
#include <etrm/train/trainer.hpp>

#include <cmath>
#include <span>
#include <vector>

ETRM_BEGIN_NAMESPACE

struct adaptation_options {
  index_t steps = 8;              // Adam steps on the offsets
  double lr = 1e-2;               // Adam learning rate
  index_t supervision_steps = 0;  // supervision steps per leave-one-out pass; 0: halt_max_steps
};

// Every task's leave-one-out rows (tasks with fewer than two demos have none), packed into
// batches of B rows; slot[i][r] is the task of row r of batch i, −1 for padding rows.
struct leave_one_out_batches {
  std::vector<token_batch> batches;
  std::vector<std::vector<std::int32_t>> slot;
};

inline leave_one_out_batches make_leave_one_out_batches(std::span<const data::task> tasks,
                                                        const data::episode_shape& shape, index_t B) {
  leave_one_out_batches out;
  const std::size_t n = std::size_t(shape.seq_len()), w = std::size_t(shape.context_width());
  index_t row = B;  // rows used in the last batch
  for (std::size_t k = 0; k < tasks.size(); ++k) {
    const data::task& t = tasks[k];
    std::vector<std::size_t> demos(std::min<std::size_t>(t.train.size(), std::size_t(shape.max_demos)));
    for (std::size_t i = 0; i < demos.size(); ++i) demos[i] = i;
    if (demos.size() < 2) continue;
    for (std::size_t held = 0; held < demos.size(); ++held) {
      if (row == B) {  // a new batch of padding rows
        out.batches.push_back(padding_batch(B, index_t(n), index_t(w)));
        out.slot.emplace_back(std::size_t(B), -1);
        row = 0;
      }
      token_batch& b = out.batches.back();
      const std::size_t r = std::size_t(row);
      data::encode_leave_one_out(t, demos, held, shape, std::span(b.inputs).subspan(r * n, n),
                                 std::span(b.labels).subspan(r * n, n), std::span(b.context).subspan(r * w, w));
      out.slot.back()[r] = std::int32_t(k);
      ++row;
    }
  }
  return out;
}

namespace detail {
template <class D, class T>
void zero_buffer(context_t<D>& ctx, buffer<T, D>& b) {
  device_traits<D>::zero(ctx, b.data(), sizeof(T) * std::size_t(b.size()));
}
}  // namespace detail

template <class Model>
class context_adapter {
  using D = typename Model::device_type;
  using T = typename Model::scalar_type;
  static_assert(offset_source<typename Model::prefix_type, D, T>, "context adaptation needs a prefix source with a context offset");

 public:
  context_adapter(trainer<Model>& tr, adaptation_options o)
      : tr_(tr), o_(o), KD_(tr.model().config().prefix_len() * tr.model().config().hidden_size),
        offset_(tr.batch() * KD_), grad_(tr.batch() * KD_), ids_(tr.batch()) {
    if (o_.steps < 0 || !(o_.lr > 0)) throw std::invalid_argument("context_adapter: need steps >= 0 and lr > 0");
  }

  index_t width() const { return KD_; }

  // Fits one offset per task on its leave-one-out rows; returns them as [tasks, K·D] on the
  // host. `losses` (optional) gets the summed leave-one-out loss before each step and after the
  // last (steps + 1 values). The offsets, their gradients and Adam's moments live on the device
  // as [tasks + 1, K·D] tables; the extra row is the padding rows' offset and stays zero.
  std::vector<T> fit(std::span<const data::task> tasks, const T* weights, std::vector<double>* losses = nullptr) {
    using K = kernels<D>;
    auto& ctx = tr_.context();
    const auto rows = make_leave_one_out_batches(tasks, task_shape(tr_.model(), 0), tr_.batch());
    const index_t n = index_t(tasks.size() + 1) * KD_, pad = index_t(tasks.size());
    buffer<T, D> delta(n), g(n), m(n), v(n);
    for (auto* b : {&delta, &m, &v}) zero(*b);
    if (losses) losses->clear();
    for (index_t step = 0; step <= o_.steps; ++step) {
      if (step == o_.steps && !losses) break;  // the last pass only measures the loss
      zero(g);
      double total = 0;
      for (std::size_t i = 0; i < rows.batches.size(); ++i) {
        gather_offsets(delta.data(), rows.slot[i], pad);
        zero(grad_);
        const hook h(tr_.model().prefix(), offset_.data(), grad_.data());
        total += tr_.supervised_gradients(rows.batches[i], supervision_steps(), weights);
        K::scatter_add_rows(ctx, tr_.batch(), 1, KD_, ids_.data(), grad_.data(), KD_, T(1), g.data());
      }
      if (losses) losses->push_back(total);
      if (step == o_.steps) break;
      device_traits<D>::zero(ctx, g.data() + pad * KD_, sizeof(T) * std::size_t(KD_));
      optimizer_update<D>(ctx, adaptation_optimizer(), n, delta.data(), g.data(), m.data(), v.data(), o_.lr, step + 1);
    }
    return to_host<D>(ctx, delta.data(), pad * KD_);
  }

  // trainer::evaluate with row r's context tokens shifted by the offset of task slot[r]
  // (−1: none).   delta: [tasks, K·D] (from fit); slot: [B]
  step_metrics evaluate(const token_batch& b, const std::vector<T>& delta, std::span<const std::int32_t> slot,
                        std::vector<std::int32_t>* pred = nullptr, std::vector<T>* q_halt = nullptr,
                        const T* weights = nullptr) {
    if (delta.size() % std::size_t(KD_)) throw std::invalid_argument("context_adapter: offsets are not [tasks, K·D]");
    const index_t pad = index_t(delta.size()) / KD_;
    std::vector<T> table(delta);
    table.resize(delta.size() + std::size_t(KD_), T(0));
    const buffer<T, D> dev = make_buffer<T, D>(tr_.context(), table);
    gather_offsets(dev.data(), slot, pad);
    const hook h(tr_.model().prefix(), offset_.data(), nullptr);
    return tr_.evaluate(b, pred, q_halt, weights);
  }

 private:
  // Sets the prefix source's offset hook for one scope.
  struct hook {
    typename Model::prefix_type& prefix;
    hook(typename Model::prefix_type& p, const T* offset, T* grad) : prefix(p) { prefix.set_context_offset(offset, grad); }
    ~hook() { prefix.set_context_offset(nullptr, nullptr); }
    hook(const hook&) = delete;
    hook& operator=(const hook&) = delete;
  };

  index_t supervision_steps() const {
    return o_.supervision_steps > 0 ? o_.supervision_steps : tr_.model().config().halt_max_steps;
  }

  // offset_[r] = table[slot[r]] (row `pad` for −1), and ids_ = those rows for the scatter back.
  //   table: [pad + 1, K·D] on the device; slot: [B]
  void gather_offsets(const T* table, std::span<const std::int32_t> slot, index_t pad) {
    if (index_t(slot.size()) != tr_.batch()) throw std::invalid_argument("context_adapter: one slot per batch row");
    std::vector<std::int32_t> ids(slot.begin(), slot.end());
    for (std::int32_t& k : ids) {
      if (k >= pad) throw std::out_of_range("context_adapter: slot beyond the fitted offsets");
      if (k < 0) k = std::int32_t(pad);
    }
    from_host<D>(tr_.context(), ids_.data(), ids);
    kernels<D>::gather_rows(tr_.context(), tr_.batch(), 1, KD_, ids_.data(), table, T(1), offset_.data(), KD_);
  }

  void zero(buffer<T, D>& b) { detail::zero_buffer(tr_.context(), b); }

  trainer<Model>& tr_;
  adaptation_options o_;
  index_t KD_;
  buffer<T, D> offset_, grad_;
  buffer<std::int32_t, D> ids_;
};

ETRM_END_NAMESPACE
