// SPDX-License-Identifier: Apache-2.0
// Deep supervision with ACT (trm-computation.md §2.2–§4) around any TRM-shaped model: the carry persists
// across optimizer steps, halted rows take new data and reset their state, every row is
// supervised at every step, and one optimizer step follows each supervision step.
// Parameters, gradients, moments and the EMA shadow are flat device buffers; all per-step
// memory comes from the arena, so a steady-state step allocates nothing. The only host
// transfers are the batch upload and the [B]-sized metrics for logging.
//
// Data parallel (a communicator of N ranks, parallel/communicator.hpp), as the official code
// does it: `batch` is this rank's rows, the slice [rank·B, (rank+1)·B) of a global batch of N·B
// rows; parameters start as rank 0's; the loss is scaled by 1/(N·B) and the flat gradient
// buffer summed over ranks after backward; the puzzle table's sparse rows are gathered so every
// rank applies the same update; the ACT carry stays per rank (its exploration draws use the
// global row index); metrics are reduced. With one rank nothing of this runs.
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/model/trm.hpp>
#include <etrm/parallel/communicator.hpp>
#include <etrm/train/batch.hpp>
#include <etrm/train/numerical_guard.hpp>
#include <etrm/train/optimizer.hpp>
#include <etrm/train/schedule.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

ETRM_BEGIN_NAMESPACE

template <class T>
struct int_eq_fn {
  ETRM_HD T operator()(T a, T b) const { return T(a == b); }
};

// ACT continue target (trm-computation.md §3): sigmoid of the next step's q_halt at the last step,
// else of max(next q_halt, next q_continue).
template <class T>
struct continue_target_fn {
  std::int32_t max_steps;
  ETRM_HD T operator()(T q_halt, T q_continue, std::int32_t steps) const {
    const T x = steps + 1 >= max_steps ? q_halt : (q_halt > q_continue ? q_halt : q_continue);
    return T(1) / (T(1) + std::exp(-x));
  }
};
// BCE with logits against a soft target, and its gradient scaled by `scale`.
template <class T>
struct soft_bce_fn {
  ETRM_HD T operator()(T x, T t) const { return (x > T(0) ? x : T(0)) - x * t + std::log1p(std::exp(-std::abs(x))); }
};
template <class T>
struct soft_bce_grad_fn {
  T scale;
  ETRM_HD T operator()(T x, T t) const { return scale * (T(1) / (T(1) + std::exp(-x)) - t); }
};

// Scales g [n], whose L2 norm is `norm`, down so that its norm is at most max_norm.
template <class D, class T>
void clip_global_norm(context_t<D>& ctx, T* g, index_t n, double norm, double max_norm) {
  if (norm > max_norm) kernels<D>::map(ctx, n, ops::scale_fn<T>{T(max_norm / norm)}, g, g);
}
template <class D, class T>
void clip_global_norm(context_t<D>& ctx, workspace<D>& ws, T* g, index_t n, double max_norm) {
  clip_global_norm<D>(ctx, g, n, l2_norm(ctx, ws, g, n), max_norm);
}

template <class Model>
class trainer {
 public:
  using D = typename Model::device_type;
  using T = typename Model::scalar_type;

  struct options {
    optimizer_config optimizer;
    ops::loss_kind loss = ops::loss_kind::stablemax;
    std::uint64_t seed = 0;
    // Steps in a row whose gradients hold a NaN or Inf that are skipped (no parameter, moment,
    // EMA or puzzle-table update; every row restarts from fresh data) before training stops
    // with non_finite_error; 0 stops at the first.
    index_t max_skipped_steps = 0;
  };

