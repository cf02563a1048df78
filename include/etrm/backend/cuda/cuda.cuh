// SPDX-License-Identifier: Apache-2.0
// The CUDA backend: device_traits<cuda_device> (context.cuh) and kernels<cuda_device>, which
// implements every primitive of backend/host/host_kernels.hpp with the same signatures (the
// context being backend::cuda::context) for float and double, plus gemm on cuBLAS (gemm.cuh).
// Every call is asynchronous on the context's stream; errors throw cuda_error. Needs nvcc.
#pragma once

#include <etrm/backend/cuda/context.cuh>
#include <etrm/backend/cuda/errors.cuh>
#include <etrm/backend/cuda/gemm.cuh>
#include <etrm/backend/cuda/kernels_elementwise.cuh>
#include <etrm/backend/cuda/kernels_layout.cuh>
#include <etrm/backend/cuda/kernels_loss.cuh>
#include <etrm/backend/cuda/kernels_rows.cuh>
#include <etrm/backend/cuda/launch.cuh>
#include <etrm/core/device.hpp>
#include <etrm/ops/kernels.hpp>

ETRM_BEGIN_NAMESPACE

template <>
struct kernels<cuda_device> : backend::cuda::elementwise_ops,
                              backend::cuda::row_ops,
                              backend::cuda::layout_ops,
                              backend::cuda::loss_ops,
                              backend::cuda::gemm_ops {
  using ctx_t = backend::cuda::context;
};
static_assert(kernel_set<cuda_device, float>);

using cuda_context = backend::cuda::context;
using backend::cuda::gemm_precision;

ETRM_END_NAMESPACE
