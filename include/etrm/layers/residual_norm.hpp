// SPDX-License-Identifier: Apache-2.0
// TRM's post-norm residual: y = rms_norm(x + f(x)) with no learned weight (trm-computation.md §1.6).
// forward:  y[rows, cols] = rms_norm(x + fx), rstd[rows] saved for backward
// backward: dsum[rows, cols] = ∂/∂(x + fx) (assigned); the caller routes it to both branches.
#pragma once

#include <type_traits>
#include <etrm/core/device.hpp>
#include <etrm/ops/functors.hpp>

ETRM_BEGIN_NAMESPACE

template <class D, class T>
void residual_norm_forward(context_t<D>& ctx, index_t rows, index_t cols, double eps, const T* x, const T* fx, T* y,
                           T* rstd) {
  kernels<D>::map(ctx, rows * cols, ops::add_fn<T>{}, y, x, fx);
  kernels<D>::rms_norm(ctx, rows, cols, T(eps), y, y, rstd);
}

template <class D, class T>
void residual_norm_backward(context_t<D>& ctx, index_t rows, index_t cols, const T* y, const T* rstd, const T* dy,
                            T* dsum) {
  kernels<D>::rms_norm_backward(ctx, rows, cols, y, rstd, dy, dsum);
}

ETRM_END_NAMESPACE
