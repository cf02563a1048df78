// SPDX-License-Identifier: Apache-2.0
// The one optimizer update of etrm, used by the trainer and by both test-time adapters:
// AdamATan2 (TRM's) or AdamW over a flat range of parameters, with bias correction.
#pragma once

#include <etrm/core/device.hpp>
#include <etrm/train/schedule.hpp>

#include <cmath>

ETRM_BEGIN_NAMESPACE

// p, g, m, v: [n]; g is read, m and v are the moments; `step` counts from 1.
template <class D, class T>
void optimizer_update(context_t<D>& ctx, const optimizer_config& o, index_t n, T* p, const T* g, T* m, T* v, double lr,
                      index_t step) {
  if (n <= 0) return;
  const T bc1 = T(1 - std::pow(o.beta1, double(step))), bc2 = T(1 - std::pow(o.beta2, double(step)));
  if (o.kind == optimizer_kind::adam_atan2)
    kernels<D>::adam_atan2(ctx, n, p, g, m, v, T(lr), T(o.weight_decay), T(o.beta1), T(o.beta2), bc1, bc2);
  else
    kernels<D>::adamw(ctx, n, p, g, m, v, T(lr), T(o.weight_decay), T(o.beta1), T(o.beta2), bc1, bc2, T(o.eps));
}

// Test-time adaptation's optimizer: plain Adam (β = 0.9, 0.999, no weight decay).
inline optimizer_config adaptation_optimizer() {
  optimizer_config o;
  o.kind = optimizer_kind::adamw;
  o.weight_decay = 0;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.eps = 1e-8;
  return o;
}

ETRM_END_NAMESPACE
