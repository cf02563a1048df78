// SPDX-License-Identifier: Apache-2.0
// End to end: a tiny TRM and a tiny HRM overfit a handful of Sudoku-like puzzles (4×4 Latin
// squares with blanks) to 100% exact accuracy, and a tiny ETRM overfits a small set of generated
// few-shot tasks to ≥ 95% exact accuracy on their queries, each within a bounded number of steps.
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

using namespace etrm;
using C = cpu_device;

namespace {

context_t<C> ctx(2);

// n puzzles: a cyclic 4×4 Latin square under a random digit permutation, half the cells blank.
// Tokens: 1 blank, 2..5 digits; labels are the full solution.
token_batch latin_puzzles(int n, std::uint64_t seed) {
  token_batch b;
  b.batch = n;
  for (int p = 0; p < n; ++p) {
    int perm[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; --i) std::swap(perm[i], perm[uniform_index({seed, 1}, std::uint64_t(p * 8 + i), std::uint64_t(i + 1))]);
    const int shift = 1 + 2 * int(uniform_index({seed, 2}, std::uint64_t(p), 2));
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c) {
        const int v = perm[(r * shift + c) % 4];
        const bool blank = uniform01({seed, 3}, std::uint64_t(p * 16 + r * 4 + c)) < 0.5;
        b.inputs.push_back(blank ? 1 : 2 + v);
        b.labels.push_back(2 + v);
      }
    b.context.push_back(0);
  }
  return b;
}

template <class Trainer>
int steps_to_reach(Trainer& tr, const token_batch& b, double target, int max_steps) {
  for (int s = 1; s <= max_steps; ++s) {
    tr.train_step(b);
    if (s % 25 == 0 && tr.evaluate(b).exact_accuracy >= target) return s;
  }
  return -1;
}

// Trains Model on 8 Latin puzzles until every one is exact; the number of steps, -1 if never.
template <class Model>
int latin_steps(context_t<C>& run_ctx, trm_config c, double ema_rate) {
  c.hidden_size = 32;
  c.seq_len = 16;
  c.vocab_size = 6;
  c.puzzle_emb_ndim = 32;
  c.num_puzzle_identifiers = 1;
  c.halt_max_steps = 4;
  Model m(run_ctx, c);
  typename trainer<Model>::options o;
  o.optimizer.lr = 1e-3;
  o.optimizer.warmup_steps = 20;
  o.optimizer.puzzle_emb_lr = 1e-3;
  o.optimizer.ema_rate = ema_rate;
  trainer<Model> tr(run_ctx, m, 8, o);
  return steps_to_reach(tr, latin_puzzles(8, 1), 1.0, 1500);
}

// The same run with fp32 and with bf16 GEMMs (fp32 master weights).
void trm_overfits(gemm_precision precision) {
  context_t<C> run_ctx(2, precision);
  const int steps = latin_steps<trm_model<C, float, attention_mixer<C>>>(run_ctx, tiny::config(false, 2, 2), 0.99);
  MESSAGE("TRM (" << std::string(to_string(precision)) << " GEMMs) reached 100% exact accuracy after " << steps << " steps");
  CHECK(steps > 0);
}

}  // namespace

TEST_CASE("TRM overfits Sudoku-like puzzles to 100% exact accuracy") { trm_overfits(gemm_precision::fp32); }
TEST_CASE("TRM overfits Sudoku-like puzzles to 100% exact accuracy with bf16 GEMMs") {
  trm_overfits(gemm_precision::bf16);
}

// Two 2-block nets, N = T = 2, the continue target, no EMA (as HRM trains).
TEST_CASE("HRM overfits Sudoku-like puzzles to 100% exact accuracy") {
  trm_config c = tiny::hrm_config(2, 2);
  c.L_layers = 2;
  const int steps = latin_steps<hrm_model<C, float>>(ctx, c, 0.0);
  MESSAGE("HRM reached 100% exact accuracy after " << steps << " steps");
  CHECK(steps > 0);
}

TEST_CASE("ETRM overfits a small set of generated few-shot tasks") {
  const data::episode_shape shape{5, 3};
  data::generator_config g;
  g.min_side = 2;
  g.max_side = 4;
  const token_batch b = data::episode_source(data::rule_split::train, 5, shape, g).batch(8, 0);
  trm_config c = tiny::config(false, 2, 2);
  c.hidden_size = 32;
  c.seq_len = shape.seq_len();
  c.vocab_size = 12;
  c.puzzle_emb_ndim = 0;
  c.num_puzzle_identifiers = 1;
  c.halt_max_steps = 4;
  using model_t = trm_model<C, float, attention_mixer<C>, dynamic_recursion, demo_encoder_policy<>::type>;
  model_t m(ctx, c, encoder_config{shape.side, shape.max_demos, 1, 1});
  trainer<model_t>::options o;
  o.optimizer.lr = 1e-3;
  o.optimizer.warmup_steps = 20;
  o.optimizer.ema_rate = 0.99;
  o.optimizer.grad_clip = 1.0;
  trainer<model_t> tr(ctx, m, 8, o);
  const int steps = steps_to_reach(tr, b, 0.95, 2000);
  MESSAGE("ETRM reached >= 95% exact accuracy on 8 tasks after " << steps << " steps");
  CHECK(steps > 0);
}
