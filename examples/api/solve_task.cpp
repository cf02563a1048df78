// SPDX-License-Identifier: Apache-2.0
// Load an ETRM checkpoint written by `etrm train --task fewshot --model etrm` and solve one
// ARC task: the task's demonstrations go to the encoder, the model predicts each test output.
//   example_solve_task runs/main/checkpoint.safetensors task.json
#include <etrm/data/arc.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/render.hpp>
#include <etrm/etrm.hpp>

#include <cstdio>
#include <numeric>

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
    const index_t B = index_t(t.test.size());
    trainer<model_t> tr(ctx, model, B, opt);
    load_model_checkpoint(argv[1], ctx, model, tr.parameters().data());

    // One episode per test input: the task's demonstrations (at most max_demos) + the query.
    const data::episode_shape shape{int(e.grid_side), int(e.max_demos)};
    std::vector<std::size_t> demos(std::min<std::size_t>(t.train.size(), std::size_t(e.max_demos)));
    std::iota(demos.begin(), demos.end(), std::size_t(0));
    token_batch b{B, std::vector<std::int32_t>(std::size_t(B * shape.seq_len())),
                  std::vector<std::int32_t>(std::size_t(B * shape.seq_len()), -100),
                  std::vector<std::int32_t>(std::size_t(B * shape.context_width()))};
    for (index_t q = 0; q < B; ++q)
      data::encode_episode(t, demos, std::size_t(q), shape,
                           std::span(b.inputs).subspan(std::size_t(q * shape.seq_len()), std::size_t(shape.seq_len())), {},
                           std::span(b.context).subspan(std::size_t(q * shape.context_width()), std::size_t(shape.context_width())));
    std::vector<std::int32_t> pred;
    tr.evaluate(b, &pred, nullptr, tr.parameters().data());
    for (index_t q = 0; q < B; ++q) {
      const data::grid g = data::crop_canvas(
          std::span(pred).subspan(std::size_t(q * shape.seq_len()), std::size_t(shape.seq_len())), {}, shape.side);
      const bool known = t.test[std::size_t(q)].output.rows > 0;
      std::printf("test %lld%s:\n%s", static_cast<long long>(q + 1),
                  known ? (g == t.test[std::size_t(q)].output ? " (correct)" : " (wrong)") : "", data::grid_text(g).c_str());
    }
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return 0;
}
