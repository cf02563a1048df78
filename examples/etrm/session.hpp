// SPDX-License-Identifier: Apache-2.0
// What one invocation of a model command (train, resume, eval, solve, infer) needs, and the five
// model variants it dispatches to at run time: {attention, mlp_t} x {trm, etrm} with TRM's
// recursion, and hrm (attention, puzzle ids, HRM's hierarchical recursion), all on the CPU
// backend in float with dynamic cycle counts. Each variant is compiled in its own file.
#pragma once

#include "spec.hpp"

#include <etrm/parallel/communicator.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace etrm_cli {

struct session {
  std::string command;  // train | resume | eval | solve | infer
  run_spec spec;
  std::filesystem::path out;         // output directory
  std::filesystem::path checkpoint;  // checkpoint to read (resume, eval, solve, infer)
  int threads = 0;
  etrm::gemm_precision precision = etrm::gemm_precision::fp32;
  bool progress = true;  // progress bar when stdout is a terminal
  etrm::communicator_ref comm;  // the ranks of an mpirun job (train, resume); one process otherwise
  // eval
  std::vector<std::string> splits;  // empty: all of the task's splits
  bool controls = true;             // ETRM on fewshot and the suites: no-demo and wrong-demo controls
  bool external = false;            // also every available external suite (data_sources.hpp)
  index_t generator_tasks = 256;    // tasks of the generator-held-out suite
  int augmentations = 8;            // ARC voting
  index_t adapt_steps = 0;          // ETRM: > 0 adds a test-time-adapted evaluation of each split
  std::string adapt = "context";     // what adapts: context (tokens' offsets) | weights (whole network)
  double adapt_lr = 0;               // 0: the default of `adapt` (context 1e-2, weights 3e-3)
  index_t adapt_supervision = 0;     // supervision steps per adaptation pass; 0: halt_max_steps
  std::optional<bool> adapt_augment;  // weights: fit on augmented copies of the demos too (unset: when voting)
  int adapt_votes = 1;               // weights: augmentations of the query the fitted copy answers and votes over
  bool adapt_skip_solved = true;     // weights: no fit for a task whose leave-one-out rows are answered already
  std::filesystem::path svg;        // eval/solve: picture of predictions
  int svg_examples = 6;
  std::filesystem::path save_tasks;  // eval: each evaluated row of a grid split as ARC JSON here
  // solve
  std::filesystem::path task_file;
  // infer
  std::filesystem::path input, output;
  index_t infer_steps = 0;
};

int run_trm_attention(session& s);
int run_trm_mlp(session& s);
int run_etrm_attention(session& s);
int run_etrm_mlp(session& s);
int run_hrm(session& s);

inline int dispatch(session& s) {
  const bool mlp = s.spec.cfg.mlp_t;
  if (s.spec.model == "hrm") return run_hrm(s);
  if (s.spec.model == "etrm") return mlp ? run_etrm_mlp(s) : run_etrm_attention(s);
  return mlp ? run_trm_mlp(s) : run_trm_attention(s);
}

}  // namespace etrm_cli
