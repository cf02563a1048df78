// SPDX-License-Identifier: Apache-2.0
// `etrm`: train, resume, evaluate and run Tiny Recursive Models (TRM), ETRM, a TRM that reads a
// task's demonstration pairs instead of a per-task embedding, and HRM as a baseline, on the CPU.
//
//   etrm train --task fewshot --model etrm --minutes 8 --out runs/main
//   etrm resume --out runs/main --steps 20000
//   etrm eval --checkpoint runs/main/checkpoint.safetensors --svg runs/main/predictions.svg
//   etrm solve --checkpoint runs/main/checkpoint.safetensors --task task.json --svg task.svg
//   etrm generate --kind fewshot --count 20 --split held_out --out tasks/
//   etrm infer --checkpoint model.safetensors --input batch.safetensors --output out.safetensors
//   mpirun -np 2 etrm train --threads 1 ...   (data parallel: every rank trains a slice of the batch)
#include "data_sources.hpp"
#include "session.hpp"
#include "spec.hpp"

#include <etrm/data/arc.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/generator.hpp>
#include <etrm/data/maze.hpp>
#include <etrm/data/sudoku.hpp>
#include <etrm/io/atomic_file.hpp>
#include <etrm/io/error.hpp>
#include <etrm/io/safetensors.hpp>
#include <etrm/model/config.hpp>
#include <etrm/model/presets.hpp>
#ifdef ETRM_WITH_MPI
#include <etrm/parallel/mpi_communicator.hpp>
#endif

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#ifndef ETRM_CONFIG_DIR
#define ETRM_CONFIG_DIR ""
#endif

using namespace etrm_cli;
namespace fs = std::filesystem;

namespace {

// Options whose values are applied to the run only when given on the command line.
class overrides {
 public:
  template <class V>
  CLI::Option* add(CLI::App* app, const std::string& name, const std::string& help, std::function<void(run_spec&, const V&)> f) {
    auto value = std::make_shared<V>();
    CLI::Option* opt = app->add_option(name, *value, help);
    appliers_.push_back([value, opt, f](run_spec& r) {
      if (opt->count()) f(r, *value);
    });
    return opt;
  }
  CLI::Option* flag(CLI::App* app, const std::string& name, const std::string& help, std::function<void(run_spec&)> f) {
    CLI::Option* opt = app->add_flag(name, help);
    appliers_.push_back([opt, f](run_spec& r) {
      if (opt->count()) f(r);
    });
    return opt;
  }
  void apply(run_spec& r) const {
    for (const auto& a : appliers_) a(r);
  }

 private:
  std::vector<std::function<void(run_spec&)>> appliers_;
};

// Where and how the model computes: thread count and GEMM precision.
void add_compute_options(CLI::App* app, session& s) {
  app->add_option("--threads", s.threads, "CPU threads (default: all)");
  app->add_option("--precision", s.precision,
                  "GEMM arithmetic: fp32 (default) or bf16 (bf16 operands, fp32 accumulation and master weights)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, etrm::gemm_precision>{
          {"fp32", etrm::gemm_precision::fp32}, {"bf16", etrm::gemm_precision::bf16}}));
}

// Test-time adaptation, reported as extra "<split>/tta" (context, ETRM) or "<split>/ttt" (weights) rows.
void add_adaptation_options(CLI::App* app, session& s) {
  app->add_option("--adapt-steps", s.adapt_steps,
                  "Also evaluate each split with N Adam steps of test-time adaptation on each task's "
                  "leave-one-out demos (0: off)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--adapt", s.adapt,
                  "What test-time adaptation fits: context (ETRM: an offset of the context tokens, rows <split>/tta) "
                  "or weights (a copy of the whole network per task, on augmented demos, rows <split>/ttt; a TRM "
                  "checkpoint is fitted on the demos under the blank id)")
      ->check(CLI::IsMember({"context", "weights"}));
  app->add_option("--adapt-lr", s.adapt_lr, "Learning rate of test-time adaptation (default: context 1e-2, weights 3e-3)")
      ->check(CLI::PositiveNumber);
  app->add_option("--adapt-supervision-steps", s.adapt_supervision,
                  "Supervision steps per test-time adaptation pass (default: halt_max_steps)")
      ->check(CLI::PositiveNumber);
  app->add_option_function<bool>(
      "--adapt-augment", [&s](const bool& v) { s.adapt_augment = v; },
      "With --adapt weights: fit on dihedral + colour copies of the demos too (default: true when the fitted "
      "copy votes over augmentations, which needs the copies; false for one answer: the demos as they are, "
      "as good and about 8x faster, and a TRM's rows cannot tell the copies apart)");
  app->add_option("--adapt-votes", s.adapt_votes,
                  "With --adapt weights: the fitted copy answers the query under N augmentations (the first "
                  "unchanged) and the answers vote (default 1: no vote); on ARC these are the votes of pass@k, "
                  "in place of --augmentations. Votes need the fit's augmented copies: a copy fitted with "
                  "--adapt-augment false answers augmented queries badly")
      ->check(CLI::PositiveNumber);
  app->add_option("--adapt-skip-solved", s.adapt_skip_solved,
                  "With --adapt weights: leave the weights as they are for a task whose leave-one-out demo rows "
                  "they already answer exactly (default true; false fits every task)");
}

