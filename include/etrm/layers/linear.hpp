// SPDX-License-Identifier: Apache-2.0
// Bias-free linear map with PyTorch's weight layout W: [out, in] (so checkpoints load as-is).
// forward:  y[N, out] = x[N, in] · Wᵀ
// backward: dx[N, in] = dy · W (assigned, or added with accumulate_dx), dW[out, in] += dyᵀ · x.
#pragma once

#include <type_traits>
#include <etrm/core/device.hpp>

ETRM_BEGIN_NAMESPACE

template <class D>
struct linear {
  index_t in = 0, out = 0;

  template <class T>
  void forward(context_t<D>& ctx, const T* w, index_t n, const T* x, T* y, index_t ldx = 0) const {
    kernels<D>::gemm(ctx, false, true, n, out, in, T(1), x, ldx ? ldx : in, 0, w, in, 0, T(0), y, out, 0, 1);
  }
  // dx may be null (input needs no gradient).
  template <class T>
  void backward(context_t<D>& ctx, const T* w, index_t n, const T* x, const T* dy, T* dx, T* dw, bool accumulate_dx = false,
                index_t ldx = 0) const {
    kernels<D>::gemm(ctx, true, false, out, in, n, T(1), dy, out, 0, x, ldx ? ldx : in, 0, T(1), dw, in, 0, 1);
    if (dx)
      kernels<D>::gemm(ctx, false, false, n, in, out, T(1), dy, out, 0, w, in, 0, T(accumulate_dx ? 1 : 0), dx,
                       ldx ? ldx : in, 0, 1);
  }
};

ETRM_END_NAMESPACE