  trainer(context_t<D>& ctx, Model& model, index_t batch, options opt, communicator_ref comm = {})
      : ctx_(ctx), model_(model), opt_(opt), comm_(comm), B_(batch), carry_(batch, model.config().full_len(), model.config().hidden_size),
        params_(model.layout().total()), grads_(model.layout().total()), m_(model.layout().total()),
        v_(model.layout().total()), ema_(opt.optimizer.ema_rate > 0 ? model.layout().total() : 0),
        group_runs_(model.layout().group_runs()) {
    set_parameters(model.layout().template initial_values<T>(opt.seed));
    zero(m_);
    zero(v_);
    const auto& c = model.config();
    const index_t L = c.seq_len, R = model.prefix().context_width();
    for (auto* b : {&inputs_, &labels_, &fresh_inputs_, &fresh_labels_}) *b = buffer<std::int32_t, D>(B_ * L);
    context_ = buffer<std::int32_t, D>(B_ * R);
    fresh_context_ = buffer<std::int32_t, D>(B_ * R);
    steps_ = make_buffer<std::int32_t, D>(ctx, std::vector<std::int32_t>(std::size_t(B_), 0));
    zeros_ = make_buffer<std::int32_t, D>(ctx, std::vector<std::int32_t>(std::size_t(B_), 0));
    halted_ = make_buffer<std::uint8_t, D>(ctx, std::vector<std::uint8_t>(std::size_t(B_), 1));  // all rows take data
    if (comm_.size() > 1) {
      comm_.broadcast(params_.data(), sizeof(T) * std::size_t(params_.size()), 0);
      reset_ema();
    }
  }

  index_t batch() const { return B_; }  // rows of this rank
  index_t global_batch() const { return B_ * comm_.size(); }
  index_t first_row() const { return B_ * comm_.rank(); }  // this rank's first row of the global batch
  communicator_ref& communicator() { return comm_; }
  context_t<D>& context() { return ctx_; }
  index_t step() const { return step_; }
  Model& model() { return model_; }
  buffer<T, D>& parameters() { return params_; }
  buffer<T, D>& gradients() { return grads_; }
  buffer<T, D>& ema() { return ema_; }
  buffer<T, D>& moment1() { return m_; }
  buffer<T, D>& moment2() { return v_; }
  // The weights evaluation and checkpoints use: the EMA shadow when enabled.
  const T* eval_parameters() const { return ema_.size() ? ema_.data() : params_.data(); }
  workspace<D>& arena() { return ws_; }
  const options& opts() const { return opt_; }

  void set_parameters(const std::vector<T>& host) {
    from_host<D>(ctx_, params_.data(), host);
    if (ema_.size()) from_host<D>(ctx_, ema_.data(), host);
  }
  void set_step(index_t s) { step_ = s; }
  // Restarts the EMA shadow from the current parameters (after loading weights).
  void reset_ema() {
    if (ema_.size()) device_traits<D>::copy(ctx_, ema_.data(), params_.data(), sizeof(T) * std::size_t(params_.size()));
  }

  // The ACT state that persists across steps, for checkpoints that resume exactly.
  struct act_state_refs {
    trm_carry<T, D>& carry;
    buffer<std::int32_t, D>& steps;
    buffer<std::uint8_t, D>& halted;
    buffer<std::int32_t, D>& inputs;
    buffer<std::int32_t, D>& labels;
    buffer<std::int32_t, D>& context;
  };
  act_state_refs act_state() { return {carry_, steps_, halted_, inputs_, labels_, context_}; }

