// SPDX-License-Identifier: Apache-2.0
// One task answered end to end, the call an embedder makes: every test input is encoded with the
// task's demonstrations (an ETRM model; one with puzzle ids reads the query alone under the blank
// id, train/task_rows.hpp) under `votes` augmentations (the first the identity),
// optionally after test-time training of a copy of the weights on the demos (weight_adapter),
// answered, mapped back through the inverse augmentation and voted by data::arc_evaluator (vote
// count, then mean halting confidence). The trained weights are never changed.
//
//   task_solver<model_t> solver(trainer, {.votes = 8, .adapt = {.steps = 16}});
//   const auto s = solver.solve(task, trainer.eval_parameters());
//   s.result.pairs[q].ranked[0].prediction   // the best answer to test input q
#pragma once

#include <etrm/data/evaluator.hpp>
#include <etrm/data/query_batches.hpp>
#include <etrm/train/weight_adaptation.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE

struct solve_options {
  int votes = 1;                                // augmentations each test input is answered under
  std::uint64_t seed = 0;                       // of the votes' augmentations
  weight_adaptation_options adapt{.steps = 0};  // test-time training first (0 steps: none)
  bool adapt_losses = false;                    // record its leave-one-out losses (one more pass)
};

template <class T>
struct solved_task {
  data::task_result result;          // per test input: distinct answers, best first (correct_rank if known)
  std::vector<double> adapt_losses;  // leave-one-out loss before each adaptation step and after the
                                     // last (solve_options::adapt_losses; empty: no demo to hold out)
  step_metrics first_batch;          // of the batch with test input 0 unaugmented; lm_loss over its real rows
  std::vector<T> identity_q_halt;    // per test input: q_halt logit of its unaugmented answer
};

template <class Model>
class task_solver {
  using T = typename Model::scalar_type;

 public:
  task_solver(trainer<Model>& tr, solve_options o) : tr_(tr), o_(o) {
    if (o_.votes < 1) throw std::invalid_argument("task_solver: votes must be at least 1");
    if (o_.adapt.steps > 0) ttt_.emplace(tr_, o_.adapt);
  }

  // `also` (optional) gets every answer too, e.g. a split-wide evaluator whose pass@k should see
  // the runner-up. `source` names the task in errors (a file path; default its id).
  solved_task<T> solve(const data::task& t, const T* weights, data::arc_evaluator* also = nullptr,
                       const std::string& source = {}) {
    // a model with ids gets its demos checked against the canvas too: its fit reads them
    const data::episode_shape shape = task_shape(tr_.model(), int(t.train.size()));
    query_batches rows = make_query_batches(t, shape, o_.votes, o_.seed, tr_.batch(), source.empty() ? t.id : source);
    for (token_batch& b : rows.batches) to_model_rows<Model>(b);
    solved_task<T> s;
    const T* w = ttt_ ? ttt_->fit(t, weights, o_.adapt_losses ? &s.adapt_losses : nullptr) : weights;
    data::evaluator_options vo;
    vo.pass_ks = {1};
    data::arc_evaluator votes(std::span(&t, 1), vo);
    s.identity_q_halt.resize(t.test.size());
    std::vector<std::int32_t> pred;
    std::vector<T> qh;
    std::size_t row = 0;  // over all batches: test input row / A, augmentation row % A
    for (std::size_t i = 0; i < rows.batches.size(); ++i) {
      const token_batch& b = rows.batches[i];
      const step_metrics m = tr_.evaluate(b, &pred, &qh, w);
      if (i == 0) {
        s.first_batch = m;
        s.first_batch.lm_loss = m.lm_loss * double(b.batch) / double(rows.valid[0]);  // the batch mean counts padding
      }
      const std::size_t n = std::size_t(shape.seq_len());
      for (index_t k = 0; k < rows.valid[i]; ++k, ++row) {
        const std::size_t r = std::size_t(k);
        const auto in = data::crop_canvas(std::span(b.inputs).subspan(r * n, n), {}, shape.side);
        const auto out = data::crop_canvas(std::span(pred).subspan(r * n, n), {}, shape.side);
        const double confidence = 1.0 / (1.0 + std::exp(-double(qh[r])));
        for (auto* ev : {&votes, also})
          if (ev) ev->add(t.id, rows.augs[i][r], in, out, confidence);
        if (row % std::size_t(o_.votes) == 0) s.identity_q_halt[row / std::size_t(o_.votes)] = qh[r];
      }
    }
    s.result = votes.result().tasks.at(0);
    return s;
  }

 private:
  trainer<Model>& tr_;
  solve_options o_;
  std::optional<weight_adapter<Model>> ttt_;
};

ETRM_END_NAMESPACE
