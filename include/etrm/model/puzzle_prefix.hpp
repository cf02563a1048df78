// SPDX-License-Identifier: Apache-2.0
// The prefix source of the original TRM: a per-puzzle embedding table (trm-computation.md §1.2).
// It is a buffer, not a parameter: zero-initialised, absent from the parameter count, updated
// by sparse SignSGD on the rows in the batch. The vector fills the first puzzle_emb_ndim
// values of the flattened [P, D] prefix (TRM: prefix token 0); the rest is zero.
// A context_source and a sparse_table_source (layers/contract.hpp).
#pragma once

#include <etrm/core/arena.hpp>
#include <etrm/core/params.hpp>
#include <etrm/layers/contract.hpp>
#include <etrm/model/config.hpp>

#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE

template <class D, class T>
class puzzle_id_prefix {
 public:
  static constexpr const char* table_name = "model.inner.puzzle_emb.weights";

  puzzle_id_prefix(context_t<D>& ctx, param_layout&, const trm_config& c)
      : ndim_(c.puzzle_emb_ndim), rows_(c.num_puzzle_identifiers), prefix_(c.prefix_len() * c.hidden_size),
        table_(rows_ * std::max<index_t>(ndim_, 1)) {
    device_traits<D>::zero(ctx, table_.data(), sizeof(T) * std::size_t(table_.size()));
  }

  index_t context_width() const { return 1; }
  index_t ndim() const { return ndim_; }
  index_t rows() const { return rows_; }
  T* table() { return table_.data(); }
  const T* table() const { return table_.data(); }

  struct saved {
    T* local_grad = nullptr;  // [B, ndim]
  };
  void take(saved& s, workspace<D>& ws, index_t B) const { s.local_grad = ws.template take<T>(B * ndim_); }

  // ids: [B, 1]; x: row b at b·x_stride.
  void forward(context_t<D>& ctx, const T*, index_t B, const std::int32_t*, const std::int32_t* ids, T* x,
               index_t x_stride, T scale, saved*, workspace<D>&) const {
    kernels<D>::copy_2d(ctx, B, prefix_, x, x_stride, x, x_stride, T(0));  // zero the prefix rows
    if (ndim_ > 0) kernels<D>::gather_rows(ctx, B, 1, ndim_, ids, table_.data(), scale, x, x_stride);
  }

  void backward(context_t<D>& ctx, const T*, index_t B, const std::int32_t*, const std::int32_t*, const saved& s,
                const T* dx, index_t x_stride, T scale, T*, workspace<D>&) const {
    if (ndim_ > 0) kernels<D>::copy_2d(ctx, B, ndim_, dx, x_stride, s.local_grad, ndim_, scale);
  }

  void sparse_update(context_t<D>& ctx, index_t B, const std::int32_t* ids, const saved& s, T lr, T wd) {
    if (ndim_ > 0) kernels<D>::sign_sgd_rows(ctx, B, ndim_, ids, s.local_grad, table_.data(), lr, wd);
  }

 private:
  index_t ndim_, rows_, prefix_;
  buffer<T, D> table_;
};
static_assert(sparse_table_source<puzzle_id_prefix<archetype_device, float>, archetype_device, float>);

ETRM_END_NAMESPACE
