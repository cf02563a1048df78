// SPDX-License-Identifier: Apache-2.0
// A full training step (ACT supervision step forward, backward, AdamATan2, EMA) of each paper
// preset, TRM's and HRM's (hrm_*: two nets, the continue target's second forward, no EMA), on
// the CPU backend: train_step/<preset>/<batch> with fp32 GEMMs and
// train_step_bf16/<preset>/<batch> with bf16 GEMMs (fp32 master weights), samples/s as
// items_per_second.
// ETRM_BENCH_THREADS and ETRM_BENCH_GEMM set the context (bench_context.hpp).
// tools/bench_compare.py runs the same steps in the PyTorch reference and prints the ratio.
#include "bench_context.hpp"

#include <benchmark/benchmark.h>
#include <etrm/etrm.hpp>

namespace {

using C = etrm::cpu_device;

etrm::token_batch random_batch(const etrm::trm_config& c, etrm::index_t B, std::uint64_t seed) {
  etrm::token_batch b;
  b.batch = B;
  for (etrm::index_t i = 0; i < B * c.seq_len; ++i) {
    b.inputs.push_back(std::int32_t(1 + etrm::uniform_index({seed, 1}, std::uint64_t(i), std::uint64_t(c.vocab_size - 1))));
    b.labels.push_back(std::int32_t(1 + etrm::uniform_index({seed, 2}, std::uint64_t(i), std::uint64_t(c.vocab_size - 1))));
  }
  b.context.assign(std::size_t(B), 0);
  return b;
}

template <class Mixer, class Recursion = etrm::dynamic_recursion>
void run(benchmark::State& state, const etrm::trm_config& c, etrm::index_t B, etrm::gemm_precision precision) {
  auto ctx = bench_context(precision);
  using model_t = etrm::trm_model<C, float, Mixer, Recursion>;
  model_t m(ctx, c);
  typename etrm::trainer<model_t>::options o;
  if (c.H_layers > 0) o.optimizer.ema_rate = 0;  // HRM trains without EMA
  etrm::trainer<model_t> tr(ctx, m, B, o);
  const etrm::token_batch b = random_batch(c, B, 1);
  tr.train_step(b);  // sizes the arena
  for (auto _ : state) benchmark::DoNotOptimize(tr.train_step(b).loss);
  state.SetItemsProcessed(int64_t(state.iterations()) * B);
  state.counters["threads"] = double(ctx.threads());
  state.SetLabel(std::string("gemm ") + etrm::to_string(ctx.provider()));
  state.counters["arena_MiB"] = double(tr.arena().high_water()) / (1 << 20);
}

void train_step(benchmark::State& state, const std::string& preset, etrm::index_t B, etrm::gemm_precision precision) {
  const etrm::trm_config c = etrm::preset(preset);
  if (c.H_layers > 0)
    run<etrm::attention_mixer<C>, etrm::dynamic_hierarchical_recursion>(state, c, B, precision);
  else if (c.mlp_t)
    run<etrm::token_mlp_mixer<C>>(state, c, B, precision);
  else
    run<etrm::attention_mixer<C>>(state, c, B, precision);
}

const int registered = [] {
  const std::pair<const char*, int> cases[] = {{"sudoku_mlp", 16}, {"sudoku_att", 16}, {"small_att", 8},
                                               {"maze", 1},        {"arc", 1},        {"hrm_sudoku", 16},
                                               {"hrm_maze", 1},    {"hrm_arc", 1}};
  for (const auto precision : {etrm::gemm_precision::fp32, etrm::gemm_precision::bf16})
    for (const auto& [preset, batch] : cases) {
      const std::string family = precision == etrm::gemm_precision::fp32 ? "train_step/" : "train_step_bf16/";
      benchmark::RegisterBenchmark((family + preset + "/" + std::to_string(batch)).c_str(),
                                   [p = std::string(preset), b = batch, precision](benchmark::State& s) {
                                     train_step(s, p, b, precision);
                                   })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(2.0);
    }
  return 0;
}();

}  // namespace
