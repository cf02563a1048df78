// SPDX-License-Identifier: Apache-2.0
// Small configurations and helpers shared by the model tests.
#pragma once

#include <doctest/doctest.h>
#include <etrm/etrm.hpp>

#include <vector>

namespace tiny {

inline etrm::trm_config config(bool mlp_t, etrm::index_t T = 2, etrm::index_t n = 2) {
  etrm::trm_config c;
  c.hidden_size = 16;
  c.num_heads = 2;
  c.expansion = 2;
  c.L_layers = 2;
  c.H_cycles = T;
  c.L_cycles = n;
  c.seq_len = 6;
  c.vocab_size = 5;
  c.puzzle_emb_ndim = 16;
  c.puzzle_emb_len = 2;
  c.num_puzzle_identifiers = 4;
  c.pos_encodings = mlp_t ? etrm::pos_encoding::none : etrm::pos_encoding::rope;
  c.mlp_t = mlp_t;
  c.halt_max_steps = 3;
  return c;
}

// A tiny HRM: N cycles of T latent updates, H_level and L_level of different depths (2 and 1
// blocks, so a swapped net shows), one prefix token (P = ceil(16 / 16)), HRM's halting with
// the continue target.
inline etrm::trm_config hrm_config(etrm::index_t N = 2, etrm::index_t T = 2) {
  etrm::trm_config c = config(false, N, T);
  c.H_layers = 2;
  c.L_layers = 1;
  c.puzzle_emb_len = 0;
  c.no_ACT_continue = false;
  return c;
}

inline etrm::token_batch batch(const etrm::trm_config& c, etrm::index_t B, std::uint64_t seed) {
  etrm::token_batch b;
  b.batch = B;
  for (etrm::index_t i = 0; i < B * c.seq_len; ++i) {
    b.inputs.push_back(std::int32_t(etrm::uniform_index({seed, 1}, std::uint64_t(i), std::uint64_t(c.vocab_size))));
    const auto l = std::int32_t(etrm::uniform_index({seed, 2}, std::uint64_t(i), std::uint64_t(c.vocab_size)));
    b.labels.push_back(i % 5 == 4 ? -100 : l);
  }
  for (etrm::index_t i = 0; i < B; ++i) b.context.push_back(std::int32_t(i % c.num_puzzle_identifiers));
  return b;
}

// n values uniform in [−1, 1) from the counter-based RNG.
inline std::vector<double> uniform_values(etrm::index_t n, etrm::philox_key key) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (etrm::index_t i = 0; i < n; ++i) v[std::size_t(i)] = 2 * etrm::uniform01(key, std::uint64_t(i)) - 1;
  return v;
}

// Three training steps of the same model on the CPU backend and on the reference backend:
// same losses and accuracies, and parameters within fp32 noise (AdamATan2 moves every
// parameter by about lr per step, so a flipped sign of a noise-level gradient stays small).
// `Prefix` and `args` choose the prefix source (puzzle ids or the demo encoder), `Recursion`
// the recursion policy (TRM or HRM).
template <class Mixer, template <class, class> class Prefix = etrm::puzzle_id_prefix,
          class Recursion = etrm::dynamic_recursion, class Batches, class... Args>
void check_cpu_matches_reference(const etrm::trm_config& c, Batches&& batch_of_step, const Args&... args) {
  using C = etrm::cpu_device;
  using R = etrm::reference_device;
  using cpu_model = etrm::trm_model<C, float, typename Mixer::template on<C>, Recursion, Prefix>;
  using ref_model = etrm::trm_model<R, float, typename Mixer::template on<R>, Recursion, Prefix>;
  etrm::context_t<C> cpu(2);
  etrm::context_t<R> ref;
  cpu_model mc(cpu, c, args...);
  ref_model mr(ref, c, args...);
  typename etrm::trainer<cpu_model>::options o;
  o.optimizer.warmup_steps = 1;
  o.optimizer.lr = 1e-3;
  etrm::trainer<cpu_model> tc(cpu, mc, 4, o);
  etrm::trainer<ref_model> tr(ref, mr, 4, {o.optimizer, o.loss, o.seed});
  for (std::uint64_t s = 0; s < 3; ++s) {
    const etrm::token_batch b = batch_of_step(s);
    const auto a = tc.train_step(b), r = tr.train_step(b);
    CHECK(a.loss == doctest::Approx(r.loss).epsilon(1e-4));
    CHECK(a.exact_accuracy == r.exact_accuracy);
    CHECK(a.count == r.count);
  }
  const auto pc = etrm::to_host<C>(cpu, tc.parameters().data(), tc.parameters().size());
  const auto pr = etrm::to_host<R>(ref, tr.parameters().data(), tr.parameters().size());
  CHECK(etrm::testing::compare(pc, pr, 1e-2).max_rel < 1e-3);
}

// Mixer families as template-template stand-ins for check_cpu_matches_reference.
struct attention {
  template <class D>
  using on = etrm::attention_mixer<D>;
};
struct mlp_t {
  template <class D>
  using on = etrm::token_mlp_mixer<D>;
};

}  // namespace tiny
