// SPDX-License-Identifier: Apache-2.0
// Named configurations of the paper (trm-computation.md §4.4), HRM's (docs/hrm.md, `hrm_*`:
// H_layers > 0, for hierarchical_recursion) plus `small_att`, a CPU-sized model.
// A preset is a value of trm_config, never a code path of its own; the mixer type follows
// from `mlp_t`. Parameter counts (puzzle table excluded) are asserted in the tests:
// sudoku_mlp 5,028,866; sudoku_att 6,828,034; maze 6,822,914; arc 6,829,058;
// hrm_sudoku 27,275,266; hrm_maze 27,270,146; hrm_arc 27,276,290.
#pragma once

#include <etrm/model/config.hpp>

#include <stdexcept>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE

inline std::vector<std::string> preset_names() {
  return {"sudoku_mlp", "sudoku_att", "maze", "arc", "small_att", "hrm_sudoku", "hrm_maze", "hrm_arc"};
}

inline trm_config preset(const std::string& name) {
  trm_config c;  // hidden 512, 8 heads, expansion 4, 2 layers, T = 3, P = 16, N_sup = 16
  if (name == "sudoku_mlp" || name == "sudoku_att") {
    c.L_cycles = 6;
    c.seq_len = 81;
    c.vocab_size = 11;
    c.mlp_t = name == "sudoku_mlp";
    c.pos_encodings = c.mlp_t ? pos_encoding::none : pos_encoding::rope;
  } else if (name == "maze" || name == "arc") {
    c.L_cycles = 4;
    c.seq_len = 900;
    c.vocab_size = name == "maze" ? 6 : 12;
  } else if (name == "hrm_sudoku" || name == "hrm_maze" || name == "hrm_arc") {
    // Two 4-block nets, N = T = 2, one prefix token (P = ceil(512 / 512)), halting on
    // q_halt > q_continue with the continue target (HRM's ACT).
    c.H_layers = 4;
    c.L_layers = 4;
    c.H_cycles = 2;
    c.L_cycles = 2;
    c.puzzle_emb_len = 0;
    c.no_ACT_continue = false;
    c.seq_len = name == "hrm_sudoku" ? 81 : 900;
    c.vocab_size = name == "hrm_sudoku" ? 11 : name == "hrm_maze" ? 6 : 12;
  } else if (name == "small_att") {
    c.hidden_size = 128;
    c.num_heads = 4;
    c.L_cycles = 4;
    c.seq_len = 100;
    c.vocab_size = 12;
    c.puzzle_emb_ndim = 128;
  } else {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("etrm: unknown preset '" + name + "' (known: " + known + ")");
  }
  return c;
}

ETRM_END_NAMESPACE
