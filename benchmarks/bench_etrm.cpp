// SPDX-License-Identifier: Apache-2.0
// One ETRM training step on generated few-shot episodes at the widths of
// examples/configs/fewshot_etrm.json (hidden 64, K = 8, 6×6 canvases, 3 demos), per encoder
// variant: train_step_etrm/fewshot/<batch>/<variant> with variant k_tokens (the K context
// tokens only), aligned (+ aligned cells), query_attention (+ the query cells reading the
// demo tokens), search_alignment (+ the transported cells), neighbour_cells (+ the 8 adjacent
// neighbour tables) and neighbour_rays (the 8 tables reading each cell's rays instead), all with
// one pair block, and relations_no_pair_blocks (the 8 adjacent neighbours' relations to the cell,
// no pair blocks: the few-shot default). Samples/s as items_per_second: what each encoder
// feature costs.
// ttt_fit_etrm/fewshot/{copies,own_rows}: one test-time training fit of the weights (16 Adam steps of 2
// supervision steps, `etrm eval --adapt weights`) on a held-out task with 3 demos, with augmented
// copies filling the batch of 32 (copies) or on its 3 leave-one-out rows alone (own_rows).
#include "bench_context.hpp"

#include <benchmark/benchmark.h>
#include <etrm/etrm.hpp>


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

struct encoder_features {
  bool aligned = true, query_attention = true, search_alignment = true, neighbour_cells = false, neighbour_rays = false,
       neighbour_relations = false;
  etrm::index_t pair_blocks = 1;
  bool pattern_cells = false;
};

etrm::encoder_config fewshot_encoder(const etrm::data::episode_shape& shape, encoder_features f) {
  etrm::encoder_config e{shape.side, shape.max_demos, f.pair_blocks, 1};
  e.aligned_cells = f.aligned;
  e.query_attention = f.query_attention;
  e.search_alignment = f.search_alignment;
  e.neighbour_cells = f.neighbour_cells;
  e.neighbour_rays = f.neighbour_rays;
  e.neighbour_relations = f.neighbour_relations;
  e.pattern_cells = f.pattern_cells;
  return e;
}

etrm::data::generator_config fewshot_generator() {
  etrm::data::generator_config g;
  g.min_side = 2;
  g.max_side = 5;
  return g;
}

void etrm_step(benchmark::State& state, etrm::index_t B, encoder_features f) {
  auto ctx = bench_context();
  const etrm::data::episode_shape shape{6, 3};
  model_t m(ctx, fewshot_config(shape), fewshot_encoder(shape, f));
  etrm::trainer<model_t> tr(ctx, m, B, {});
  const etrm::token_batch b =
      etrm::data::episode_source(etrm::data::rule_split::train, 1, shape, fewshot_generator()).batch(B, 0);
  tr.train_step(b);  // sizes the arena
  for (auto _ : state) benchmark::DoNotOptimize(tr.train_step(b).loss);
  state.SetItemsProcessed(int64_t(state.iterations()) * B);
  state.counters["parameters"] = double(m.layout().count());
  state.counters["arena_MiB"] = double(tr.arena().high_water()) / (1 << 20);
}

void ttt_fit(benchmark::State& state, bool augment) {
  auto ctx = bench_context();
  const etrm::data::episode_shape shape{6, 3};
  model_t m(ctx, fewshot_config(shape), fewshot_encoder(shape, {}));
  etrm::trainer<model_t> tr(ctx, m, 32, {});
  auto g = fewshot_generator();
  g.min_demos = g.max_demos = 3;
  const auto task = etrm::data::sample_task(etrm::data::rule_split::held_out, 1, 0, g);
  etrm::weight_adapter<model_t> ttt(tr, {.steps = 16, .supervision_steps = 2, .augment = augment});
  ttt.fit(task, tr.parameters().data());  // sizes the arena
  for (auto _ : state) benchmark::DoNotOptimize(ttt.fit(task, tr.parameters().data()));
  state.SetItemsProcessed(int64_t(state.iterations()));  // tasks
}

const int registered = [] {
  const std::pair<const char*, encoder_features> variants[] = {
      {"k_tokens", {false, false, false}},
      {"aligned", {true, false, false}},
      {"query_attention", {true, true, false}},
      {"search_alignment", {true, true, true}},
      {"neighbour_cells", {true, true, true, true}},
      {"neighbour_rays", {true, true, true, true, true}},
      {"relations_no_pair_blocks", {true, true, true, true, false, true, 0}},
      {"pattern_cells", {true, true, true, true, false, true, 0, true}}};
  for (const auto& [name, features] : variants)
    benchmark::RegisterBenchmark((std::string("train_step_etrm/fewshot/32/") + name).c_str(),
                                 [f = features](benchmark::State& s) { etrm_step(s, 32, f); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  for (const bool augment : {true, false})
    benchmark::RegisterBenchmark(augment ? "ttt_fit_etrm/fewshot/copies" : "ttt_fit_etrm/fewshot/own_rows",
                                 [augment](benchmark::State& s) { ttt_fit(s, augment); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  return 0;
}();

}  // namespace
