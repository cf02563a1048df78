// SPDX-License-Identifier: Apache-2.0
// Small configurations and helpers shared by the model tests.
#pragma once

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

}  // namespace tiny
