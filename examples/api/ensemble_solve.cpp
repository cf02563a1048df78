// SPDX-License-Identifier: Apache-2.0
// Several ETRM checkpoints answer a folder of ARC tasks together: each model (after test-time
// training on the task's demos, if asked) answers every test input under N augmentations, and
// all the answers vote in one evaluator, so a model that answers consistently outvotes one that
// does not. Prints pass@1 and pass@2 of every model alone and of the pooled vote, on the same
// tasks (those with known answers).
//   example_ensemble_solve [--votes N] [--adapt-steps N] TASK_FOLDER A.safetensors B.safetensors ...
#include <etrm/data/arc.hpp>
#include <etrm/data/query_batches.hpp>
#include <etrm/etrm.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace etrm;
using D = cpu_device;
using model_t = trm_model<D, float, attention_mixer<D>, dynamic_recursion, demo_encoder_policy<>::type>;

// One checkpoint, ready to answer: its model, a trainer (batch of 32 rows) and its solver.
struct member {
  std::string path;
  encoder_config enc;
  std::unique_ptr<model_t> model;
  std::unique_ptr<trainer<model_t>> tr;
  std::unique_ptr<task_solver<model_t>> solver;
  data::evaluator_options alone_options;
  std::vector<data::task_result> alone;

  member(context_t<D>& ctx, const std::string& file, const solve_options& o) : path(file) {
    // The model's configuration travels in the checkpoint, the encoder's in its run description.
    const auto f = io::safetensors_file::load(file);
    const trm_config c = read_checkpoint_config(f);
    enc = nlohmann::json::parse(f.metadata().at("train_state")).at("run").at("encoder").get<encoder_config>();
    model = std::make_unique<model_t>(ctx, c, enc);
    trainer<model_t>::options opt;
    opt.optimizer.ema_rate = 0;  // inference only: one copy of the weights
    tr = std::make_unique<trainer<model_t>>(ctx, *model, 32, opt);
    load_model_checkpoint(file, ctx, *model, tr->parameters().data());
    solver = std::make_unique<task_solver<model_t>>(*tr, o);
  }
};

double mean_score(const std::vector<data::task_result>& r, std::size_t k) {
  double s = 0;
  for (const auto& t : r) s += t.score(k);
  return r.empty() ? 0 : 100 * s / double(r.size());
}

}  // namespace

int main(int argc, char** argv) {
  solve_options o{.votes = 8, .adapt = {.steps = 0, .lr = 3e-3, .supervision_steps = 2}};
  std::vector<std::string> paths;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--votes" && i + 1 < argc)
        o.votes = std::stoi(argv[++i]);
      else if (a == "--adapt-steps" && i + 1 < argc)
        o.adapt.steps = std::stoi(argv[++i]);
      else
        paths.push_back(a);
    }
  } catch (const std::exception&) {  // a number that is none
    paths.clear();
  }
  if (paths.size() < 2) {
    std::fprintf(stderr, "usage: %s [--votes N] [--adapt-steps N] TASK_FOLDER CHECKPOINT...\n", argv[0]);
    return 2;
  }
  try {
    const auto tasks = data::load_arc_tasks(paths[0]);
    context_t<D> ctx(0);
    std::vector<std::unique_ptr<member>> members;
    for (std::size_t i = 1; i < paths.size(); ++i) members.push_back(std::make_unique<member>(ctx, paths[i], o));
    std::vector<data::task_result> pooled;
    for (const auto& t : tasks) {
      if (t.test.empty() || t.test[0].output.rows == 0) continue;  // scored tasks only
      data::arc_evaluator votes(std::span(&t, 1), {});
      for (auto& m : members) {
        const auto part = answerable_part(t, episode_shape_of(m->enc));
        if (!part) {
          m->alone.push_back({t.id, std::vector<data::test_pair_result>(t.test.size())});
          continue;
        }
        m->alone.push_back(m->solver->solve(*part, m->tr->parameters().data(), &votes).result);
      }
      pooled.push_back(votes.result().tasks.at(0));
      std::printf("%s: %s\n", t.id.c_str(), pooled.back().score(1) > 0 ? "solved by the pooled vote" : "not solved");
      std::fflush(stdout);
    }
    std::printf("%zu tasks with known answers, %d votes per model and test input, %lld steps of test-time training\n",
                pooled.size(), o.votes, static_cast<long long>(o.adapt.steps));
    for (const auto& m : members)
      std::printf("  %-40s pass@1 %6.2f%%  pass@2 %6.2f%%\n", m->path.c_str(), mean_score(m->alone, 1), mean_score(m->alone, 2));
    std::printf("  %-40s pass@1 %6.2f%%  pass@2 %6.2f%%\n", "pooled vote", mean_score(pooled, 1), mean_score(pooled, 2));
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return 0;
}
