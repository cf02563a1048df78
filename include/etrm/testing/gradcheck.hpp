// SPDX-License-Identifier: Apache-2.0
// Finite-difference gradient checking, shipped so users can check their own layers the way
// etrm checks its own (in double precision on the reference backend). Central differences
// f(x + h) − f(x − h) / 2h over chosen coordinates, compared with the analytic gradient.
#pragma once

#include <etrm/core/config.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace testing {

// Filled into gradient buffers before backward: an implementation that assigns (=) where it
// must accumulate (+=) loses the sentinel, and the check subtracts it back out.
inline constexpr double grad_sentinel = 0.375;

struct gradcheck_result {
  double max_rel = 0;  // over checked coordinates: |fd − analytic| / max(|fd|, |analytic|, floor)
  std::size_t worst = 0;
  std::size_t checked = 0;
};

// f evaluates the scalar loss at x (x is modified in place and restored). `indices` selects
// the coordinates (all when empty).
inline gradcheck_result gradcheck(const std::function<double(std::vector<double>&)>& f, std::vector<double>& x,
                                  const std::vector<double>& analytic, std::vector<std::size_t> indices = {},
                                  double h = 1e-6, double floor = 1e-6) {
  if (indices.empty())
    for (std::size_t i = 0; i < x.size(); ++i) indices.push_back(i);
  gradcheck_result r;
  for (std::size_t i : indices) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f(x);
    x[i] = keep - h;
    const double down = f(x);
    x[i] = keep;
    const double fd = (up - down) / (2 * h);
    const double rel = std::abs(fd - analytic[i]) / std::max({std::abs(fd), std::abs(analytic[i]), floor});
    if (rel > r.max_rel) {
      r.max_rel = rel;
      r.worst = i;
    }
    ++r.checked;
  }
  return r;
}

// Every `stride`-th coordinate plus the last: bounded work on large tensors.
inline std::vector<std::size_t> sample_indices(std::size_t n, std::size_t max_count) {
  std::vector<std::size_t> idx;
  const std::size_t stride = std::max<std::size_t>(1, n / std::max<std::size_t>(1, max_count));
  for (std::size_t i = 0; i < n; i += stride) idx.push_back(i);
  if (n && idx.back() != n - 1) idx.push_back(n - 1);
  return idx;
}

}  // namespace testing
ETRM_END_NAMESPACE