  // One ACT step + one optimizer step. `fresh` supplies data for the rows that halted.
  step_metrics train_step(const token_batch& fresh) {
    using K = kernels<D>;
    const auto& c = model_.config();
    const index_t L = c.seq_len, S = c.full_len(), V = c.vocab_size, P = c.prefix_len(),
                  R = model_.prefix().context_width();
    check_batch(fresh, L, R);
    ws_.reset();
    from_host<D>(ctx_, fresh_inputs_.data(), fresh.inputs);
    from_host<D>(ctx_, fresh_labels_.data(), fresh.labels);
    from_host<D>(ctx_, fresh_context_.data(), fresh.context);
    // Halted rows: new data, initial state, zero steps.
    model_.reset(ctx_, carry_, halted_.data());
    K::select_rows(ctx_, B_, L, halted_.data(), fresh_inputs_.data(), inputs_.data());
    K::select_rows(ctx_, B_, L, halted_.data(), fresh_labels_.data(), labels_.data());
    K::select_rows(ctx_, B_, R, halted_.data(), fresh_context_.data(), context_.data());
    K::select_rows(ctx_, B_, 1, halted_.data(), zeros_.data(), steps_.data());

    zero(grads_);
    T* logits = ws_.template take<T>(B_ * S * V);
    T* dlogits = ws_.template take<T>(B_ * S * V);
    T* q = ws_.template take<T>(B_ * 2);
    T* dq = ws_.template take<T>(B_ * 2);
    typename Model::tape& tape = tape_;
    model_.forward(ctx_, params_.data(), carry_, inputs_.data(), context_.data(), logits, q, &tape, ws_);
    const T scale = T(1.0 / double(global_batch()));
    losses l = loss(logits, q, dlogits, dq, scale);
    if (!c.no_ACT_continue) continue_loss(l, q, dq, scale);
    const T* readout = readout_loss(params_.data(), tape, scale);
    model_.backward(ctx_, params_.data(), tape, inputs_.data(), context_.data(), dlogits, dq, grads_.data(), ws_);
    if (comm_.size() > 1) comm_.all_reduce_sum(grads_.data(), std::size_t(params_.size()));

    ++step_;
    const double lr = scheduled_lr(opt_.optimizer, opt_.optimizer.lr, step_);
    const double grad_norm = l2_norm(ctx_, ws_, grads_.data(), params_.size());
    if (!std::isfinite(grad_norm)) return skip_step(l, q, readout, lr, grad_norm);
    skipped_in_row_ = 0;
    optimizer_step(lr, grad_norm);
    sparse_update(tape.prefix);
    K::act_update(ctx_, B_, std::int32_t(c.halt_max_steps), true, !c.no_ACT_continue, c.halt_exploration_prob,
                  philox_key{opt_.seed, 0xAC7}, std::uint64_t(step_), q, steps_.data(), halted_.data(),
                  std::uint64_t(first_row()));
    step_metrics m = metrics(l, q, /*only_halted=*/true, readout);
    m.lr = lr;
    (void)P;
    return m;
  }

  // Evaluation (trm-computation.md §2.2): a fresh carry, halt_max_steps no-grad steps, no early halting.
  // Returns metrics over all rows with labels; `pred` (optional) gets the argmax [B, seq_len]
  // and `q_halt` (optional) the final halting logits [B].
  step_metrics evaluate(const token_batch& b, std::vector<std::int32_t>* pred = nullptr,
                        std::vector<T>* q_halt = nullptr, const T* weights = nullptr) {
    const auto& c = model_.config();
    upload_labelled(b, "evaluate");
    T* logits = ws_.template take<T>(B_ * c.full_len() * c.vocab_size);
    T* q = ws_.template take<T>(B_ * 2);
    run_steps(weights ? weights : eval_parameters(), c.halt_max_steps, logits, q);
    losses l = loss(logits, q, nullptr, nullptr, T(1));
    step_metrics m = metrics(l, q, /*only_halted=*/false);
    if (pred) *pred = to_host<D>(ctx_, l.pred, B_ * c.seq_len);
    if (q_halt) {
      const auto qh = to_host<D>(ctx_, q, B_ * 2);
      q_halt->resize(std::size_t(B_));
      for (index_t i = 0; i < B_; ++i) (*q_halt)[i] = qh[2 * i];
    }
    return m;
  }

