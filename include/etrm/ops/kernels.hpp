// SPDX-License-Identifier: Apache-2.0
// The list of numeric primitives every backend implements, as a concept: `kernels<D>` for
// T = float (and each scalar type the backend serves) satisfies `kernel_set<D, T>`. Each
// backend static_asserts it next to its specialisation; the shapes of each primitive are in
// backend/host/host_kernels.hpp, the reference implementation.
#pragma once

#include <concepts>
#include <cstdint>
#include <etrm/core/device.hpp>
#include <etrm/core/rng.hpp>
#include <etrm/ops/functors.hpp>

ETRM_BEGIN_NAMESPACE

namespace ops {
// A for_each body: called once per index.
struct index_fn {
  ETRM_HD void operator()(index_t) const {}
};
}  // namespace ops

template <class D, class T>
concept kernel_set = requires(context_t<D>& ctx, index_t n, T s, T* y, const T* x, const std::int32_t* ids,
                              std::int32_t* out_ids, const std::uint8_t* flags, std::uint8_t* halted,
                              ops::loss_kind loss, ops::reduce_op reduce, philox_key key, bool b) {
  // GEMM: C = α · op(A) · op(B) + β · C, strided batches
  kernels<D>::gemm(ctx, b, b, n, n, n, s, x, n, n, x, n, n, s, y, n, n, n);
  // element-wise
  kernels<D>::fill(ctx, n, s, y);
  kernels<D>::map(ctx, n, ops::copy_fn<T>{}, y, x);
  kernels<D>::for_each(ctx, n, ops::index_fn{});
  kernels<D>::swiglu(ctx, n, n, x, y);
  kernels<D>::swiglu_backward(ctx, n, n, x, x, y);
  // rows
  kernels<D>::row_softmax(ctx, n, n, x, y);
  kernels<D>::row_softmax_backward(ctx, n, n, x, x, y);
  kernels<D>::add_row_bias(ctx, n, n, n, x, y);
  kernels<D>::row_reduce(ctx, n, n, reduce, x, y);
  kernels<D>::column_sum_add(ctx, n, n, x, y);
  kernels<D>::rms_norm(ctx, n, n, s, x, y, y);
  kernels<D>::rms_norm_backward(ctx, n, n, x, x, x, y);
  // layout
  kernels<D>::copy_2d(ctx, n, n, x, n, y, n, s);
  kernels<D>::copy_2d(ctx, n, n, ids, n, out_ids, n, std::int32_t(1));
  kernels<D>::transpose(ctx, n, n, n, x, y);
  kernels<D>::permute_0213(ctx, n, n, n, n, x, y);
  kernels<D>::split_heads_rope(ctx, n, n, n, n, x, x, x, y, y, y);
  kernels<D>::merge_heads_rope_backward(ctx, n, n, n, n, x, x, x, x, x, y);
  kernels<D>::gather_rows(ctx, n, n, n, ids, x, s, y, n);
  kernels<D>::scatter_add_rows(ctx, n, n, n, ids, x, n, s, y);
  kernels<D>::reset_rows(ctx, n, n, n, flags, x, x, y, y);
  kernels<D>::select_rows(ctx, n, n, flags, x, y);
  kernels<D>::select_rows(ctx, n, n, flags, ids, out_ids);
  // losses and ACT
  kernels<D>::cross_entropy(ctx, n, n, n, n, loss, x, ids, s, y, out_ids, out_ids, y, out_ids);
  kernels<D>::halt_loss(ctx, n, x, ids, s, y, y);
  kernels<D>::act_update(ctx, n, std::int32_t(1), b, b, 0.5, key, std::uint64_t(0), x, out_ids, halted);
  // optimizers
  kernels<D>::adam_atan2(ctx, n, y, x, y, y, s, s, s, s, s, s);
  kernels<D>::adamw(ctx, n, y, x, y, y, s, s, s, s, s, s, s);
  kernels<D>::ema(ctx, n, x, y, s);
  kernels<D>::sign_sgd_rows(ctx, n, n, ids, x, y, s, s);
};

ETRM_END_NAMESPACE
