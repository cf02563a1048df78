// SPDX-License-Identifier: Apache-2.0
// One ETRM training step on generated few-shot episodes at the widths of
// examples/configs/fewshot_etrm.json (hidden 64, K = 8, 6×6 canvases, 3 demos), per encoder
// variant: train_step_etrm/fewshot/<batch>/<variant> with variant k_tokens (the K context
// tokens only), aligned (+ aligned cells) and query_attention (+ the query cells reading the
// demo tokens; the default). Samples/s as items_per_second: what each encoder feature costs.
#include <benchmark/benchmark.h>
#include <etrm/etrm.hpp>

#include <cstdlib>

namespace {

using C = etrm::cpu_device;
using model_t = etrm::trm_model<C, float, etrm::attention_mixer<C>, etrm::dynamic_recursion,
                                etrm::demo_encoder_policy<>::type>;

etrm::trm_config fewshot_config(const etrm::data::episode_shape& shape) {
  etrm::trm_config c;
  c.hidden_size = 64;
  c.num_heads = 4;
  c.expansion = 2;
  c.H_cycles = 2;
  c.L_cycles = 2;
  c.halt_max_steps = 4;
  c.puzzle_emb_len = 8;
  c.puzzle_emb_ndim = 0;
  c.num_puzzle_identifiers = 1;
  c.seq_len = shape.seq_len();
  c.vocab_size = 12;
  return c;
}

void etrm_step(benchmark::State& state, etrm::index_t B, bool aligned, bool query_attention) {
  const char* t = std::getenv("ETRM_BENCH_THREADS");
  etrm::context_t<C> ctx(t ? std::atoi(t) : 0);
  const etrm::data::episode_shape shape{6, 3};
  etrm::encoder_config e{shape.side, shape.max_demos, 1, 1};
  e.aligned_cells = aligned;
  e.query_attention = query_attention;
  model_t m(ctx, fewshot_config(shape), e);
  etrm::trainer<model_t> tr(ctx, m, B, {});
  etrm::data::generator_config g;
  g.min_side = 2;
  g.max_side = 5;
  const etrm::token_batch b = etrm::data::episode_source(etrm::data::rule_split::train, 1, shape, g).batch(B, 0);
  tr.train_step(b);  // sizes the arena
  for (auto _ : state) benchmark::DoNotOptimize(tr.train_step(b).loss);
  state.SetItemsProcessed(int64_t(state.iterations()) * B);
  state.counters["parameters"] = double(m.layout().count());
  state.counters["arena_MiB"] = double(tr.arena().high_water()) / (1 << 20);
}

const int registered = [] {
  const std::tuple<const char*, bool, bool> variants[] = {
      {"k_tokens", false, false}, {"aligned", true, false}, {"query_attention", true, true}};
  for (const auto& [name, aligned, query] : variants)
    benchmark::RegisterBenchmark((std::string("train_step_etrm/fewshot/32/") + name).c_str(),
                                 [aligned = aligned, query = query](benchmark::State& s) { etrm_step(s, 32, aligned, query); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  return 0;
}();

}  // namespace
