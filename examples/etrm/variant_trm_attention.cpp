// SPDX-License-Identifier: Apache-2.0
// One model variant of the etrm tool, compiled on its own so the four build in parallel.
#include "session_impl.hpp"

namespace etrm_cli {
int run_trm_attention(session& s) { return runner<trm_cpu_model<etrm::attention_mixer<C>>>(s).run(); }
}  // namespace etrm_cli
