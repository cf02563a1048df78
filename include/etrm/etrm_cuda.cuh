// SPDX-License-Identifier: Apache-2.0
// Umbrella header for the CUDA backend (needs nvcc): core, the CUDA backend, layers, models,
// the recursion policy and training. It deliberately leaves out etrm.hpp and the CPU backend,
// so that no Eigen header reaches a .cu translation unit; include the reference backend
// (backend/reference/reference.hpp) as well when comparing against the oracle.
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/core/config.hpp>
#include <etrm/core/device.hpp>
#include <etrm/core/init.hpp>
#include <etrm/core/params.hpp>
#include <etrm/core/rng.hpp>
#include <etrm/core/tensor.hpp>

#include <etrm/backend/cuda/cuda.cuh>

#include <etrm/layers/attention.hpp>
#include <etrm/layers/block.hpp>
#include <etrm/layers/cross_attention.hpp>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/linear.hpp>
#include <etrm/layers/residual_norm.hpp>
#include <etrm/layers/rope.hpp>
#include <etrm/layers/swiglu_mlp.hpp>
#include <etrm/layers/token_mlp.hpp>

#include <etrm/model/config.hpp>
#include <etrm/model/demo_encoder.hpp>
#include <etrm/model/presets.hpp>
#include <etrm/model/puzzle_prefix.hpp>
#include <etrm/model/reasoning_net.hpp>
#include <etrm/model/trm.hpp>
#include <etrm/recursion/policy.hpp>

#include <etrm/train/batch.hpp>
#include <etrm/train/checkpoint.hpp>
#include <etrm/train/schedule.hpp>
#include <etrm/train/trainer.hpp>
