// SPDX-License-Identifier: Apache-2.0
// The recursion policy: how one supervision step recurses over the reasoning nets. Both
// policies run H_cycles cycles of L_cycles latent updates z_L ← L_level(z_L, z_H + x) followed
// by one answer update z_H ← answer_net(z_H, z_L); they differ in two compile-time facts:
//
//   recursion_policy<T, n>          TRM: the answer update reuses L_level (one net); the whole
//                                   last cycle (n latent updates + the answer update) is taped.
//   hierarchical_recursion<N, T>    HRM: the answer update has its own net, H_level (H_layers
//                                   blocks); only the last latent update and the last answer
//                                   update are taped (HRM's one-step gradient, docs/hrm.md).
//
// The cycle counts are template parameters; they size the tape and feed static_asserts, the
// loops themselves are plain loops in the model. A count of `dynamic_cycles` takes it from the
// runtime configuration instead (the CLI uses it to run any checkpoint); a fixed policy rejects
// a configuration that disagrees.
#pragma once

#include <etrm/core/config.hpp>

#include <stdexcept>
#include <string>

ETRM_BEGIN_NAMESPACE

inline constexpr int dynamic_cycles = 0;

namespace detail {
template <int T, int N>
struct cycle_counts {
  static_assert(T >= 0 && N >= 0, "cycle counts are non-negative (0 = dynamic)");
  static constexpr int H_cycles = T;
  static constexpr int L_cycles = N;

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
}  // namespace detail

template <int T, int N>
struct recursion_policy : detail::cycle_counts<T, N> {
  static constexpr bool separate_H_level = false;
  // Latent updates of the last cycle recorded for backward: all n of them.
  static constexpr index_t taped_latent_updates(index_t n) { return n; }
  // Net applications recorded for backward: the last cycle only, so memory is independent of T.
  static constexpr int tape_length = N == dynamic_cycles ? dynamic_cycles : N + 1;
};

template <int N, int T>
struct hierarchical_recursion : detail::cycle_counts<N, T> {
  static constexpr bool separate_H_level = true;
  // Only the last latent update is recorded; the ones before it run without gradient.
  static constexpr index_t taped_latent_updates(index_t) { return 1; }
  static constexpr int tape_length = 2;
};

using dynamic_recursion = recursion_policy<dynamic_cycles, dynamic_cycles>;
using dynamic_hierarchical_recursion = hierarchical_recursion<dynamic_cycles, dynamic_cycles>;

ETRM_END_NAMESPACE
