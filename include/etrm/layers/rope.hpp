// SPDX-License-Identifier: Apache-2.0
// Rotary position tables (trm-computation.md §1.3): inv_freq_i = θ^(−2i/hd), angles pos · inv_freq
// duplicated as [freqs, freqs] over the head dimension, positions 0..S−1 (prefix included); or
// 2-D, by row and column of a square canvas (pos_encoding::rope2d).
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
  // 1-D: position p of 0..S−1 turns frequency pair i by p · θ^(−2i/hd).
  rope_table(context_t<D>& ctx, index_t S, index_t hd, double theta) {
    fill(ctx, S, hd, [&](index_t p, index_t i) { return double(p) * std::pow(theta, -2.0 * double(i) / double(hd)); });
  }

  // 2-D over a side × side canvas after `prefix` tokens (which stay unrotated): pairs i < hd/4
  // turn by row · θ^(−4i/hd), the others by column with the same frequencies.
  static rope_table grid(context_t<D>& ctx, index_t prefix, index_t side, index_t hd, double theta) {
    const index_t quarter = hd / 4;
    rope_table t;
    t.fill(ctx, prefix + side * side, hd, [&](index_t p, index_t i) {
      if (p < prefix) return 0.0;
      const index_t cell = p - prefix, coordinate = i < quarter ? cell / side : cell % side;
      return double(coordinate) * std::pow(theta, -double(i % quarter) / double(quarter));
    });
    return t;
  }

  rope_view<T> view() const { return {cos.data(), sin.data()}; }

 private:
  // angle(p, i) for the hd/2 frequency pairs, duplicated as [pairs, pairs] over the head.
  template <class Angle>
  void fill(context_t<D>& ctx, index_t S, index_t hd, Angle angle) {
    std::vector<T> c(static_cast<std::size_t>(S * hd)), s(c.size());
    for (index_t p = 0; p < S; ++p)
      for (index_t i = 0; i < hd; ++i) {
        const double a = angle(p, i % (hd / 2));
        c[p * hd + i] = T(std::cos(a));
        s[p * hd + i] = T(std::sin(a));
      }
    cos = make_buffer<T, D>(ctx, c);
    sin = make_buffer<T, D>(ctx, s);
  }
};

ETRM_END_NAMESPACE