// "a,b,,c" -> {a, b, c}
std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  for (std::string f; std::getline(ss, f, ',');)
    if (!f.empty()) out.push_back(f);
  return out;
}

void add_budget_options(CLI::App* app, overrides& o) {
  o.add<index_t>(app, "--steps", "Train until this optimizer step (total, counting earlier sessions)",
                 [](run_spec& r, const index_t& v) { r.steps = v; });
  o.add<double>(app, "--minutes", "Wall-clock budget of this session in minutes",
                [](run_spec& r, const double& v) { r.minutes = v; });
  o.add<index_t>(app, "--eval-every", "Evaluate every N steps (0: only at the end)",
                 [](run_spec& r, const index_t& v) { r.eval_every = v; });
  o.add<index_t>(app, "--eval-batches", "Batches per evaluation split (0: the whole split where finite)",
                 [](run_spec& r, const index_t& v) { r.eval_batches = v; });
  o.add<index_t>(app, "--log-every", "Write a metrics line every N steps", [](run_spec& r, const index_t& v) { r.log_every = v; });
  o.add<index_t>(app, "--checkpoint-every", "Also write the checkpoint every N steps (0: at the end only)",
                 [](run_spec& r, const index_t& v) { r.checkpoint_every = v; });
  o.add<index_t>(app, "--max-skipped-steps",
                 "Skip up to N steps in a row whose gradients hold a NaN or Inf (nothing updated, every row "
                 "restarts) before stopping with exit 3 (default 0: stop at the first)",
                 [](run_spec& r, const index_t& v) { r.max_skipped_steps = v; });
}

