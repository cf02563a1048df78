// SPDX-License-Identifier: Apache-2.0
// The `etrm` tool's description of a run: task, model kind, model configuration (official TRM
// field names), encoder, optimizer, data and budget. It travels as JSON in the checkpoint's
// metadata (`train_state.run`), so `resume`, `eval` and `solve` rebuild exactly the same model
// and data streams from a checkpoint alone.
#pragma once

#include <etrm/etrm.hpp>
#include <etrm/io/bounded_read.hpp>
#include <etrm/io/error.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace etrm_cli {

using etrm::index_t;
using json = nlohmann::json;

struct run_spec {
  std::string task = "fewshot";  // fewshot | sudoku | maze | arc
  std::string model = "etrm";    // etrm | trm | hrm
  std::string preset;            // named configuration applied before --config and the flags
  std::string init_from;         // checkpoint whose weights a new run starts from (fine-tuning)
  etrm::trm_config cfg;
  etrm::encoder_config enc;
  etrm::optimizer_config opt;
  std::string loss = "stablemax";
  index_t batch_size = 32;
  std::uint64_t seed = 0;
  // data
  std::string data_dir;
  int min_side = 2, max_side = 6;          // few-shot generator grid sides
  int gen_min_demos = 2, gen_max_demos = 4;  // demonstrations per generated task
  int compose_percent = 25;
  std::vector<std::string> families;  // few-shot generator: only these rule families (empty: all)
  // Curriculum: the first curriculum_steps training batches draw only these families (ETRM
  // learns to read demos on rules that cannot be solved without them, then sees every rule).
  index_t curriculum_steps = 0;
  std::vector<std::string> curriculum_families = {"color_map"};
  int task_pool = 0;            // > 0: a fixed pool of training tasks (TRM needs one)
  int pool_queries = 3;         // queries per pool task (the last one is held for evaluation)
  bool augment = true;          // ETRM episodes: dihedral + colour augmentation
  double leave_one_out = 0;     // ETRM on fewshot: fraction of leave-one-out rows (auxiliary loss)
  int sudoku_clues = 30;
  int maze_size = 11;
  int arc_augmentations = 8;    // TRM on ARC: augmented copies (puzzle ids) per task
  int arc_version = 1;          // ARC-AGI-1 or ARC-AGI-2: the training and evaluation folders
  // ETRM on ARC: canvas side. Below 30, only pairs that fit train, only evaluation tasks whose
  // demos and test inputs fit are answered, and the others count as unsolved.
  int arc_canvas_side = 30;
  // ETRM on ARC: the evaluation tasks' demos join the training episodes (their test pairs never do).
  bool eval_demos_in_training = false;
  std::size_t data_limit = 100000;  // rows read from data files
  // budget and logging
  index_t steps = 0;
  double minutes = 0;
  index_t eval_every = 0;
  index_t eval_batches = 4;
  index_t log_every = 10;
  index_t checkpoint_every = 0;
  index_t max_skipped_steps = 0;  // steps in a row with NaN/Inf gradients skipped before stopping
};

// Whether the run uses a per-task prior (model/priors.hpp): searches over the demos outside the network.
inline bool priors_on(const run_spec& r) {
  return r.model == "etrm" && (r.enc.search_alignment || r.enc.candidate_cells || r.enc.pattern_cells);
}

// Small CPU defaults shared by every task (the fewshot JSON file refines them).
inline run_spec default_spec() {
  run_spec r;
  auto& c = r.cfg;
  c.hidden_size = 128;
  c.num_heads = 4;
  c.expansion = 2;
  c.L_layers = 2;
  c.H_cycles = 2;
  c.L_cycles = 2;
  c.halt_max_steps = 4;
  c.puzzle_emb_len = 8;
  c.puzzle_emb_ndim = 128;
  c.halt_exploration_prob = 0.1;
  r.enc.grid_side = 8;
  r.enc.max_demos = 3;
  r.enc.encoder_layers = 1;
  r.enc.latent_layers = 1;
  r.enc.readout_weight = 1;  // ends the loss plateau within ~1,000 steps (docs/experiments/readout-loss.md)
  r.opt.lr = 1e-3;
  r.opt.warmup_steps = 100;
  r.opt.weight_decay = 0.1;
  r.opt.ema_rate = 0.999;
  r.opt.grad_clip = 1.0;
  r.opt.puzzle_emb_lr = 1e-2;
  return r;
}

// HRM's own choices on top of those (docs/hrm.md): an H_level as deep as L_level, one prefix
// token (P = ceil(puzzle_emb_ndim / hidden_size), puzzle_emb_ndim 0: the final hidden size),
// halting on q_halt > q_continue with the Q-learning continue target. Presets, --config files
// and flags still override them.
inline void apply_hrm_defaults(run_spec& r) {
  r.cfg.H_layers = r.cfg.L_layers;
  r.cfg.puzzle_emb_len = 0;
  r.cfg.puzzle_emb_ndim = 0;
  r.cfg.no_ACT_continue = false;
}

