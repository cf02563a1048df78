// SPDX-License-Identifier: Apache-2.0
// Comparison helpers shipped with the library so users can check their own kernels and
// layers the way etrm checks its own: max relative error with an absolute floor.
#pragma once

#include <etrm/core/config.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace testing {

struct comparison {
  double max_abs = 0;   // largest |a − b|
  double max_rel = 0;   // largest |a − b| / max(|b|, floor)
  std::size_t worst = 0;
  bool finite = true;
};

// Compares a to the oracle b elementwise; `floor` keeps near-zero oracle values from
// dominating the relative error.
template <class A, class B>
comparison compare(const std::vector<A>& a, const std::vector<B>& b, double floor = 1e-3) {
  comparison c;
  const std::size_t n = std::min(a.size(), b.size());
  c.finite = a.size() == b.size();
  for (std::size_t i = 0; i < n; ++i) {
    const double x = double(a[i]), y = double(b[i]);
    if (!std::isfinite(x) || !std::isfinite(y)) {
      c.finite = false;
      continue;
    }
    const double d = std::abs(x - y), r = d / std::max(std::abs(y), floor);
    c.max_abs = std::max(c.max_abs, d);
    if (r > c.max_rel) {
      c.max_rel = r;
      c.worst = i;
    }
  }
  return c;
}

}  // namespace testing
ETRM_END_NAMESPACE
