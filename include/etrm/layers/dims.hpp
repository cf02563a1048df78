// SPDX-License-Identifier: Apache-2.0
// Runtime sizes shared by the layers of one network application: batch B, sequence S
// (prefix included), width D, heads H × head_dim, SwiGLU intermediates (channel and token).
#pragma once

#include <type_traits>
#include <etrm/core/config.hpp>

ETRM_BEGIN_NAMESPACE

struct layer_dims {
  index_t B = 0, S = 0, D = 0, H = 0, hd = 0;
  index_t I = 0;   // channel SwiGLU intermediate
  index_t It = 0;  // token-mixing SwiGLU intermediate (mlp_t)
  double eps = 1e-5;
  index_t tokens() const { return B * S; }
};

ETRM_END_NAMESPACE
