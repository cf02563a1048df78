// SPDX-License-Identifier: Apache-2.0
// The model configuration, with the official TRM (and HRM) field names so that it round-trips
// through checkpoint metadata (`config` key) and the official YAML/JSON, plus the derived sizes
// (TRM's SwiGLU intermediate rounding, prefix length, sequence length with prefix).
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/core/json_fields.hpp>
#include <etrm/layers/dims.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

ETRM_BEGIN_NAMESPACE

// The token embedding table of the recursive model (official PyTorch name).
inline constexpr const char* token_embedding_name = "model.inner.embed_tokens.embedding_weight";

// rope: 1-D rotary positions over the flattened sequence (official TRM); rope2d: rotary positions
// by row and column of the square canvas (half the frequency pairs each), so a shift by (dr, dc)
// is the same rotation wherever the cell is and whatever the canvas width.
enum class pos_encoding { rope, rope2d, learned, none };

struct trm_config {
  index_t hidden_size = 512;
  index_t num_heads = 8;
  double expansion = 4.0;
  index_t L_layers = 2;
  index_t H_layers = 0;  // HRM's H_level blocks; TRM has no H_level (official TRM config: 0, unused)
  index_t H_cycles = 3;  // T
  index_t L_cycles = 6;  // n
  index_t seq_len = 81;
  index_t vocab_size = 11;
  index_t puzzle_emb_ndim = 512;
  index_t puzzle_emb_len = 16;  // P, the prefix length; 0: ceil(puzzle_emb_ndim / hidden_size) (HRM)
  index_t num_puzzle_identifiers = 1;
  pos_encoding pos_encodings = pos_encoding::rope;
  bool mlp_t = false;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  index_t halt_max_steps = 16;
  double halt_exploration_prob = 0.1;
  bool no_ACT_continue = true;  // halting on q_halt > 0 (official default)

  index_t prefix_len() const {
    return puzzle_emb_len > 0 ? puzzle_emb_len : (puzzle_emb_ndim + hidden_size - 1) / hidden_size;
  }
  index_t full_len() const { return prefix_len() + seq_len; }  // S
  index_t head_dim() const { return hidden_size / num_heads; }
  bool rotary() const { return pos_encodings == pos_encoding::rope || pos_encodings == pos_encoding::rope2d; }
  // The side of the square canvas (seq_len = side²), 0 when seq_len is not a square.
  index_t canvas_side() const {
    auto side = index_t(std::lround(std::sqrt(double(seq_len))));
    return side * side == seq_len ? side : 0;
  }
  // The rule lives with the layers (layers/dims.hpp); kept here for the callers that size from a config.
  static index_t swiglu_intermediate(index_t width, double expansion) { return etrm::swiglu_intermediate(width, expansion); }
  index_t intermediate() const { return swiglu_intermediate(hidden_size, expansion); }
  index_t token_intermediate() const { return swiglu_intermediate(full_len(), expansion); }

  // Bounds far above any model etrm trains, so that no size computed from a configuration read
  // from a file overflows and a wrong file is refused before anything is allocated.
  static constexpr index_t max_width = 1 << 16, max_sequence = 1 << 20, max_vocab = 1 << 20, max_depth = 1 << 10,
                           max_identifiers = index_t(1) << 30;
  static constexpr double max_expansion = 64;

