// SPDX-License-Identifier: Apache-2.0
// TRM's initialisers (trm-computation.md §1.9): a JAX-style truncated normal (uniform in
// [erf(-2/√2), erf(2/√2)], erfinv, times √2·c·std, clipped at ±2·c·std, c ≈ 1.13685 so the
// empirical std equals the requested std), zeros and constants. Values are generated on the
// host from the counter-based RNG, so every backend starts from the same numbers.
#pragma once

#include <etrm/core/rng.hpp>

#include <cmath>
#include <span>
#include <stdexcept>
#include <string>

ETRM_BEGIN_NAMESPACE

namespace detail {
// Inverse error function: a rational first guess refined by Newton steps on std::erf, accurate
// to double precision on (-1, 1). In detail:: so it never meets CUDA's global ::erfinv.
inline double erfinv(double y) {
  if (y <= -1.0 || y >= 1.0) throw std::domain_error("etrm: erfinv argument outside (-1, 1)");
  const double w = -std::log((1.0 - y) * (1.0 + y));
  double x;
  if (w < 5.0) {
    const double t = w - 2.5;
    x = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      x = x * t + c;
  } else {
    const double t = std::sqrt(w) - 3.0;
    x = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      x = x * t + c;
  }
  x *= y;
  constexpr double two_over_sqrt_pi = 1.1283791670955126;
  for (int i = 0; i < 3; ++i) x -= (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
  return x;
}
}  // namespace detail

// copy_of: the initial values of another tensor of the same shape (named by `source`), for
// inits that relate two tensors (param_layout::initial_values resolves it).
enum class init_kind { zeros, constant, trunc_normal, copy_of };

struct init_spec {
  init_kind kind = init_kind::zeros;
  double value = 0.0;  // the constant, or the std of the truncated normal
  std::string source;  // copy_of: the tensor's name
  static init_spec zeros() { return {init_kind::zeros, 0.0, {}}; }
  static init_spec constant(double v) { return {init_kind::constant, v, {}}; }
  static init_spec trunc_normal(double std) { return {init_kind::trunc_normal, std, {}}; }
  static init_spec copy_of(std::string name) { return {init_kind::copy_of, 0.0, std::move(name)}; }
};

// Fills out[i] from draws index_base + i of the key.
template <class T>
void fill_init(std::span<T> out, const init_spec& spec, philox_key key, std::uint64_t index_base = 0) {
  switch (spec.kind) {
    case init_kind::zeros:
    case init_kind::constant:
      for (T& v : out) v = T(spec.kind == init_kind::zeros ? 0.0 : spec.value);
      return;
    case init_kind::trunc_normal: {
      if (spec.value == 0.0) {
        for (T& v : out) v = T(0);
        return;
      }
      const double sqrt2 = std::sqrt(2.0);
      const double lo = std::erf(-2.0 / sqrt2), hi = std::erf(2.0 / sqrt2);
      const double z = (hi - lo) / 2.0;  // Φ(2) − Φ(−2)
      const double pdf2 = std::exp(-2.0) / std::sqrt(2.0 * 3.14159265358979323846);
      const double c = 1.0 / std::sqrt(1.0 - 2.0 * 2.0 * pdf2 / z);
      const double bound = 2.0 * c * spec.value;
      for (std::size_t i = 0; i < out.size(); ++i) {
        const double u = lo + (hi - lo) * uniform01(key, index_base + i);
        const double x = detail::erfinv(std::min(std::max(u, -1.0 + 1e-16), 1.0 - 1e-16)) * sqrt2 * c * spec.value;
        out[i] = T(std::min(std::max(x, -bound), bound));
      }
      return;
    }
    case init_kind::copy_of:
      throw std::logic_error("fill_init: copy_of " + spec.source + " is resolved by param_layout::initial_values");
  }
}

ETRM_END_NAMESPACE
