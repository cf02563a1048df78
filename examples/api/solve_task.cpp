// SPDX-License-Identifier: Apache-2.0
// Load an ETRM checkpoint written by `etrm train --task fewshot --model etrm` and solve one
// ARC task: the task's demonstrations go to the encoder, the model answers each test input
// under eight augmentations and the answers vote (etrm::task_solver).
//   example_solve_task runs/main/checkpoint.safetensors task.json
#include <etrm/data/arc.hpp>
#include <etrm/data/render.hpp>
#include <etrm/etrm.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  using namespace etrm;
  using D = cpu_device;
  using model_t = trm_model<D, float, attention_mixer<D>, dynamic_recursion, demo_encoder_policy<>::type>;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CHECKPOINT.safetensors TASK.json\n", argv[0]);
    return 2;
  }
  try {
    // The configuration travels in the checkpoint: the model under `config`, the encoder in the
    // run description that `etrm train` stores under `train_state`.
    const auto file = io::safetensors_file::load(argv[1]);
    const trm_config c = read_checkpoint_config(file);
    const auto run = nlohmann::json::parse(file.metadata().at("train_state")).at("run");
    const encoder_config e = run.at("encoder").get<encoder_config>();

    context_t<D> ctx(0);
    model_t model(ctx, c, e);
    trainer<model_t>::options opt;
    opt.optimizer.ema_rate = 0;  // inference only: one copy of the weights
    const data::task t = data::load_arc_task(argv[2]);
    trainer<model_t> tr(ctx, model, /*batch rows=*/8, opt);
    load_model_checkpoint(argv[1], ctx, model, tr.parameters().data());

    // Each test input under 8 augmentations of the whole task (demos + query), answers mapped
    // back and voted. For test-time training first: .adapt = {.steps = 16}.
    task_solver<model_t> solver(tr, {.votes = 8});
    const auto solved = solver.solve(t, tr.parameters().data(), nullptr, argv[2]);
    for (std::size_t q = 0; q < t.test.size(); ++q) {
      const auto& ranked = solved.result.pairs[q].ranked;
      const bool known = t.test[q].output.rows > 0;
      std::printf("test %zu (%zu votes)%s:\n%s", q + 1, ranked.empty() ? std::size_t(0) : ranked[0].count,
                  known ? (solved.result.pairs[q].pass(1) ? " (correct)" : " (wrong)") : "",
                  ranked.empty() ? "(no answer)\n" : data::grid_text(ranked[0].prediction).c_str());
    }
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return 0;
}
