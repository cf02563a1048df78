// SPDX-License-Identifier: Apache-2.0
// Elementwise functors shared by every backend's `map` (host and device callable), and the
// enums that select variants of fused kernels.
#pragma once

#include <etrm/core/config.hpp>

#include <cmath>

ETRM_BEGIN_NAMESPACE
namespace ops {

enum class reduce_op { sum, sum_squares, max };
enum class loss_kind { stablemax, softmax };

template <class T>
struct add_fn {
  ETRM_HD T operator()(T a, T b) const { return a + b; }
};
template <class T>
struct add3_fn {
  ETRM_HD T operator()(T a, T b, T c) const { return a + b + c; }
};
template <class T>
struct scale_fn {
  T s;
  ETRM_HD T operator()(T a) const { return s * a; }
};
// y = a + s·b
template <class T>
struct axpy_fn {
  T s;
  ETRM_HD T operator()(T a, T b) const { return a + s * b; }
};
template <class T>
struct copy_fn {
  ETRM_HD T operator()(T a) const { return a; }
};

}  // namespace ops
ETRM_END_NAMESPACE
