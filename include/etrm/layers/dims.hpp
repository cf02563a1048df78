// SPDX-License-Identifier: Apache-2.0
// The shapes a layer call takes besides its weights and differentiable inputs (see contract.hpp):
// sizes, and constant side inputs such as the RoPE tables.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <etrm/core/config.hpp>
#include <etrm/layers/rope.hpp>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

// TRM's SwiGLU intermediate size: ceil_to_multiple(round(expansion · width · 2/3), 256).
inline index_t swiglu_intermediate(index_t width, double expansion) {
  const auto inter = index_t(std::nearbyint(expansion * double(width) * 2.0 / 3.0));
  return (inter + 255) / 256 * 256;
}

// One application over [batch, seq, width] activations (prefix included in seq).
struct layer_dims {
  index_t batch = 0, seq = 0, width = 0, heads = 0;
  double eps = 1e-5;
  index_t tokens() const { return batch * seq; }
  index_t head_dim() const { return width / heads; }
};

// Sequence layers (attention, mlp_t, block, reasoning net): the sizes and the RoPE tables
// (null: no rotation).
template <class T>
struct seq_shape {
  layer_dims dims;
  rope_view<T> rope{};
};

// The contract's arity and sizes for a sequence layer with one input, x [B, S, D] → y [B, S, D]
// (attention, mlp_t, block).
struct sequence_layer_sizes {
  static constexpr std::size_t arity = 1;
  template <class T>
  using shape = seq_shape<T>;
  template <class T>
  std::array<index_t, 1> input_sizes(const seq_shape<T>& sh) const {
    return {output_size(sh)};
  }
  template <class T>
  index_t output_size(const seq_shape<T>& sh) const {
    return sh.dims.tokens() * sh.dims.width;
  }
};

// Row-wise layers (swiglu_mlp) over [rows, width]; the width is the layer's own.
struct row_shape {
  index_t rows = 0;
  double eps = 1e-5;
};

ETRM_END_NAMESPACE