  // Deep-supervision gradients of a labelled batch without an optimizer step: a fresh carry,
  // `steps` supervision steps, each forward (taped), loss (the prefix source's readout loss
  // included) and backward, so gradients() holds ∂/∂weights of the summed per-step losses (and
  // a prefix source's hooks see every step).
  // No ACT halting. Returns that summed loss (each step's loss as step_metrics::loss).
  double supervised_gradients(const token_batch& b, index_t steps, const T* weights = nullptr) {
    const auto& c = model_.config();
    upload_labelled(b, "supervised_gradients");
    zero(grads_);
    const T* w = weights ? weights : params_.data();
    const index_t SV = c.full_len() * c.vocab_size;
    T* logits = ws_.template take<T>(B_ * SV);
    T* dlogits = ws_.template take<T>(B_ * SV);
    T* q = ws_.template take<T>(B_ * 2);
    T* dq = ws_.template take<T>(B_ * 2);
    model_.reset(ctx_, carry_, halted_ones());
    double total = 0;
    for (index_t s = 0; s < steps; ++s) {
      const std::size_t mark = ws_.mark();
      model_.forward(ctx_, w, carry_, inputs_.data(), context_.data(), logits, q, &tape_, ws_);
      const losses l = loss(logits, q, dlogits, dq, T(1.0 / double(B_)));
      readout_loss(w, tape_, T(1.0 / double(B_)));
      model_.backward(ctx_, w, tape_, inputs_.data(), context_.data(), dlogits, dq, grads_.data(), ws_);
      total += metrics(l, q, /*only_halted=*/false).loss;
      ws_.rewind(mark);
    }
    // The training carry was overwritten: every training row starts afresh next step.
    device_traits<D>::copy(ctx_, halted_.data(), halted_ones(), std::size_t(B_));
    return total;
  }

  // Runs `steps` supervision steps from a fresh carry on the uploaded inputs without
  // gradients; `each(step, logits, q)` sees the device outputs after every step.
  template <class F = std::nullptr_t>
  void run_steps(const T* weights, index_t steps, T* logits, T* q, F&& each = nullptr) {
    model_.reset(ctx_, carry_, halted_ones());
    for (index_t s = 0; s < steps; ++s) {
      model_.forward(ctx_, weights, carry_, inputs_.data(), context_.data(), logits, q, nullptr, ws_);
      if constexpr (!std::is_same_v<std::decay_t<F>, std::nullptr_t>) each(s, logits, q);
    }
    // The training carry was overwritten: every training row starts afresh next step.
    device_traits<D>::copy(ctx_, halted_.data(), halted_ones(), std::size_t(B_));
  }

  // The device copies of the last uploaded inputs [B, L] and context [B, width].
  const std::int32_t* inputs_buffer() const { return inputs_.data(); }
  const std::int32_t* context_buffer() const { return context_.data(); }

  // Uploads inputs and context for run_steps without a label pass. They replace the training
  // rows' own, so every training row starts afresh at the next step.
  void upload(const token_batch& b) {
    check_batch(b, model_.config().seq_len, model_.prefix().context_width());
    from_host<D>(ctx_, inputs_.data(), b.inputs);
    from_host<D>(ctx_, context_.data(), b.context);
    device_traits<D>::copy(ctx_, halted_.data(), halted_ones(), std::size_t(B_));
  }

 private:
  // Checks a labelled batch, resets the arena and uploads inputs, labels and context.
  void upload_labelled(const token_batch& b, const char* who) {
    check_batch(b, model_.config().seq_len, model_.prefix().context_width());
    if (b.labels.empty()) throw std::invalid_argument(std::string("etrm trainer: ") + who + " needs labels");
    ws_.reset();
    from_host<D>(ctx_, inputs_.data(), b.inputs);
    from_host<D>(ctx_, labels_.data(), b.labels);
    from_host<D>(ctx_, context_.data(), b.context);
  }

  struct losses {
    T* seq_loss;
    std::int32_t* count;
    std::int32_t* correct;
    std::int32_t* exact;
    T* halt;
    std::int32_t* pred;
    T* cont = nullptr;  // ACT continue loss per row (no_ACT_continue = false only)
  };

