// SPDX-License-Identifier: Apache-2.0
// Test-time training of the whole network on one task's demonstrations (docs/demo-encoders.md §4: every
// method above ~10% on unseen ARC tasks adapts to the demos at test time; fitting a context alone
// into a frozen trunk is weak). A copy of the weights is fitted by Adam to the task's
// leave-one-out rows (each demo's output predicted from the other demos, every supervision step
// supervised) under random augmentations of the whole task (dihedral + colour permutation), so
// one task fills a batch with distinct rows; the query is then answered with the fitted copy.
// The trained weights are never changed, and zero steps is the plain model. A model with
// puzzle ids (TRM) is fitted on the same rows without their demos (train/task_rows.hpp): each
// demo's input to its output under the blank id, the fair baseline for ETRM's fit.
//
//   weight_adapter<model_t> ttt(trainer, {.steps = 16});
//   const T* w = ttt.fit(task, trainer.eval_parameters());   // valid until the next fit
//   trainer.evaluate(query_batch, &pred, nullptr, w);
#pragma once

#include <etrm/data/augment.hpp>
#include <etrm/train/context_adaptation.hpp>
#include <etrm/train/task_rows.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <vector>

ETRM_BEGIN_NAMESPACE

struct weight_adaptation_options {
  index_t steps = 16;             // Adam steps on the weights
  double lr = 3e-3;               // Adam learning rate
  index_t supervision_steps = 0;  // supervision steps per pass; 0: halt_max_steps
  double grad_clip = 1.0;         // global gradient-norm clip (0: off)
  std::uint64_t seed = 0;         // of the augmentations
  bool augment = true;            // false: the task's own demo rows only, no augmented copies
  // Leave the weights as they are for a task whose leave-one-out rows (the fit's batch) they
  // already answer exactly: the fit is for tasks the model does not read, and a few steps on
  // a few rows can undo what it does read (docs/experiments/comparison-history.md, compare6).
  bool skip_solved = false;
};

// The task under `copies` augmentations (the first is the task itself; the others distinct
// dihedral + colour draws where the task admits them, keyed by the task's content and `seed`).
inline std::vector<data::task> augmented_copies(const data::task& t, std::size_t copies, std::uint64_t seed) {
  std::vector<data::task> out{t};
  if (copies <= 1) return out;
  const philox_key key{seed, data::pair_set_hash(t)};
  for (std::uint32_t draw : data::distinct_augmentation_draws(t, copies - 1, key))
    out.push_back(data::apply(data::augmentation_draw(key, draw), t));
  return out;
}

template <class Model>
class weight_adapter {
  using D = typename Model::device_type;
  using T = typename Model::scalar_type;

 public:
  weight_adapter(trainer<Model>& tr, weight_adaptation_options o) : tr_(tr), o_(o) {
    if (o_.steps < 0 || !(o_.lr > 0) || o_.grad_clip < 0)
      throw std::invalid_argument("weight_adapter: need steps >= 0, lr > 0 and grad_clip >= 0");
  }

  // Fits a copy of `weights` to the leave-one-out rows of `t`'s demos (one batch of exactly those
  // rows: as many augmented copies as fit the trainer's batch, or the task's own rows alone) and
  // returns it (device, valid until the next fit); t.test is never read, so a query's answer
  // cannot leak in. A task with fewer than two demos has no such rows and gets `weights`
  // unchanged, and so does one whose rows `weights` answer when skip_solved is set. `losses`
  // (optional) gets the mean leave-one-out loss per row, summed over the supervision steps,
  // before each step and after the last (steps + 1 values; none when nothing is fitted).
  const T* fit(const data::task& t, const T* weights, std::vector<double>* losses = nullptr) {
    if (losses) losses->clear();
    const data::episode_shape shape = task_shape(tr_.model(), int(t.train.size()));
    const auto loo = std::min<std::size_t>(t.train.size(), std::size_t(shape.max_demos));
    if (loo < 2) return weights;
    const std::size_t copies = o_.augment ? std::max<std::size_t>(1, std::size_t(tr_.batch()) / loo) : 1;
    const data::task demos{t.id, t.train, {}};
    const auto copied = augmented_copies(demos, copies, o_.seed);
    // The fit's batch is its rows alone: no padding rows to compute, and none to dilute the loss.
    trainer<Model>& fitter = fitter_for(index_t(copied.size() * loo));
    auto rows = make_leave_one_out_batches(copied, shape, fitter.batch());
    token_batch& b = rows.batches.front();
    to_model_rows<Model>(b);
    if (o_.skip_solved && fitter.evaluate(b, nullptr, nullptr, weights).exact_accuracy == 1.0) return weights;
    auto& ctx = fitter.context();
    const index_t n = fitter.parameters().size();
    T* w = fitter.parameters().data();
    device_traits<D>::copy(ctx, w, weights, sizeof(T) * std::size_t(n));
    detail::zero_buffer(ctx, fitter.moment1());
    detail::zero_buffer(ctx, fitter.moment2());
    const index_t sup = o_.supervision_steps > 0 ? o_.supervision_steps : tr_.model().config().halt_max_steps;
    for (index_t step = 0; step <= o_.steps; ++step) {
      if (step == o_.steps && !losses) break;  // the last pass only measures the loss
      const double loss = fitter.supervised_gradients(b, sup, w);
      if (losses) losses->push_back(loss);
      if (step == o_.steps) break;
      T* g = fitter.gradients().data();
      if (o_.grad_clip > 0) clip_global_norm(ctx, fitter.arena(), g, n, o_.grad_clip);
      optimizer_update<D>(ctx, adaptation_optimizer(), n, w, g, fitter.moment1().data(), fitter.moment2().data(), o_.lr,
                          step + 1);
    }
    return w;
  }

 private:
  // A trainer of the same model and loss whose batch is `rows`, made on first use; its
  // parameters and moments are the fitted copy and its Adam state. A task's row count is one of
  // a few (up to max_demos leave-one-out rows, times the copies), so there are few of them.
  trainer<Model>& fitter_for(index_t rows) {
    auto& f = fitters_[rows];
    if (!f) {
      auto opt = tr_.opts();
      opt.optimizer.ema_rate = 0;  // the fit keeps no EMA shadow
      f = std::make_unique<trainer<Model>>(tr_.context(), tr_.model(), rows, opt);
    }
    return *f;
  }

  trainer<Model>& tr_;
  weight_adaptation_options o_;
  std::map<index_t, std::unique_ptr<trainer<Model>>> fitters_;
};

ETRM_END_NAMESPACE