void add_train_options(CLI::App* app, overrides& o) {
  using R = run_spec;
  // model
  o.add<index_t>(app, "--hidden-size", "Model width (hidden_size)", [](R& r, const index_t& v) { r.cfg.hidden_size = v; });
  o.add<index_t>(app, "--heads", "Attention heads (num_heads)", [](R& r, const index_t& v) { r.cfg.num_heads = v; });
  o.add<double>(app, "--expansion", "SwiGLU expansion", [](R& r, const double& v) { r.cfg.expansion = v; });
  o.add<index_t>(app, "--layers", "Blocks of the reasoning net (L_layers; HRM: of L_level)",
                 [](R& r, const index_t& v) { r.cfg.L_layers = v; });
  o.add<index_t>(app, "--H-layers", "HRM: blocks of H_level (H_layers)", [](R& r, const index_t& v) { r.cfg.H_layers = v; });
  o.add<index_t>(app, "--H-cycles", "Outer recursion cycles T", [](R& r, const index_t& v) { r.cfg.H_cycles = v; });
  o.add<index_t>(app, "--L-cycles", "Latent updates per cycle n", [](R& r, const index_t& v) { r.cfg.L_cycles = v; });
  o.add<index_t>(app, "--halt-max-steps", "Supervision steps N_sup", [](R& r, const index_t& v) { r.cfg.halt_max_steps = v; });
  o.add<double>(app, "--halt-exploration-prob", "ACT exploration probability",
                [](R& r, const double& v) { r.cfg.halt_exploration_prob = v; });
  o.add<index_t>(app, "--puzzle-emb-len", "Prefix tokens (ETRM: context tokens K)",
                 [](R& r, const index_t& v) { r.cfg.puzzle_emb_len = v; });
  o.add<index_t>(app, "--puzzle-emb-ndim", "TRM puzzle embedding size (default: hidden size)",
                 [](R& r, const index_t& v) { r.cfg.puzzle_emb_ndim = v; });
  o.add<std::string>(app, "--pos-encodings", "rope | rope2d (by row and column) | learned | none",
                     [](R& r, const std::string& v) { r.cfg.pos_encodings = etrm::pos_encoding_from_string(v); });
  o.flag(app, "--mlp-t", "Token-mixing MLP instead of attention (mlp_t)", [](R& r) { r.cfg.mlp_t = true; });
  // optimizer
  o.add<index_t>(app, "--batch-size", "Global batch size", [](R& r, const index_t& v) { r.batch_size = v; });
  o.add<double>(app, "--lr", "Learning rate", [](R& r, const double& v) { r.opt.lr = v; });
  o.add<double>(app, "--puzzle-emb-lr", "TRM puzzle embedding learning rate (SignSGD)",
                [](R& r, const double& v) { r.opt.puzzle_emb_lr = v; });
  o.add<double>(app, "--encoder-lr-scale", "ETRM: the demo encoder learns at --lr times this (default 1)",
                [](R& r, const double& v) { r.opt.encoder_lr_scale = v; });
  o.add<double>(app, "--weight-decay", "Weight decay", [](R& r, const double& v) { r.opt.weight_decay = v; });
  o.add<index_t>(app, "--warmup-steps", "Linear warmup steps", [](R& r, const index_t& v) { r.opt.warmup_steps = v; });
  o.add<double>(app, "--lr-min-ratio", "Cosine decay to lr * ratio over --steps (1: constant)",
                [](R& r, const double& v) { r.opt.lr_min_ratio = v; });
  o.add<double>(app, "--ema-rate", "EMA of the weights (0: off)", [](R& r, const double& v) { r.opt.ema_rate = v; });
  o.add<double>(app, "--grad-clip", "Global gradient norm clip (0: off)", [](R& r, const double& v) { r.opt.grad_clip = v; });
  o.add<double>(app, "--beta1", "Adam beta1", [](R& r, const double& v) { r.opt.beta1 = v; });
  o.add<double>(app, "--beta2", "Adam beta2", [](R& r, const double& v) { r.opt.beta2 = v; });
  o.add<std::string>(app, "--optimizer", "adam_atan2 | adamw", [](R& r, const std::string& v) {
    merge_json(r, json{{"optimizer", {{"kind", v}}}});
  });
  o.add<std::string>(app, "--loss", "stablemax | softmax", [](R& r, const std::string& v) { r.loss = v; });
  // encoder
  o.add<index_t>(app, "--grid-side", "Canvas side of an episode grid (EOS border included)",
                 [](R& r, const index_t& v) { r.enc.grid_side = v; });
  o.add<index_t>(app, "--max-demos", "Demonstrations per episode", [](R& r, const index_t& v) { r.enc.max_demos = v; });
  o.add<index_t>(app, "--encoder-layers",
                 "Transformer blocks per demonstration pair (default: 0 with the few-shot defaults, 1 elsewhere)",
                 [](R& r, const index_t& v) { r.enc.encoder_layers = v; });
  o.add<index_t>(app, "--latent-layers", "Self-attention blocks over the context tokens",
                 [](R& r, const index_t& v) { r.enc.latent_layers = v; });
  o.add<bool>(app, "--aligned-cells", "Demo tokens also embed the same cell of the pair's other grid (default true)",
              [](R& r, const bool& v) { r.enc.aligned_cells = v; });
  o.add<bool>(app, "--neighbour-cells",
              "Demo tokens and query cells also embed their 8 neighbours, so the lookup can match local patterns "
              "(default: true with the few-shot defaults, false elsewhere; false also switches the neighbour rays and "
              "relations off)",
              [](R& r, const bool& v) { merge_json(r, json{{"encoder", {{"neighbour_cells", v}}}}); });
  // After --neighbour-cells, whose `false` switches the rays and relations off unless set here.
  o.add<bool>(app, "--neighbour-rays",
              "With --neighbour-cells: the 8 neighbours are what each cell sees along the 8 directions, the first "
              "cell that is not black or the grid's border, so lines, joins and enclosures become local patterns "
              "(default false)",
              [](R& r, const bool& v) { r.enc.neighbour_rays = v; });
  o.add<bool>(app, "--neighbour-relations",
              "With --neighbour-cells: each of the 8 neighbours says only how it relates to the cell (its own "
              "colour, black, another colour, the border), a pattern that reads the same in every palette "
              "(default: true with the few-shot defaults, false elsewhere)",
              [](R& r, const bool& v) { r.enc.neighbour_relations = v; });
  o.add<bool>(app, "--query-attention",
              "The query cells cross-attend to the demo tokens (default true; false also switches the readout loss, "
              "the alignment search, the candidate cells, the pattern cells and the raw lookup off)",
              [](R& r, const bool& v) { merge_json(r, json{{"encoder", {{"query_attention", v}}}}); });
  o.add<bool>(app, "--raw-lookup",
              "With --query-attention: the query cells also read the demo tokens as embedded, before the pair "
              "blocks, so a cell can match a demo cell by its own colour and neighbours whatever the rule "
              "(default false; needs --encoder-layers > 0)",
              [](R& r, const bool& v) { r.enc.raw_lookup = v; });
  o.add<bool>(app, "--matching-init",
              "The query cross-attention starts matching query cells to demo cells of the same colour and position "
              "(default false)",
              [](R& r, const bool& v) { r.enc.matching_init = v; });
  o.add<double>(app, "--readout-weight",
                "Weight of the readout loss: a linear head answers each query cell from what it read in the demos "
                "(default 1; 0: off)",
                [](R& r, const double& v) { r.enc.readout_weight = v; });
  // Before the single priors' flags, which override it.
  o.add<bool>(app, "--priors",
              "Switch the per-task priors on or off together: the alignment search and the pattern cells, "
              "hand-written searches over each task's demos outside the network (default false: the learned ETRM; "
              "true: ETRM + priors; needs the query attention)",
              [](R& r, const bool& v) {
                merge_json(r, json{{"encoder", {{"search_alignment", v}, {"pattern_cells", v}}}});
              });
  // After --query-attention, whose `false` switches the alignment search off unless set here.
  o.add<bool>(app, "--search-alignment",
              "Demo output tokens and query cells also embed the input cell that lands on them under the dihedral "
              "transform and shift that best explain the task's demos (searched per task, a prior; needs query attention; "
              "default false; false also switches the candidate cells off)",
              [](R& r, const bool& v) { merge_json(r, json{{"encoder", {{"search_alignment", v}}}}); });
  // After --search-alignment, whose `false` switches the candidate cells off unless set here.
  o.add<bool>(app, "--candidate-cells",
              "Demo output tokens and query cells also embed their transported input cell recoloured by the colour "
              "map the demos support under the searched alignment: the answer of the best move-then-recolour "
              "hypothesis (needs the alignment search; default false)",
              [](R& r, const bool& v) { r.enc.candidate_cells = v; });
  o.add<bool>(app, "--pattern-cells",
              "Query cells and demo output tokens also embed what the demos' input cells that look like them became "
              "(the same colour or class and the same relations of the adjacent cells or along the rays, or the same "
              "role of the colour, or lying between two cells of one colour, under the key the demos support best), "
              "and whether that key answers every demo cell right: a local rule searched per task, a prior (needs the "
              "query attention; default false)",
              [](R& r, const bool& v) { r.enc.pattern_cells = v; });
  // data
  o.add<int>(app, "--min-side", "Few-shot generator: smallest input side", [](R& r, const int& v) { r.min_side = v; });
  o.add<int>(app, "--max-side", "Few-shot generator: largest input side", [](R& r, const int& v) { r.max_side = v; });
  o.add<int>(app, "--gen-min-demos", "Few-shot generator: fewest demonstrations per task",
             [](R& r, const int& v) { r.gen_min_demos = v; });
  o.add<int>(app, "--gen-max-demos", "Few-shot generator: most demonstrations per task",
             [](R& r, const int& v) { r.gen_max_demos = v; });
  o.add<int>(app, "--compose-percent", "Few-shot generator: share of composed rules",
             [](R& r, const int& v) { r.compose_percent = v; });
  o.add<std::string>(app, "--families", "Few-shot generator: comma-separated rule families (default: all)",
                     [](R& r, const std::string& v) { r.families = split_list(v); });
  o.add<index_t>(app, "--curriculum-steps",
                 "Few-shot: the first N training steps draw only the --curriculum-families (default 0: none)",
                 [](R& r, const index_t& v) { r.curriculum_steps = v; });
  o.add<std::string>(app, "--curriculum-families", "Few-shot: comma-separated families of the curriculum (default color_map)",
                     [](R& r, const std::string& v) { r.curriculum_families = split_list(v); });
  o.add<int>(app, "--task-pool", "Few-shot: train on a fixed pool of N tasks (TRM: default 512, one puzzle id each)",
             [](R& r, const int& v) { r.task_pool = v; });
  o.add<int>(app, "--pool-queries", "Queries per pool task (the last is held out for evaluation)",
             [](R& r, const int& v) { r.pool_queries = v; });
  o.flag(app, "--no-augment", "ETRM: no dihedral/colour augmentation of episodes", [](R& r) { r.augment = false; });
  o.add<double>(app, "--leave-one-out",
                "ETRM on fewshot: fraction of rows that predict one of the episode's demos from the others "
                "(auxiliary loss, 0..1)",
                [](R& r, const double& v) { r.leave_one_out = v; });
  o.add<int>(app, "--sudoku-clues", "Generated Sudoku: clues per puzzle", [](R& r, const int& v) { r.sudoku_clues = v; });
  o.add<int>(app, "--maze-size", "Generated mazes: side", [](R& r, const int& v) { r.maze_size = v; });
  o.add<int>(app, "--arc-augmentations", "TRM on ARC: augmented copies (puzzle ids) per task",
             [](R& r, const int& v) { r.arc_augmentations = v; });
  o.add<int>(app, "--arc-canvas-side",
             "ETRM on ARC: canvas side (default 30). Smaller: only pairs that fit train; evaluation tasks "
             "whose demos or test inputs do not fit count as unsolved",
             [](R& r, const int& v) { r.arc_canvas_side = v; });
  o.add<bool>(app, "--eval-demos-in-training",
              "ETRM on ARC: the evaluation tasks' demonstration pairs (never their test pairs) join the training "
              "episodes (default false)",
              [](R& r, const bool& v) { r.eval_demos_in_training = v; });
  o.add<int>(app, "--arc-version", "ARC: 1 (arc-agi-1/training → arc-agi-1/evaluation) or 2 (arc-agi-2/...)",
             [](R& r, const int& v) { r.arc_version = v; });
  o.add<std::size_t>(app, "--data-limit", "Most rows read from a data file", [](R& r, const std::size_t& v) { r.data_limit = v; });
  o.add<std::uint64_t>(app, "--seed", "Seed of initialisation, data order and augmentation",
                       [](R& r, const std::uint64_t& v) { r.seed = v; });
  add_budget_options(app, o);
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// The run description stored in a checkpoint by `etrm train`.
std::optional<run_spec> spec_from_checkpoint(const etrm::io::safetensors_file& f) {
  const auto& md = f.metadata();
  const auto it = md.find("train_state");
  if (it == md.end()) return std::nullopt;
  const json state = etrm::io::parse_json_bounded(it->second, [&](const std::string& problem) {
    throw etrm::io::io_error("'" + f.origin() + "': malformed train_state metadata: " + problem);
  });
  if (!state.is_object() || !state.contains("run")) return std::nullopt;
  try {
    json run = state.at("run");
    // Checkpoints written before the encoder had these options were trained without them.
    if (run.contains("encoder") && run.at("encoder").is_object()) {
      for (const char* key : {"aligned_cells", "query_attention", "matching_init", "neighbour_cells", "neighbour_rays",
                              "neighbour_relations", "search_alignment", "candidate_cells", "pattern_cells", "raw_lookup"})
        if (!run.at("encoder").contains(key)) run["encoder"][key] = false;
      if (!run.at("encoder").contains("readout_weight")) run["encoder"]["readout_weight"] = 0.0;
    }
    // ETRM on ARC trained on the evaluation tasks' demos before the option existed.
    if (run.value("task", "") == "arc" && run.contains("data") && !run.at("data").contains("eval_demos_in_training"))
      run["data"]["eval_demos_in_training"] = run.value("model", "") == "etrm";
    return spec_from_json(run);
  } catch (const std::exception& e) {
    throw etrm::io::io_error("'" + f.origin() + "': malformed run description: " + e.what());
  }
}

run_spec require_spec(const fs::path& ckpt) {
  const auto f = etrm::io::safetensors_file::load(ckpt);
  auto s = spec_from_checkpoint(f);
  if (!s) throw etrm::io::io_error("'" + ckpt.string() + "': not a checkpoint written by `etrm train` (no run description)");
  return *s;
}

// ---- generate ---------------------------------------------------------------------------------

struct generate_options {
  std::string kind = "fewshot", split = "train", out;
  std::size_t count = 10;
  std::uint64_t seed = 0;
  int min_side = 3, max_side = 10, clues = 30, maze_size = 11;
};

int generate(const generate_options& g) {
  namespace data = etrm::data;
  if (g.out.empty()) throw std::invalid_argument("generate needs --out");
  const fs::path out(g.out);
  const auto make_dir = [](const fs::path& d) {
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec || !fs::is_directory(d)) throw etrm::io::io_error("cannot create output directory '" + d.string() + "': " + ec.message());
  };
  if (g.kind == "fewshot") {
    if (g.split != "train" && g.split != "held_out") throw std::invalid_argument("--split must be train or held_out");
    make_dir(out);
    data::generator_config c;
    c.min_side = g.min_side;
    c.max_side = g.max_side;
    const auto split = g.split == "held_out" ? data::rule_split::held_out : data::rule_split::train;
    // The rule of every task goes to rules.tsv, not a .json file, so that the folder is ARC data
    // as it is (every .json in it a task: `etrm solve --task`, `--task arc --data-dir`).
    std::string index = "file\trule\n";
    for (std::size_t i = 0; i < g.count; ++i) {
      data::task t = data::sample_task(split, g.seed, i, c);
      const std::string name = fmt::format("{}_{}_{:05d}", g.split, g.seed, i);
      index += name + ".json\t" + t.id + "\n";
      data::save_arc_task(t, out / (name + ".json"));
    }
    etrm::io::write_file_atomic(out / "rules.tsv", index);
    fmt::print("wrote {} {} tasks to {}\n", g.count, g.split, out.string());
  } else if (g.kind == "sudoku") {
    const fs::path file = out.extension() == ".csv" ? out : out / "sudoku.csv";
    if (file.has_parent_path()) make_dir(file.parent_path());
    std::vector<data::sudoku_example> ex(g.count);
    tbb::parallel_for(std::size_t(0), g.count, [&](std::size_t i) {
      data::data_rng rng(data::stream_id({g.seed, 0x5D0C, i}));
      ex[i] = data::generate_sudoku(rng, g.clues);
    });
    std::string csv = "source,question,answer,rating\n";
    for (std::size_t i = 0; i < ex.size(); ++i) {
      std::string q, a;
      for (int k = 0; k < 81; ++k) {
        q += ex[i].question[std::size_t(k)] ? char('0' + ex[i].question[std::size_t(k)]) : '.';
        a += char('0' + ex[i].answer[std::size_t(k)]);
      }
      csv += fmt::format("generated_{}_{},{},{},0\n", g.seed, i, q, a);
    }
    etrm::io::write_file_atomic(file, csv);
    fmt::print("wrote {} Sudoku puzzles to {}\n", g.count, file.string());
  } else if (g.kind == "maze") {
    make_dir(out);
    data::maze_config c;
    c.size = g.maze_size;
    for (std::size_t i = 0; i < g.count; ++i) {
      data::data_rng rng(data::stream_id({g.seed, 0x3A2E, i}));
      const data::maze_example m = data::generate_maze(c, rng);
      const std::string name = fmt::format("maze_{}_{:05d}", g.seed, i);
      const json j{{"input", data::arc_json(m.question)}, {"output", data::arc_json(m.answer)},
                   {"path_length", m.path_length}, {"codes", "0 wall, 1 open, 2 start, 3 goal, 4 path"}};
      etrm::io::write_file_atomic(out / (name + ".json"), j.dump() + "\n");
      etrm::io::write_file_atomic(out / (name + ".txt"), data::maze_text(m.question) + "\n" + data::maze_text(m.answer));
    }
    fmt::print("wrote {} mazes to {}\n", g.count, out.string());
  } else {
    throw std::invalid_argument("unknown --kind '" + g.kind + "' (fewshot, sudoku, maze)");
  }
  return 0;
}