  // The ACT continue loss (official no_ACT_continue = false): an extra no-grad forward from the
  // new carry gives the next step's q; q_continue is trained by BCE towards its sigmoid target
  // (½ weight, like the halting loss). dq's q_continue column gets the gradient.
  void continue_loss(losses& l, const T* q, T* dq, T grad_scale) {
    using K = kernels<D>;
    const auto& c = model_.config();
    const index_t S = c.full_len(), Dm = c.hidden_size, n = B_ * S * Dm;
    if (!next_carry_.batch) next_carry_ = trm_carry<T, D>(B_, S, Dm);
    device_traits<D>::copy(ctx_, next_carry_.zh.data(), carry_.zh.data(), sizeof(T) * std::size_t(n));
    device_traits<D>::copy(ctx_, next_carry_.zl.data(), carry_.zl.data(), sizeof(T) * std::size_t(n));
    T* next_logits = ws_.template take<T>(B_ * S * c.vocab_size);
    T* next_q = ws_.template take<T>(B_ * 2);
    model_.forward(ctx_, params_.data(), next_carry_, inputs_.data(), context_.data(), next_logits, next_q, nullptr, ws_);
    T *qh = ws_.template take<T>(B_), *qc = ws_.template take<T>(B_), *x = ws_.template take<T>(B_);
    T *target = ws_.template take<T>(B_), *g = ws_.template take<T>(B_);
    K::copy_2d(ctx_, B_, 1, next_q, 2, qh, 1, T(1));
    K::copy_2d(ctx_, B_, 1, next_q + 1, 2, qc, 1, T(1));
    K::map(ctx_, B_, continue_target_fn<T>{std::int32_t(c.halt_max_steps)}, target, qh, qc, steps_.data());
    K::copy_2d(ctx_, B_, 1, q + 1, 2, x, 1, T(1));
    l.cont = ws_.template take<T>(B_);
    K::map(ctx_, B_, soft_bce_fn<T>{}, l.cont, x, target);
    K::map(ctx_, B_, soft_bce_grad_fn<T>{T(0.5) * grad_scale}, g, x, target);
    K::copy_2d(ctx_, B_, 1, g, 1, dq + 1, 2, T(1));
  }

  // A prefix source's own loss on the taped forward (the ETRM encoder's readout; null when it
  // has none), its gradients into grads_ and the tape. Returns each row's loss ([B], device).
  const T* readout_loss(const T* weights, typename Model::tape& tape, T grad_scale) {
    if constexpr (readout_source<typename Model::prefix_type, D, T>)
      return model_.prefix().readout_loss(ctx_, weights, B_, tape.prefix, labels_.data(), opt_.loss, grad_scale,
                                          grads_.data(), ws_);
    return nullptr;
  }

  // The prefix source's update of its own state after backward (TRM: SignSGD on the puzzle
  // table's rows in the batch). On N ranks every rank applies it to the gathered ids and row
  // gradients of the global batch, in global row order, so the tables stay equal.
  void sparse_update(typename Model::prefix_type::saved& prefix) {
    if constexpr (sparse_table_source<typename Model::prefix_type, D, T>) {
      const T lr = T(scheduled_lr(opt_.optimizer, opt_.optimizer.puzzle_emb_lr, step_));
      const T wd = T(opt_.optimizer.puzzle_emb_weight_decay);
      index_t rows = B_;
      const std::int32_t* ids = context_.data();
      auto gathered = prefix;
      const index_t width = model_.prefix().context_width(), ndim = model_.prefix().ndim();
      if (comm_.size() > 1 && ndim > 0) {
        rows = global_batch();
        std::int32_t* all_ids = ws_.template take<std::int32_t>(rows * width);
        comm_.all_gather(context_.data(), sizeof(std::int32_t) * std::size_t(B_ * width), all_ids);
        gathered.local_grad = ws_.template take<T>(rows * ndim);
        comm_.all_gather(prefix.local_grad, sizeof(T) * std::size_t(B_ * ndim), gathered.local_grad);
        ids = all_ids;
      }
      model_.prefix().sparse_update(ctx_, rows, ids, gathered, lr, wd);
    }
  }

