// SPDX-License-Identifier: Apache-2.0
// Runtime sizes shared by the layers of one network application: batch B, sequence S
// (prefix included), width D, heads H × head_dim, SwiGLU intermediates (channel and token).
#pragma once

#include <type_traits>
#include <etrm/core/config.hpp>

#include <cmath>

ETRM_BEGIN_NAMESPACE

// TRM's SwiGLU intermediate size: ceil_to_multiple(round(expansion · width · 2/3), 256).
inline index_t swiglu_intermediate(index_t width, double expansion) {
  const auto inter = index_t(std::nearbyint(expansion * double(width) * 2.0 / 3.0));
  return (inter + 255) / 256 * 256;
}

struct layer_dims {
  index_t B = 0, S = 0, D = 0, H = 0, hd = 0;
  index_t I = 0;   // channel SwiGLU intermediate
  index_t It = 0;  // token-mixing SwiGLU intermediate (mlp_t)
  double eps = 1e-5;
  index_t tokens() const { return B * S; }
};

ETRM_END_NAMESPACE
