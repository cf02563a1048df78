// SPDX-License-Identifier: Apache-2.0
// Rotary position tables (trm-spec §1.3): inv_freq_i = θ^(−2i/hd), angles pos · inv_freq
// duplicated as [freqs, freqs] over the head dimension, positions 0..S−1 (prefix included).
#pragma once

#include <type_traits>
#include <etrm/core/tensor.hpp>

#include <cmath>
#include <vector>

ETRM_BEGIN_NAMESPACE

template <class T>
struct rope_view {
  const T* cos = nullptr;  // [S, hd], null: no rotation
  const T* sin = nullptr;
};

template <class T, class D>
struct rope_table {
  buffer<T, D> cos, sin;

  rope_table() = default;
  rope_table(context_t<D>& ctx, index_t S, index_t hd, double theta) {
    std::vector<T> c(static_cast<std::size_t>(S * hd)), s(c.size());
    for (index_t p = 0; p < S; ++p)
      for (index_t i = 0; i < hd; ++i) {
        const double inv_freq = std::pow(theta, -2.0 * double(i % (hd / 2)) / double(hd));
        c[p * hd + i] = T(std::cos(double(p) * inv_freq));
        s[p * hd + i] = T(std::sin(double(p) * inv_freq));
      }
    cos = make_buffer<T, D>(ctx, c);
    sin = make_buffer<T, D>(ctx, s);
  }
  rope_view<T> view() const { return {cos.data(), sin.data()}; }
};

ETRM_END_NAMESPACE
