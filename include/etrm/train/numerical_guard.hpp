// SPDX-License-Identifier: Apache-2.0
// The trainer's guard against numerical faults: a NaN or Inf in the gradients (from a NaN or Inf
// loss, or an overflow in the backward pass) would spread through every parameter and both Adam
// moments in one update, and the next checkpoint would carry them. The gradients are checked
// before each update (a fault: no parameter or moment is updated) and the parameters after it;
// either fault stops training with the step named, so the last checkpoint written stays the
// last good state (the trainer's step count and ACT carry have moved on: reload that checkpoint
// to continue). A trainer may instead skip a step whose gradients are not finite
// (trainer::options::max_skipped_steps); an update that overflows always stops, because the
// parameters it overwrote are gone.
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

// The L2 norm of x [n] (one [1] arena scalar for its sum of squares): not finite when x holds a
// NaN or Inf, nor when its finite values reach ~1e19 in float, a divergence as well.
template <class D, class T>
double l2_norm(context_t<D>& ctx, workspace<D>& ws, const T* x, index_t n) {
  T* sq = ws.template take<T>(1);
  kernels<D>::row_reduce(ctx, 1, n, ops::reduce_op::sum_squares, x, sq);
  return std::sqrt(double(to_host<D>(ctx, sq, 1)[0]));
}

// Throws non_finite_error naming `what` when x [n] holds a NaN or Inf.
template <class D, class T>
void require_finite(context_t<D>& ctx, workspace<D>& ws, const T* x, index_t n, index_t step, const char* what) {
  const double norm = l2_norm(ctx, ws, x, n);
  if (!std::isfinite(norm)) throw non_finite_error(step, std::string(what) + " " + std::to_string(norm));
}

// The two checks of an optimizer step: the gradients before it (a NaN or Inf loss, an overflow
// in the backward pass: the trainer computes their norm once, for this check and the clip, and
// names it with this text) and the parameters after it (an overflow in the update itself: the
// step is refused before any checkpoint can hold it).
inline constexpr const char* non_finite_gradients = "no update was made, the gradient norm is";
template <class D, class T>
void require_finite_parameters(context_t<D>& ctx, workspace<D>& ws, const T* p, index_t n, index_t step) {
  require_finite(ctx, ws, p, n, step, "the update overflowed, the parameter norm is");
}

ETRM_END_NAMESPACE