  // Stablemax/softmax CE over the token rows (prefix rows skipped) plus ½·BCE halting loss,
  // both scaled by grad_scale when gradients are requested.
  losses loss(const T* logits, const T* q, T* dlogits, T* dq, T grad_scale) {
    using K = kernels<D>;
    const auto& c = model_.config();
    const index_t L = c.seq_len, S = c.full_len(), V = c.vocab_size, P = c.prefix_len();
    losses l{ws_.template take<T>(B_), ws_.template take<std::int32_t>(B_), ws_.template take<std::int32_t>(B_),
             ws_.template take<std::int32_t>(B_), ws_.template take<T>(B_), ws_.template take<std::int32_t>(B_ * L)};
    if (dlogits) K::fill(ctx_, B_ * S * V, T(0), dlogits);
    K::cross_entropy(ctx_, B_, L, V, S * V, opt_.loss, logits + P * V, labels_.data(), grad_scale, l.seq_loss, l.count,
                     l.correct, dlogits ? dlogits + P * V : nullptr, l.pred);
    K::map(ctx_, B_, int_eq_fn<std::int32_t>{}, l.exact, l.correct, l.count);
    K::halt_loss(ctx_, B_, q, l.exact, T(0.5) * grad_scale, l.halt, dq);
    return l;
  }

  // Means over the batch's rows: in a training step (only_halted) over every rank's rows.
  // `readout` (nullable): the prefix source's loss per row [B].
  step_metrics metrics(const losses& l, const T* q, bool only_halted, const T* readout = nullptr) {
    const auto seq_loss = to_host<D>(ctx_, l.seq_loss, B_);
    const auto count = to_host<D>(ctx_, l.count, B_);
    const auto correct = to_host<D>(ctx_, l.correct, B_);
    const auto halt = to_host<D>(ctx_, l.halt, B_);
    const auto qh = to_host<D>(ctx_, q, 2 * B_);
    const auto halted = to_host<D>(ctx_, halted_.data(), B_);
    const auto steps = to_host<D>(ctx_, steps_.data(), B_);
    const auto cont = l.cont ? to_host<D>(ctx_, l.cont, B_) : std::vector<T>();
    step_metrics m;
    for (index_t b = 0; b < B_; ++b) {
      m.lm_loss += double(seq_loss[b]);
      m.q_halt_loss += double(halt[b]);
      if (l.cont) m.q_continue_loss += double(cont[b]);
      if ((only_halted && !halted[b]) || count[b] == 0) continue;
      const bool exact = correct[b] == count[b];
      ++m.count;
      m.accuracy += double(correct[b]) / double(count[b]);
      m.exact_accuracy += exact;
      m.q_halt_accuracy += (qh[2 * b] >= 0) == exact;
      m.steps += only_halted ? double(steps[b]) : double(model_.config().halt_max_steps);
    }
    if (readout)
      for (const T v : to_host<D>(ctx_, readout, B_)) m.readout_loss += double(v);
    double rows = double(B_);
    if (only_halted && comm_.size() > 1) {  // sums over all ranks, in device memory (NCCL reads no other)
      const std::vector<double> local{m.lm_loss,  m.q_halt_loss,    m.q_continue_loss, m.readout_loss, double(m.count),
                                      m.accuracy, m.exact_accuracy, m.q_halt_accuracy, m.steps};
      if (!metric_sums_.size()) metric_sums_ = buffer<double, D>(index_t(local.size()));
      from_host<D>(ctx_, metric_sums_.data(), local);
      comm_.all_reduce_sum(metric_sums_.data(), local.size());
      const std::vector<double> sums = to_host<D>(ctx_, metric_sums_.data(), metric_sums_.size());
      m.lm_loss = sums[0], m.q_halt_loss = sums[1], m.q_continue_loss = sums[2], m.readout_loss = sums[3];
      m.count = index_t(sums[4]), m.accuracy = sums[5], m.exact_accuracy = sums[6], m.q_halt_accuracy = sums[7];
      m.steps = sums[8];
      rows = double(global_batch());
    }
    m.lm_loss /= rows;
    m.q_halt_loss /= rows;
    m.q_continue_loss /= rows;
    m.readout_loss /= rows;
    m.loss = m.lm_loss + 0.5 * (m.q_halt_loss + m.q_continue_loss);
    if (m.count) {
      for (double* v : {&m.accuracy, &m.exact_accuracy, &m.q_halt_accuracy, &m.steps}) *v /= double(m.count);
    }
    return m;
  }

