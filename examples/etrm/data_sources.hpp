// SPDX-License-Identifier: Apache-2.0
// Where the `etrm` tool's batches come from, per task. Every training batch is a pure function of
// (seed, step), so a resumed run sees exactly the batches an uninterrupted one would have.
#pragma once

#include "spec.hpp"

#include <etrm/data/arc.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/token_batch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace etrm_cli {

// One batch of evaluation rows with what the reports need about each row.
struct eval_rows {
  etrm::token_batch b;
  index_t valid = 0;                            // rows [0, valid) are real, the rest padding
  std::vector<std::string> ids;                 // task id per row
  std::vector<etrm::data::task> tasks;          // grid tasks: demos used + the query as test[0]
  std::vector<etrm::data::augmentation> augs;   // ARC voting: the row's augmentation
};

struct eval_split {
  std::string name;
  index_t batches = 0;
  std::function<eval_rows(index_t)> get;
  bool arc_vote = false;  // predictions vote per task (pass@k) through data/evaluator.hpp
  std::vector<etrm::data::task> vote_tasks;  // arc_vote: every task scored (one without rows: failed)
  index_t fitting = -1;  // arc_vote with canvases: tasks that fit the canvas (fits_canvas) and got rows
};

class data_provider {
 public:
  virtual ~data_provider() = default;
  virtual index_t seq_len() const = 0;
  virtual index_t vocab_size() const = 0;
  virtual index_t num_puzzle_identifiers() const { return 1; }
  virtual int canvas_side() const { return 0; }  // grid tasks: canvas side of a row; 0 otherwise
  virtual etrm::token_batch train_batch(index_t B, std::uint64_t step) = 0;
  // Split names: fewshot train_rules, held_out; sudoku/maze test; arc arc-eval.
  virtual std::vector<std::string> split_names() const = 0;
  virtual eval_split split(const std::string& name, index_t B, index_t max_batches, int augmentations) = 0;
};

// ---- external evaluation suites ----------------------------------------------------------------
// Tasks nobody here wrote, every one scored (pass@1, pass@2; a task that does not fit the canvas
// gets no answer and counts as failed): arc1-eval (ARC-AGI-1 evaluation, 400), concept-arc
// (ConceptARC corpus, 160), arc2-eval (ARC-AGI-2 evaluation, 120), read from r.data_dir; and
// generator-held-out, tasks of the generator's held-out rules each drawn once (no redraw when the
// answer does not fit). None of these tasks' test pairs is ever in training (arc_etrm_provider).
const std::vector<std::string>& suite_names();
bool is_suite(const std::string& name);
// The ARC suites whose folder exists under r.data_dir (generator-held-out always).
std::vector<std::string> available_suites(const run_spec& r);
// A task fits a canvas when every test pair (input and output) and at least one demo fit; the
// demos that do not fit are left out of its rows.
bool fits_canvas(const etrm::data::task& t, const etrm::data::episode_shape& s);
// The suite's tasks; generator-held-out draws `count` of them.
std::vector<etrm::data::task> suite_tasks(const run_spec& r, const std::string& name, std::size_t count);
// Every task of `tasks` scored, the fitting ones as rows (ETRM: each test input under
// `augmentations`; TRM: each test input under the blank id) in batches of B.
eval_split scored_split(const run_spec& r, const std::string& name, std::vector<etrm::data::task> tasks, index_t B,
                        int augmentations);

// The wrong-demos control of a voting split: each row takes the demos of the next row of another
// task (rows of one task sit together, so a plain rotation would give a row its own task's demos).
void take_other_tasks_demos(eval_rows& e);

// Fixes the task-determined fields of the configuration (seq_len, vocab, prefix source sizes),
// checks names and combinations. Throws std::invalid_argument with a one-line message.
void finalize_spec(run_spec& r);

// Builds the provider of r.task (loads data files where the task needs them) and sets
// r.cfg.num_puzzle_identifiers for TRM.
std::unique_ptr<data_provider> make_provider(run_spec& r);

// ETRM's no-demos control on a batch of episodes: every demonstration removed (tokens PAD,
// flags and counts 0). The wrong-demos control is etrm::rotate_contexts.
void strip_demos(etrm::token_batch& b, const etrm::encoder_config& e);

// One ARC task as ETRM rows: each test pair under `augmentations` augmentations (the first is the
// identity), demos = the task's train pairs (at most e.max_demos), canvases of side e.grid_side.
// Throws data_error naming `source` when a grid does not fit the canvas.
std::vector<eval_rows> task_rows(const etrm::data::task& t, const etrm::encoder_config& e, int augmentations, std::uint64_t seed,
                    index_t B, const std::string& source);

// A crop of a side x side prediction canvas as a grid.
etrm::data::grid decode_canvas(const std::vector<std::int32_t>& tokens, std::size_t row, int side);

}  // namespace etrm_cli
