// SPDX-License-Identifier: Apache-2.0
// The recursion policy: T (H_cycles) and n (L_cycles) as template parameters. They size the
// tape and feed static_asserts; the loops themselves are plain loops in the model. A value of
// `dynamic_cycles` takes the count from the runtime configuration instead (the CLI uses it to
// run any checkpoint); a fixed policy rejects a configuration that disagrees.
#pragma once

#include <etrm/core/config.hpp>

#include <stdexcept>
#include <string>

ETRM_BEGIN_NAMESPACE

inline constexpr int dynamic_cycles = 0;

template <int T, int N>
struct recursion_policy {
  static_assert(T >= 0 && N >= 0, "cycle counts are non-negative (0 = dynamic)");
  static constexpr int H_cycles = T;
  static constexpr int L_cycles = N;
  // Net applications recorded for backward: the last cycle only, so memory is independent of T.
  static constexpr int tape_length = N == dynamic_cycles ? dynamic_cycles : N + 1;

  static index_t resolve_T(index_t configured) { return resolve(T, configured, "H_cycles"); }
  static index_t resolve_n(index_t configured) { return resolve(N, configured, "L_cycles"); }

 private:
  static index_t resolve(int fixed, index_t configured, const char* what) {
    if (fixed == dynamic_cycles) return configured;
    if (configured != fixed)
      throw std::invalid_argument(std::string("etrm: recursion policy fixes ") + what + " = " + std::to_string(fixed) +
                                  " but the configuration says " + std::to_string(configured));
    return fixed;
  }
};

using dynamic_recursion = recursion_policy<dynamic_cycles, dynamic_cycles>;

ETRM_END_NAMESPACE