std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

int run(int argc, char** argv, etrm::communicator_ref comm) {
  CLI::App app{"etrm: Tiny Recursive Models and ETRM (demonstration encoder) on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "etrm 0.1.0");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later flag overrides

  session s;
  s.comm = comm;
  std::vector<std::string> config_files;
  std::string task, model, preset, data_dir, out, init_from;
  bool no_progress = false;

  // train
  overrides train_o;
  CLI::App* train = app.add_subcommand("train", "Train a TRM or ETRM; writes checkpoint.safetensors and metrics.jsonl to --out");
  train->add_option("--task", task, "fewshot | sudoku | maze | arc")->check(CLI::IsMember({"fewshot", "sudoku", "maze", "arc"}));
  train->add_option("--model", model, "etrm (demonstration encoder) | trm (puzzle ids) | hrm (HRM, puzzle ids)")
      ->check(CLI::IsMember({"etrm", "trm", "hrm"}));
  train->add_option("--preset", preset, "Named configuration: " + [] {
    std::string l;
    for (const auto& n : etrm::preset_names()) l += (l.empty() ? "" : ", ") + n;
    return l;
  }());
  train->add_option("--config", config_files, "JSON file(s) merged into the configuration (official TRM field names)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  train->add_option("--data-dir", data_dir, "ARC / Sudoku data (default: $ETRM_DATA_DIR)");
  train->add_option("--out", out, "Output directory")->required();
  train->add_option("--init-from", init_from,
                    "Start from the weights of this checkpoint (same architecture and encoder), e.g. to fine-tune a "
                    "model trained on generated tasks on ARC; the optimizer starts afresh at step 0");
  add_compute_options(train, s);
  train->add_flag("--no-progress", no_progress, "Plain log lines even on a terminal");
  add_train_options(train, train_o);
  add_adaptation_options(train, s);

  // resume
  overrides resume_o;
  std::string resume_ckpt;
  CLI::App* resume = app.add_subcommand("resume", "Continue a run from its checkpoint (same data order, same metrics)");
  resume->add_option("--out", out, "Run directory (holds checkpoint.safetensors)");
  resume->add_option("--checkpoint", resume_ckpt, "Checkpoint file (default: OUT/checkpoint.safetensors)");
  add_compute_options(resume, s);
  resume->add_flag("--no-progress", no_progress, "Plain log lines even on a terminal");
  add_budget_options(resume, resume_o);

  // eval
  std::string eval_ckpt, svg;
  CLI::App* eval = app.add_subcommand("eval", "Evaluate a checkpoint: per-split and per-task results (ARC: pass@1/2)");
  eval->add_option("--checkpoint", eval_ckpt, "Checkpoint written by etrm train")->required();
  eval->add_option("--split", s.splits,
                   "train_rules | held_out (fewshot), test (sudoku, maze), arc-eval (arc), or a suite (arc1-eval, "
                   "concept-arc, arc2-eval, generator-held-out); default all of the task's")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  eval->add_option("--eval-batches", s.spec.eval_batches, "Batches per split (0: the whole split where finite)");
  eval->add_option("--augmentations", s.augmentations, "ARC with ETRM: augmentations voting per test input");
  eval->add_option("--out", out, "Output directory (default: the checkpoint's directory)");
  eval->add_option("--svg", svg, "Write pictures of predictions (demos, query, prediction, truth) to this SVG");
  eval->add_option("--svg-examples", s.svg_examples, "Tasks in the picture");
  eval->add_option("--save-tasks", s.save_tasks,
                   "Few-shot: write every evaluated row (its demos, its query with the answer) as ARC JSON to "
                   "DIR/<split>/<row>.json, e.g. for `solve --task DIR/held_out` or another program");
  eval->add_option("--data-dir", data_dir, "ARC / Sudoku data (default: the run's, then $ETRM_DATA_DIR)");
  add_compute_options(eval, s);
  bool no_controls = false;
  eval->add_flag("--no-controls", no_controls, "ETRM: skip the no-demo and wrong-demo controls");
  eval->add_flag("--external", s.external,
                 "Also evaluate the external suites found under --data-dir: arc1-eval (ARC-AGI-1 evaluation), "
                 "concept-arc (ConceptARC corpus), arc2-eval (ARC-AGI-2 evaluation), and generator-held-out (tasks "
                 "of the generator's held-out rules drawn once). Every task counts; one that does not fit the "
                 "canvas is failed. Also by name with --split");
  eval->add_option("--generator-tasks", s.generator_tasks, "Tasks of the generator-held-out suite (default 256)")
      ->check(CLI::PositiveNumber);
  add_adaptation_options(eval, s);

  // solve
  std::string solve_ckpt, task_file;
  CLI::App* solve = app.add_subcommand("solve", "Solve ARC tasks (a task JSON or a folder of them) with an ETRM checkpoint "
                                                "(voting over augmentations), or a TRM one with --adapt-steps");
  solve->add_option("--checkpoint", solve_ckpt, "ETRM checkpoint (TRM: needs --adapt-steps, it reads no demos)")->required();
  solve->add_option("--task", task_file,
                    "ARC task JSON, or a folder: every .json below it, one line per task, one submission.json, "
                    "pass@k over the tasks whose answers are known")->required();
  solve->add_option("--svg", svg, "Picture of demos, prediction and truth");
  solve->add_option("--svg-examples", s.svg_examples, "Tasks in the picture (a folder)");
  solve->add_option("--augmentations", s.augmentations, "Augmentations voting per test input");
  solve->add_option("--out", out, "Write submission.json here");
  solve->add_option("--adapt-steps", s.adapt_steps,
                    "Test-time training: N Adam steps of a copy of the weights on the task's leave-one-out demos "
                    "before answering (0: off)")
      ->check(CLI::NonNegativeNumber);
  solve->add_option("--adapt-lr", s.adapt_lr, "Test-time training learning rate (default 3e-3)")->check(CLI::PositiveNumber);
  solve->add_option("--adapt-supervision-steps", s.adapt_supervision,
                    "Test-time training: supervision steps per pass (default: halt_max_steps)")
      ->check(CLI::PositiveNumber);
  add_compute_options(solve, s);

  // generate
  generate_options g;
  CLI::App* gen = app.add_subcommand("generate", "Write generated data: few-shot tasks (ARC JSON), Sudoku (CSV), mazes");
  gen->add_option("--kind", g.kind, "fewshot | sudoku | maze")->check(CLI::IsMember({"fewshot", "sudoku", "maze"}));
  gen->add_option("--count", g.count, "How many");
  gen->add_option("--split", g.split, "fewshot rules: train | held_out")->check(CLI::IsMember({"train", "held_out"}));
  gen->add_option("--out", g.out, "Directory (sudoku: also a .csv file)")->required();
  gen->add_option("--seed", g.seed, "Seed");
  gen->add_option("--min-side", g.min_side, "fewshot: smallest grid side");
  gen->add_option("--max-side", g.max_side, "fewshot: largest grid side");
  gen->add_option("--clues", g.clues, "sudoku: clues per puzzle");
  gen->add_option("--maze-size", g.maze_size, "maze: side");

  // infer
  std::string infer_ckpt, infer_config;
  CLI::App* infer = app.add_subcommand("infer", "Run N supervision steps on a batch; write logits, q_halt, q_continue");
  infer->add_option("--checkpoint", infer_ckpt, "Model weights (official names)")->required();
  infer->add_option("--input", s.input, "safetensors with inputs I32 [B, seq_len] and puzzle_identifiers I32 [B]")->required();
  infer->add_option("--output", s.output, "safetensors to write")->required();
  infer->add_option("--steps", s.infer_steps, "Supervision steps (default: halt_max_steps)");
  infer->add_option("--config", infer_config, "Configuration JSON when the checkpoint has none");
  add_compute_options(infer, s);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a ParseError too
  }
  s.progress = !no_progress;
  const std::string env_data = env_or("ETRM_DATA_DIR", "");

  if (gen->parsed()) return generate(g);

  if (train->parsed()) {
    s.command = "train";
    run_spec r = default_spec();
    // The task and model decide which defaults file applies.
    json peek = json::object();
    for (const auto& f : config_files) peek.update(read_json_file(f));
    r.task = !task.empty() ? task : peek.value("task", std::string("fewshot"));
    r.model = !model.empty() ? model : peek.value("model", std::string("etrm"));
    const fs::path dir = env_or("ETRM_CONFIG_DIR", ETRM_CONFIG_DIR);
    if (r.task == "fewshot" && !dir.empty()) {
      // HRM reads puzzle ids as TRM does: TRM's few-shot defaults (task pool, optimizer) apply.
      fs::path d = dir / ("fewshot_" + std::string(r.model == "hrm" ? "trm" : r.model) + ".json");
      if (!fs::exists(d)) d = dir / "fewshot_etrm.json";
      if (fs::exists(d)) merge_json_file(r, d);
      r.task = "fewshot";
      r.model = !model.empty() ? model : peek.value("model", std::string("etrm"));
    }
    if (r.model == "hrm") apply_hrm_defaults(r);
    if (!preset.empty()) {
      r.cfg = etrm::preset(preset);
      r.preset = preset;
    }
    for (const auto& f : config_files) merge_json_file(r, f);
    if (!task.empty()) r.task = task;
    if (!model.empty()) r.model = model;
    train_o.apply(r);
    if (!data_dir.empty()) r.data_dir = data_dir;
    if (r.data_dir.empty()) r.data_dir = env_data;
    if (!init_from.empty()) r.init_from = init_from;
    finalize_spec(r);
    s.spec = r;
    s.out = out;
    return dispatch(s);
  }
  if (resume->parsed()) {
    s.command = "resume";
    if (out.empty() && resume_ckpt.empty()) throw std::invalid_argument("resume needs --out DIR or --checkpoint FILE");
    s.checkpoint = !resume_ckpt.empty() ? fs::path(resume_ckpt) : fs::path(out) / "checkpoint.safetensors";
    s.out = !out.empty() ? fs::path(out) : s.checkpoint.parent_path();
    if (s.out.empty()) s.out = ".";
    s.spec = require_spec(s.checkpoint);
    resume_o.apply(s.spec);
    finalize_spec(s.spec);
    return dispatch(s);
  }
  if (eval->parsed()) {
    s.command = "eval";
    s.checkpoint = eval_ckpt;
    const index_t eval_batches = s.spec.eval_batches;
    s.spec = require_spec(s.checkpoint);
    if (eval->count("--eval-batches")) s.spec.eval_batches = eval_batches;
    if (!data_dir.empty()) s.spec.data_dir = data_dir;
    if (s.spec.data_dir.empty()) s.spec.data_dir = env_data;
    s.controls = !no_controls;
    s.svg = svg;
    s.out = !out.empty() ? fs::path(out) : s.checkpoint.parent_path();
    if (s.out.empty()) s.out = ".";
    finalize_spec(s.spec);
    return dispatch(s);
  }
  if (solve->parsed()) {
    s.command = "solve";
    s.adapt = "weights";  // solve's test-time training fits the weights
    s.checkpoint = solve_ckpt;
    s.task_file = task_file;
    s.svg = svg;
    s.out = out;
    s.spec = require_spec(s.checkpoint);
    finalize_spec(s.spec);
    return dispatch(s);
  }
  if (infer->parsed()) {
    s.command = "infer";
    s.checkpoint = infer_ckpt;
    const auto f = etrm::io::safetensors_file::load(s.checkpoint);
    if (auto r = spec_from_checkpoint(f)) {
      s.spec = *r;
    } else {
      s.spec = default_spec();
      if (infer_config.empty()) s.spec.cfg = etrm::read_checkpoint_config(f);
      s.spec.model = s.spec.cfg.H_layers > 0 ? "hrm" : "trm";
    }
    if (!infer_config.empty()) {
      const json j = read_json_file(infer_config);
      s.spec.cfg = etrm::trm_config{};
      try {
        merge_json(s.spec, j);
        if (!spec_from_checkpoint(f)) s.spec.model = s.spec.cfg.H_layers > 0 ? "hrm" : "trm";
        s.spec.cfg.validate();
      } catch (const std::exception& e) {
        throw etrm::io::io_error("'" + infer_config + "': " + e.what());
      }
    }
    s.spec.cfg.validate();
    return dispatch(s);
  }
  return 2;
}

}  // namespace

