// SPDX-License-Identifier: Apache-2.0
// The CPU example with the device changed to cuda_device: one TRM training step on the GPU.
// Built only when CMake finds a CUDA compiler (ETRM_HAVE_CUDA).
#include <etrm/etrm_cuda.cuh>
#include <etrm/model/presets.hpp>

#include <cstdio>

int main() {
  using namespace etrm;
  using D = cuda_device;
  using model_t = trm_model<D, float, attention_mixer<D>>;

  trm_config c = preset("small_att");
  c.seq_len = 16;
  c.vocab_size = 6;
  c.H_cycles = 2;
  c.L_cycles = 2;
  c.num_puzzle_identifiers = 3;
  c.halt_max_steps = 4;

  context_t<D> ctx;  // device 0, one stream, fp32 GEMMs
  model_t model(ctx, c);
  trainer<model_t>::options opt;
  opt.optimizer.lr = 1e-3;
  opt.optimizer.warmup_steps = 10;
  const index_t B = 4;
  trainer<model_t> tr(ctx, model, B, opt);

  token_batch b;  // host vectors; the trainer uploads them
  b.batch = B;
  for (index_t i = 0; i < B * c.seq_len; ++i) {
    b.inputs.push_back(std::int32_t(1 + i % 5));
    b.labels.push_back(std::int32_t(1 + (i + 1) % 5));
  }
  b.context = {1, 2, 1, 2};

  const step_metrics m = tr.train_step(b);
  std::printf("cuda: %lld parameters; step %lld: loss %.4f, token accuracy %.3f\n",
              static_cast<long long>(model.layout().count()), static_cast<long long>(tr.step()), m.loss, m.accuracy);
  return m.loss > 0 ? 0 : 1;
}