  // A step whose gradients (norm `grad_norm`) are not finite: stops training, or within
  // max_skipped_steps in a row updates nothing and restarts every row (the carry that produced
  // them may itself hold the NaN). The metrics are those of the forward pass, marked skipped.
  step_metrics skip_step(const losses& l, const T* q, const T* readout, double lr, double grad_norm) {
    if (++skipped_in_row_ > opt_.max_skipped_steps)
      throw non_finite_error(step_, std::string(non_finite_gradients) + " " + std::to_string(grad_norm));
    step_metrics m = metrics(l, q, /*only_halted=*/true, readout);
    m.lr = lr;
    m.skipped = true;
    device_traits<D>::copy(ctx_, halted_.data(), halted_ones(), std::size_t(B_));
    return m;
  }

  void optimizer_step(double lr, double grad_norm) {
    using K = kernels<D>;
    const auto& o = opt_.optimizer;
    const index_t n = params_.size();
    if (o.grad_clip > 0) clip_global_norm<D>(ctx_, grads_.data(), n, grad_norm, o.grad_clip);
    // [begin, end) of the flat buffers at `rate`
    const auto update = [&](index_t begin, index_t end, double rate) {
      optimizer_update<D>(ctx_, o, end - begin, params_.data() + begin, grads_.data() + begin, m_.data() + begin,
                          v_.data() + begin, rate, step_);
    };
    for (const param_run& run : group_runs_)
      update(run.begin, run.end, run.group == param_group::encoder ? lr * o.encoder_lr_scale : lr);
    require_finite_parameters(ctx_, ws_, params_.data(), n, step_);
    if (ema_.size()) K::ema(ctx_, n, params_.data(), ema_.data(), T(o.ema_rate));
  }

  void check_batch(const token_batch& b, index_t L, index_t R) const {
    if (b.batch != B_ || index_t(b.inputs.size()) != B_ * L || index_t(b.context.size()) != B_ * R ||
        (!b.labels.empty() && index_t(b.labels.size()) != B_ * L))
      throw std::invalid_argument("etrm trainer: batch of " + std::to_string(b.batch) + " rows does not match [" +
                                  std::to_string(B_) + ", " + std::to_string(L) + "] inputs and [" + std::to_string(B_) +
                                  ", " + std::to_string(R) + "] context");
  }

  template <class U>
  void zero(buffer<U, D>& b) {
    device_traits<D>::zero(ctx_, b.data(), sizeof(U) * std::size_t(b.size()));
  }
  const std::uint8_t* halted_ones() {
    if (!ones_.size()) ones_ = make_buffer<std::uint8_t, D>(ctx_, std::vector<std::uint8_t>(std::size_t(B_), 1));
    return ones_.data();
  }

  context_t<D>& ctx_;
  Model& model_;
  options opt_;
  communicator_ref comm_;
  index_t B_;
  index_t step_ = 0;
  index_t skipped_in_row_ = 0;
  trm_carry<T, D> carry_, next_carry_;
  buffer<T, D> params_, grads_, m_, v_, ema_;
  std::vector<param_run> group_runs_;  // the optimizer's learning-rate groups, one update each
  buffer<double, D> metric_sums_;  // data parallel: the step's metric sums
  buffer<std::int32_t, D> inputs_, labels_, context_, fresh_inputs_, fresh_labels_, fresh_context_, steps_, zeros_;
  buffer<std::uint8_t, D> halted_, ones_;
  workspace<D> ws_;
  typename Model::tape tape_;
};

ETRM_END_NAMESPACE