// One line on stderr and exit code `code`; on several ranks it names the rank and ends the whole
// job (MPI_Abort), so the other ranks do not wait for this one.
int fail(etrm::communicator_ref comm, const std::string& message, int code = 1) {
  if (comm.size() == 1) {
    std::cerr << "etrm: error: " << one_line(message) << '\n';
    return code;
  }
  std::cerr << "etrm: error: rank " << comm.rank() << " of " << comm.size() << ": " << one_line(message) << std::endl;
  comm.abort(code);
}

// Exit codes: 0 done; 1 an error (a bad or unreadable input, an unwritable output, a bad
// configuration); 2 a command-line usage error; 3 training diverged (a NaN or Inf, the last
// checkpoint left as it was); 130 interrupted by Ctrl-C after saving a checkpoint.
int main(int argc, char** argv) {
  // With a file-size limit (ulimit -f) a write past it fails with EFBIG, reported like a full
  // disk, instead of SIGXFSZ killing the process in the middle of a checkpoint.
  std::signal(SIGXFSZ, SIG_IGN);
  etrm::communicator_ref comm;
#ifdef ETRM_WITH_MPI
  // Started by mpirun or srun: the ranks of MPI_COMM_WORLD train together. A collective that
  // waits longer than ETRM_COLLECTIVE_TIMEOUT seconds (default 600) ends the job.
  std::optional<etrm::mpi_environment> mpi;
  std::optional<etrm::mpi_communicator> world;
  if (etrm::mpi_environment::launched()) {
    const std::string timeout = env_or("ETRM_COLLECTIVE_TIMEOUT", "600");
    char* end = nullptr;
    const double seconds = std::strtod(timeout.c_str(), &end);
    if (end == timeout.c_str() || *end || !(seconds > 0)) {
      std::cerr << "etrm: error: ETRM_COLLECTIVE_TIMEOUT '" << timeout << "' is not a positive number of seconds\n";
      return 1;
    }
    mpi.emplace(&argc, &argv);
    world.emplace(MPI_COMM_WORLD, std::chrono::duration<double>(seconds));
    comm = *world;
  }
#endif
  try {
    return run(argc, argv, comm);
  } catch (const etrm::non_finite_error& e) {
    return fail(comm, e.what(), 3);
  } catch (const std::exception& e) {
    return fail(comm, e.what());
  } catch (...) {
    return fail(comm, "unknown failure");
  }
}
