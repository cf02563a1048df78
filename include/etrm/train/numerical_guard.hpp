// SPDX-License-Identifier: Apache-2.0
// The trainer's guard against numerical faults: a NaN or Inf in the gradients (from a NaN or Inf
// loss, or an overflow in the backward pass) would spread through every parameter and both Adam
// moments in one update, and the next checkpoint would carry them. The gradients are checked
// before each update (a fault: no parameter or moment is updated) and the parameters after it;
// either fault stops training with the step named, so the last checkpoint written stays the
// last good state (the trainer's step count and ACT carry have moved on: reload that checkpoint
// to continue).
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/core/device.hpp>
#include <etrm/core/tensor.hpp>
#include <etrm/ops/functors.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

ETRM_BEGIN_NAMESPACE

struct non_finite_error : std::runtime_error {
  non_finite_error(index_t step, const std::string& what)
      : std::runtime_error("training diverged at step " + std::to_string(step) + ": " + what), step(step) {}
  index_t step;
};

// Throws non_finite_error naming `what` when x [n] holds a NaN or Inf (its sum of squares, one
// [1] arena scalar, is then not finite; so is that of finite values beyond ~1e19 in float, a
// divergence as well).
template <class D, class T>
void require_finite(context_t<D>& ctx, workspace<D>& ws, const T* x, index_t n, index_t step, const char* what) {
  T* sq = ws.template take<T>(1);
  kernels<D>::row_reduce(ctx, 1, n, ops::reduce_op::sum_squares, x, sq);
  const double sum = double(to_host<D>(ctx, sq, 1)[0]);
  if (!std::isfinite(sum)) throw non_finite_error(step, std::string(what) + " " + std::to_string(std::sqrt(sum)));
}

// The two checks of an optimizer step: the gradients before it (a NaN or Inf loss, an overflow
// in the backward pass: nothing is updated) and the parameters after it (an overflow in the
// update itself: the step is refused before any checkpoint can hold it).
template <class D, class T>
void require_finite_gradients(context_t<D>& ctx, workspace<D>& ws, const T* g, index_t n, index_t step) {
  require_finite(ctx, ws, g, n, step, "no update was made, the gradient norm is");
}
template <class D, class T>
void require_finite_parameters(context_t<D>& ctx, workspace<D>& ws, const T* p, index_t n, index_t step) {
  require_finite(ctx, ws, p, n, step, "the update overflowed, the parameter norm is");
}

ETRM_END_NAMESPACE