  void validate() const {
    auto fail = [](const std::string& m) { throw std::invalid_argument("etrm config: " + m); };
    const auto bound = [&](const char* name, index_t v, index_t limit) {
      if (v > limit) fail(std::string(name) + " is " + std::to_string(v) + ", more than the limit of " + std::to_string(limit));
    };
    bound("hidden_size", hidden_size, max_width);
    bound("num_heads", num_heads, max_width);
    bound("puzzle_emb_ndim", puzzle_emb_ndim, max_width * max_width);
    bound("puzzle_emb_len", puzzle_emb_len, max_sequence);
    bound("seq_len", seq_len, max_sequence);
    bound("vocab_size", vocab_size, max_vocab);
    bound("num_puzzle_identifiers", num_puzzle_identifiers, max_identifiers);
    bound("L_layers", L_layers, max_depth);
    bound("H_cycles", H_cycles, max_depth);
    bound("L_cycles", L_cycles, max_depth);
    bound("halt_max_steps", halt_max_steps, max_depth);
    if (!(expansion > 0 && expansion <= max_expansion))
      fail("expansion must be in (0, " + std::to_string(max_expansion) + "], got " + std::to_string(expansion));
    if (!(rms_norm_eps > 0 && std::isfinite(rms_norm_eps)) || !(rope_theta > 0 && std::isfinite(rope_theta)))
      fail("rms_norm_eps and rope_theta must be positive and finite");
    if (!(halt_exploration_prob >= 0 && halt_exploration_prob <= 1)) fail("halt_exploration_prob must be in [0, 1]");
    if (hidden_size <= 0 || num_heads <= 0 || hidden_size % num_heads) fail("hidden_size must be a positive multiple of num_heads");
    if (pos_encodings == pos_encoding::rope && head_dim() % 2) fail("rope needs an even head dimension");
    if (pos_encodings == pos_encoding::rope2d && head_dim() % 4) fail("rope2d needs a head dimension divisible by 4");
    if (pos_encodings == pos_encoding::rope2d && canvas_side() == 0)
      fail("rope2d needs a square canvas (seq_len a square number)");
    if (L_layers <= 0 || H_cycles <= 0 || L_cycles <= 0) fail("L_layers, H_cycles and L_cycles must be positive");
    if (H_layers < 0) fail("H_layers must not be negative");
    if (seq_len <= 0 || vocab_size <= 1) fail("seq_len must be positive and vocab_size at least 2");
    if (puzzle_emb_ndim < 0 || puzzle_emb_ndim > prefix_len() * hidden_size) fail("puzzle_emb_ndim must fit in the prefix");
    if (num_puzzle_identifiers <= 0) fail("num_puzzle_identifiers must be positive");
    if (halt_max_steps <= 0) fail("halt_max_steps must be positive");
  }
};

inline std::string to_string(pos_encoding p) {
  switch (p) {
    case pos_encoding::rope:
      return "rope";
    case pos_encoding::rope2d:
      return "rope2d";
    case pos_encoding::learned:
      return "learned";
    default:
      return "none";
  }
}
inline pos_encoding pos_encoding_from_string(const std::string& s) {
  if (s == "rope") return pos_encoding::rope;
  if (s == "rope2d") return pos_encoding::rope2d;
  if (s == "learned") return pos_encoding::learned;
  if (s == "none") return pos_encoding::none;
  throw std::invalid_argument("etrm config: unknown pos_encodings '" + s + "' (rope, rope2d, learned, none)");
}

inline void to_json(nlohmann::json& j, const trm_config& c) {
  j = nlohmann::json{{"hidden_size", c.hidden_size},
                     {"num_heads", c.num_heads},
                     {"expansion", c.expansion},
                     {"L_layers", c.L_layers},
                     {"H_layers", c.H_layers},
                     {"H_cycles", c.H_cycles},
                     {"L_cycles", c.L_cycles},
                     {"seq_len", c.seq_len},
                     {"vocab_size", c.vocab_size},
                     {"puzzle_emb_ndim", c.puzzle_emb_ndim},
                     {"puzzle_emb_len", c.puzzle_emb_len},
                     {"num_puzzle_identifiers", c.num_puzzle_identifiers},
                     {"pos_encodings", to_string(c.pos_encodings)},
                     {"mlp_t", c.mlp_t},
                     {"rms_norm_eps", c.rms_norm_eps},
                     {"rope_theta", c.rope_theta},
                     {"halt_max_steps", c.halt_max_steps},
                     {"halt_exploration_prob", c.halt_exploration_prob},
                     {"no_ACT_continue", c.no_ACT_continue}};
}

// Missing fields keep their defaults; unknown fields are ignored (official configs carry more).
inline void from_json(const nlohmann::json& j, trm_config& c) {
  auto get = [&](const char* k, auto& v) { read_json_field(j, k, v); };
  get("hidden_size", c.hidden_size);
  get("num_heads", c.num_heads);
  get("expansion", c.expansion);
  get("L_layers", c.L_layers);
  get("H_layers", c.H_layers);
  get("H_cycles", c.H_cycles);
  get("L_cycles", c.L_cycles);
  get("seq_len", c.seq_len);
  get("vocab_size", c.vocab_size);
  get("puzzle_emb_ndim", c.puzzle_emb_ndim);
  get("puzzle_emb_len", c.puzzle_emb_len);
  get("num_puzzle_identifiers", c.num_puzzle_identifiers);
  std::string pos;
  get("pos_encodings", pos);
  if (!pos.empty()) c.pos_encodings = pos_encoding_from_string(pos);
  get("mlp_t", c.mlp_t);
  get("rms_norm_eps", c.rms_norm_eps);
  get("rope_theta", c.rope_theta);
  get("halt_max_steps", c.halt_max_steps);
  get("halt_exploration_prob", c.halt_exploration_prob);
  get("no_ACT_continue", c.no_ACT_continue);
}

ETRM_END_NAMESPACE