inline json to_json(const run_spec& r) {
  return json{{"task", r.task},
              {"model", r.model},
              {"preset", r.preset},
              {"init_from", r.init_from},
              {"config", json(r.cfg)},
              {"encoder", json(r.enc)},
              {"optimizer",
               {{"kind", r.opt.kind == etrm::optimizer_kind::adam_atan2 ? "adam_atan2" : "adamw"},
                {"lr", r.opt.lr},
                {"weight_decay", r.opt.weight_decay},
                {"beta1", r.opt.beta1},
                {"beta2", r.opt.beta2},
                {"eps", r.opt.eps},
                {"lr_warmup_steps", r.opt.warmup_steps},
                {"lr_min_ratio", r.opt.lr_min_ratio},
                {"total_steps", r.opt.total_steps},
                {"grad_clip", r.opt.grad_clip},
                {"ema_rate", r.opt.ema_rate},
                {"puzzle_emb_lr", r.opt.puzzle_emb_lr},
                {"encoder_lr_scale", r.opt.encoder_lr_scale},
                {"puzzle_emb_weight_decay", r.opt.puzzle_emb_weight_decay}}},
              {"loss", r.loss},
              {"global_batch_size", r.batch_size},
              {"seed", r.seed},
              {"data",
               {{"data_dir", r.data_dir},
                {"min_side", r.min_side},
                {"max_side", r.max_side},
                {"gen_min_demos", r.gen_min_demos},
                {"gen_max_demos", r.gen_max_demos},
                {"compose_percent", r.compose_percent},
                {"families", r.families},
                {"curriculum_steps", r.curriculum_steps},
                {"curriculum_families", r.curriculum_families},
                {"task_pool", r.task_pool},
                {"pool_queries", r.pool_queries},
                {"augment", r.augment},
                {"leave_one_out", r.leave_one_out},
                {"sudoku_clues", r.sudoku_clues},
                {"maze_size", r.maze_size},
                {"arc_augmentations", r.arc_augmentations},
                {"arc_version", r.arc_version},
                {"arc_canvas_side", r.arc_canvas_side},
                {"eval_demos_in_training", r.eval_demos_in_training},
                {"data_limit", r.data_limit}}},
              {"budget",
               {{"steps", r.steps},
                {"minutes", r.minutes},
                {"eval_every", r.eval_every},
                {"eval_batches", r.eval_batches},
                {"log_every", r.log_every},
                {"checkpoint_every", r.checkpoint_every},
                {"max_skipped_steps", r.max_skipped_steps}}}};
}

namespace detail {
template <class T>
void get(const json& j, const char* k, T& v) {
  if (j.is_object()) etrm::read_json_field(j, k, v);
}
}  // namespace detail

// Merges `j` into `r`. Accepts the layout to_json writes, flat keys (official TRM names:
// hidden_size, ..., global_batch_size, lr, lr_warmup_steps, weight_decay, ema_rate, ...) and the
// official `arch` section. Unknown keys are ignored (official configs carry more).
// The readout head, the transported cells and the raw lookup go through the query attention,
// the candidate cells through the alignment search, the neighbour rays and relations through the
// neighbour cells, the pattern cells through the query attention: switching one off switches
// what needs it off too, unless the same source sets that (the encoder refuses the pair).
inline void merge_encoder(const json& j, etrm::encoder_config& e) {
  etrm::from_json(j, e);
  if (j.contains("query_attention") && !e.query_attention) {
    if (!j.contains("readout_weight")) e.readout_weight = 0;
    if (!j.contains("search_alignment")) e.search_alignment = false;
    if (!j.contains("raw_lookup")) e.raw_lookup = false;
    if (!j.contains("pattern_cells")) e.pattern_cells = false;
  }
  if (!e.search_alignment && !j.contains("candidate_cells")) e.candidate_cells = false;
  if (!e.neighbour_cells && !j.contains("neighbour_rays")) e.neighbour_rays = false;
  if (!e.neighbour_cells && !j.contains("neighbour_relations")) e.neighbour_relations = false;
}

