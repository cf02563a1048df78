// SPDX-License-Identifier: Apache-2.0
// One model variant of the etrm tool, compiled on its own so the four build in parallel.
#include "session_impl.hpp"

namespace etrm_cli {
int run_etrm_attention(session& s) { return runner<etrm_cpu_model<etrm::attention_mixer<C>>>(s).run(); }
}  // namespace etrm_cli
