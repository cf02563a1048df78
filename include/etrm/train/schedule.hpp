// SPDX-License-Identifier: Apache-2.0
// Optimizer settings and the learning-rate schedule (trm-computation.md §4): linear warmup from
// base·step/warmup (step counts from 1), then base·(r + (1 − r)·½(1 + cos(π·progress))) with
// r = lr_min_ratio; TRM's r = 1 makes it constant after warmup.
#pragma once

#include <etrm/core/config.hpp>

#include <algorithm>
#include <cmath>

ETRM_BEGIN_NAMESPACE

enum class optimizer_kind { adam_atan2, adamw };

struct optimizer_config {
  optimizer_kind kind = optimizer_kind::adam_atan2;
  double lr = 1e-4;
  double weight_decay = 0.1;  // applied to every parameter, as in TRM
  double beta1 = 0.9, beta2 = 0.95;
  double eps = 1e-8;  // AdamW only; AdamATan2 has none
  index_t warmup_steps = 2000;
  double lr_min_ratio = 1.0;  // < 1: cosine decay to base·ratio over total_steps
  index_t total_steps = 0;
  double grad_clip = 0.0;     // global-norm clipping; 0 = off (TRM default)
  double ema_rate = 0.999;    // 0 = no EMA
  double puzzle_emb_lr = 1e-2;
  // The prefix source's flat parameters (ETRM: the demo encoder) learn at lr · this.
  double encoder_lr_scale = 1.0;
  double puzzle_emb_weight_decay = 0.1;
};

// Learning rate at optimizer step `step` (1-based) for a base rate.
inline double scheduled_lr(const optimizer_config& o, double base, index_t step) {
  if (step < o.warmup_steps) return base * double(step) / double(std::max<index_t>(1, o.warmup_steps));
  const double progress =
      o.total_steps > o.warmup_steps
          ? std::min(1.0, double(step - o.warmup_steps) / double(o.total_steps - o.warmup_steps))
          : 0.0;
  return base * (o.lr_min_ratio + (1.0 - o.lr_min_ratio) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress)));
}

ETRM_END_NAMESPACE