inline void merge_json(run_spec& r, const json& j) {
  using detail::get;
  if (!j.is_object()) throw std::invalid_argument("configuration is not a JSON object");
  get(j, "task", r.task);
  get(j, "model", r.model);
  get(j, "preset", r.preset);
  get(j, "init_from", r.init_from);
  for (const json* s : {&j, j.contains("arch") ? &j.at("arch") : nullptr, j.contains("config") ? &j.at("config") : nullptr}) {
    if (!s || !s->is_object()) continue;
    etrm::from_json(*s, r.cfg);
    merge_encoder(*s, r.enc);
  }
  if (j.contains("encoder")) merge_encoder(j.at("encoder"), r.enc);
  for (const json* s : {&j, j.contains("optimizer") ? &j.at("optimizer") : nullptr}) {
    if (!s || !s->is_object()) continue;
    std::string kind;
    get(*s, "kind", kind);
    if (s->contains("optimizer") && s->at("optimizer").is_string()) kind = s->at("optimizer").get<std::string>();
    if (kind == "adamw") r.opt.kind = etrm::optimizer_kind::adamw;
    else if (kind == "adam_atan2" || kind == "adamatan2") r.opt.kind = etrm::optimizer_kind::adam_atan2;
    else if (!kind.empty()) throw std::invalid_argument("unknown optimizer '" + kind + "' (adam_atan2, adamw)");
    get(*s, "lr", r.opt.lr);
    get(*s, "weight_decay", r.opt.weight_decay);
    get(*s, "beta1", r.opt.beta1);
    get(*s, "beta2", r.opt.beta2);
    get(*s, "eps", r.opt.eps);
    get(*s, "lr_warmup_steps", r.opt.warmup_steps);
    get(*s, "warmup_steps", r.opt.warmup_steps);
    get(*s, "lr_min_ratio", r.opt.lr_min_ratio);
    get(*s, "total_steps", r.opt.total_steps);
    get(*s, "grad_clip", r.opt.grad_clip);
    get(*s, "ema_rate", r.opt.ema_rate);
    if (s->contains("ema") && s->at("ema").is_boolean() && !s->at("ema").get<bool>()) r.opt.ema_rate = 0;
    get(*s, "puzzle_emb_lr", r.opt.puzzle_emb_lr);
    get(*s, "encoder_lr_scale", r.opt.encoder_lr_scale);
    get(*s, "puzzle_emb_weight_decay", r.opt.puzzle_emb_weight_decay);
  }
  get(j, "loss", r.loss);
  get(j, "global_batch_size", r.batch_size);
  get(j, "batch_size", r.batch_size);
  get(j, "seed", r.seed);
  for (const json* s : {&j, j.contains("data") ? &j.at("data") : nullptr}) {
    if (!s || !s->is_object()) continue;
    get(*s, "data_dir", r.data_dir);
    get(*s, "min_side", r.min_side);
    get(*s, "max_side", r.max_side);
    get(*s, "gen_min_demos", r.gen_min_demos);
    get(*s, "gen_max_demos", r.gen_max_demos);
    get(*s, "compose_percent", r.compose_percent);
    get(*s, "families", r.families);
    get(*s, "curriculum_steps", r.curriculum_steps);
    get(*s, "curriculum_families", r.curriculum_families);
    get(*s, "task_pool", r.task_pool);
    get(*s, "pool_queries", r.pool_queries);
    get(*s, "augment", r.augment);
    get(*s, "leave_one_out", r.leave_one_out);
    get(*s, "sudoku_clues", r.sudoku_clues);
    get(*s, "maze_size", r.maze_size);
    get(*s, "arc_augmentations", r.arc_augmentations);
    get(*s, "arc_version", r.arc_version);
    get(*s, "arc_canvas_side", r.arc_canvas_side);
    get(*s, "eval_demos_in_training", r.eval_demos_in_training);
    get(*s, "data_limit", r.data_limit);
  }
  for (const json* s : {&j, j.contains("budget") ? &j.at("budget") : nullptr}) {
    if (!s || !s->is_object()) continue;
    get(*s, "steps", r.steps);
    get(*s, "minutes", r.minutes);
    get(*s, "eval_every", r.eval_every);
    get(*s, "eval_batches", r.eval_batches);
    get(*s, "log_every", r.log_every);
    get(*s, "checkpoint_every", r.checkpoint_every);
    get(*s, "max_skipped_steps", r.max_skipped_steps);
  }
}

inline run_spec spec_from_json(const json& j) {
  run_spec r = default_spec();
  merge_json(r, j);
  return r;
}

// Configuration files are a few kilobytes; the limit refuses a wrong file before reading it.
inline constexpr std::uint64_t config_max_file_bytes = std::uint64_t(1) << 20;

inline json read_json_file(const std::filesystem::path& file) {
  const std::string text = etrm::io::read_file_bounded(file, config_max_file_bytes, "a JSON configuration");
  return etrm::io::parse_json_bounded(
      text, [&](const std::string& problem) { throw etrm::io::io_error("'" + file.string() + "': " + problem); });
}

inline void merge_json_file(run_spec& r, const std::filesystem::path& file) {
  const json j = read_json_file(file);
  try {
    merge_json(r, j);
  } catch (const std::exception& e) {
    throw etrm::io::io_error("'" + file.string() + "': " + e.what());
  }
}

}  // namespace etrm_cli
