// SPDX-License-Identifier: Apache-2.0
// HRM as a model variant of the etrm tool: attention blocks, puzzle ids, hierarchical recursion.
#include "session_impl.hpp"

namespace etrm_cli {
int run_hrm(session& s) {
  using model_t = etrm::trm_model<C, float, etrm::attention_mixer<C>, etrm::dynamic_hierarchical_recursion,
                                  etrm::puzzle_id_prefix>;
  return runner<model_t>(s).run();
}
}  // namespace etrm_cli
