// SPDX-License-Identifier: Apache-2.0
// Umbrella header: core, the reference and CPU backends, layers, models, training and data.
// The CUDA backend has its own umbrella, etrm_cuda.cuh (needs nvcc).
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/core/bfloat16.hpp>
#include <etrm/core/config.hpp>
#include <etrm/core/device.hpp>
#include <etrm/core/init.hpp>
#include <etrm/core/params.hpp>
#include <etrm/core/precision.hpp>
#include <etrm/core/rng.hpp>
#include <etrm/core/tensor.hpp>

#include <etrm/backend/cpu/cpu.hpp>
#include <etrm/backend/reference/reference.hpp>

#include <etrm/data/grid.hpp>

#include <etrm/layers/attention.hpp>
#include <etrm/layers/block.hpp>
#include <etrm/layers/contract.hpp>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>
#include <etrm/layers/rope.hpp>
#include <etrm/layers/swiglu_mlp.hpp>
#include <etrm/layers/token_mlp.hpp>

#include <etrm/model/config.hpp>
#include <etrm/model/puzzle_prefix.hpp>
#include <etrm/model/reasoning_net.hpp>
#include <etrm/model/trm.hpp>
#include <etrm/recursion/policy.hpp>

#include <etrm/train/batch.hpp>
#include <etrm/train/optimizer.hpp>
#include <etrm/train/schedule.hpp>
#include <etrm/train/trainer.hpp>
#include <etrm/train/numerical_guard.hpp>

#include <etrm/testing/compare.hpp>
#include <etrm/testing/gradcheck.hpp>
#include <etrm/testing/gradcheck_layer.hpp>
#include <etrm/layers/cross_attention.hpp>
#include <etrm/model/demo_encoder.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/token_batch.hpp>
#include <etrm/train/checkpoint.hpp>
#include <etrm/train/collapse_monitor.hpp>
#include <etrm/train/context_adaptation.hpp>
#include <etrm/train/task_rows.hpp>
#include <etrm/train/weight_adaptation.hpp>
#include <etrm/train/task_solver.hpp>
#include <etrm/model/presets.hpp>
#include <etrm/data/render.hpp>
