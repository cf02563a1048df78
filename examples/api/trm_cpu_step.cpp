// SPDX-License-Identifier: Apache-2.0
// Build a small TRM on the CPU and run one training step (deep supervision + ACT + AdamATan2).
//   build/release/examples/example_trm_cpu_step
#include <etrm/etrm.hpp>

#include <cstdio>

int main() {
  using namespace etrm;
  using D = cpu_device;
  using model_t = trm_model<D, float, attention_mixer<D>>;  // dynamic recursion, puzzle-id prefix

  trm_config c = preset("small_att");  // hidden 128, 4 heads, seq_len 100, vocab 12
  c.seq_len = 16;
  c.vocab_size = 6;
  c.H_cycles = 2;
  c.L_cycles = 2;
  c.num_puzzle_identifiers = 3;  // id 0 is the blank puzzle
  c.halt_max_steps = 4;

  context_t<D> ctx(2);  // two threads
  model_t model(ctx, c);
  trainer<model_t>::options opt;
  opt.optimizer.lr = 1e-3;
  opt.optimizer.warmup_steps = 10;
  const index_t B = 4;
  trainer<model_t> tr(ctx, model, B, opt);

  // A batch: inputs and labels [B, seq_len] (-100 = ignored), one puzzle id per row.
  token_batch b;
  b.batch = B;
  for (index_t i = 0; i < B * c.seq_len; ++i) {
    b.inputs.push_back(std::int32_t(1 + i % 5));
    b.labels.push_back(std::int32_t(1 + (i + 1) % 5));
  }
  b.context = {1, 2, 1, 2};

  const step_metrics m = tr.train_step(b);
  std::printf("%lld parameters; step %lld: loss %.4f, token accuracy %.3f, lr %.2e\n",
              static_cast<long long>(model.layout().count()), static_cast<long long>(tr.step()), m.loss, m.accuracy,
              m.lr);

  // Evaluation: a fresh carry, halt_max_steps supervision steps, argmax predictions.
  std::vector<std::int32_t> pred;
  const step_metrics e = tr.evaluate(b, &pred);
  std::printf("eval accuracy %.3f, first predicted token %d\n", e.accuracy, pred[0]);
  return m.loss > 0 ? 0 : 1;
}
