// SPDX-License-Identifier: Apache-2.0
// The layer contract, in code. Every layer static_asserts `layer<L, D, T>`;
// testing/gradcheck_layer.hpp checks any class that satisfies it.
//
// A layer is a plain class holding parameter offsets into one flat buffer and its sizes; it
// keeps no state between calls. For a scalar type T it has:
//   arity                          how many differentiable inputs it reads
//   shape<T>                       what a call needs besides weights and inputs: sizes and
//                                  constant side inputs (RoPE tables, a key mask)
//   input_sizes(shape)             elements of each input; output_size(shape): of the output
//   saved<T>                       what backward needs, owned by the caller
//   take(saved, ws, shape)         carves `saved` from the arena
//   forward(ctx, p, shape, inputs, y, saved*, ws)
//                                  saved == nullptr: the no-grad path (scratch only)
//   backward(ctx, p, shape, inputs, y, saved, dy, input_grads, g, ws)
//                                  input gradients assigned, parameter gradients accumulated
//                                  into g, the flat gradient buffer laid out like p
// Every call takes the arena as its last argument and leaves it as it found it.
//
// A context source fills the prefix rows of the decoder's input x (TRM's puzzle table, the
// ETRM demo encoder): context_width() int32 values of context per row, take(saved, ws, B),
// forward(ctx, p, B, tokens, context, x, x_stride, scale, saved*, ws) writing x[b, 0:P·D] (it
// also sees the query tokens [B, L] and x's token rows, which it may rewrite) and
// backward(ctx, p, B, tokens, context, saved, dx, x_stride, scale, g, ws) consuming dx[b, 0:P·D]
// (and mapping the token rows' gradient back if it rewrote them). What only some sources do is a
// capability of its own below.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <etrm/core/arena.hpp>
#include <etrm/ops/functors.hpp>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

// A device that only declares its trait: each layer header checks its contract against it
// (`static_assert(layer<L<archetype_device>, archetype_device, float>)`) without a backend.
struct archetype_device {};
template <>
struct device_traits<archetype_device> {
  struct context {};
  static void* allocate(std::size_t bytes);
  static void deallocate(void* p) noexcept;
  static void copy(context&, void* dst, const void* src, std::size_t bytes);
  static void to_host(context&, void* dst, const void* src, std::size_t bytes);
  static void from_host(context&, void* dst, const void* src, std::size_t bytes);
  static void zero(context&, void* dst, std::size_t bytes);
  static void synchronize(context&);
  static constexpr const char* name = "archetype";
};

template <class T, std::size_t N>
using layer_inputs = std::array<const T*, N>;
template <class T, std::size_t N>
using layer_grads = std::array<T*, N>;

template <class L, class D, class T>
concept layer = device<D> && requires {
  typename std::integral_constant<std::size_t, L::arity>;
} && requires(const L& l, context_t<D>& ctx, const T* p, const typename L::template shape<T>& shape,
              typename L::template saved<T>& s, workspace<D>& ws, layer_inputs<T, L::arity> in, T* y, const T* dy,
              layer_grads<T, L::arity> dx, T* g) {
  { l.input_sizes(shape) } -> std::same_as<std::array<index_t, L::arity>>;
  { l.output_size(shape) } -> std::same_as<index_t>;
  l.take(s, ws, shape);
  l.forward(ctx, p, shape, in, y, &s, ws);
  l.forward(ctx, p, shape, in, y, nullptr, ws);
  l.backward(ctx, p, shape, in, y, s, dy, dx, g, ws);
};

// What forward writes its activations to: the caller's saved, or, on the no-grad path, scratch
// carved from the arena (forward rewinds it).
template <class T, class L, class D, class Shape>
typename L::template saved<T> saved_or_scratch(const L& l, const typename L::template saved<T>* s, workspace<D>& ws,
                                               const Shape& shape) {
  if (s) return *s;
  typename L::template saved<T> scratch;
  l.take(scratch, ws, shape);
  return scratch;
}

template <class C, class D, class T>
concept context_source = device<D> &&
    requires(const C& c, context_t<D>& ctx, const T* p, index_t rows, const std::int32_t* ids, T* x, index_t x_stride,
             T scale, typename C::saved& s, workspace<D>& ws, T* g) {
  { c.context_width() } -> std::same_as<index_t>;
  c.take(s, ws, rows);
  c.forward(ctx, p, rows, ids, ids, x, x_stride, scale, &s, ws);
  c.forward(ctx, p, rows, ids, ids, x, x_stride, scale, nullptr, ws);
  c.backward(ctx, p, rows, ids, ids, s, x, x_stride, scale, g, ws);
};

// A table outside the parameters (absent from the parameter count, saved in checkpoints),
// updated after backward from per-row gradients kept in saved.local_grad [B, ndim]: TRM's
// puzzle embeddings with SignSGD. The trainer all-gathers those rows across ranks.
template <class C, class D, class T>
concept sparse_table_source = context_source<C, D, T> &&
    requires(C& c, const C& cc, context_t<D>& ctx, index_t rows, const std::int32_t* ids, const typename C::saved& s,
             T lr) {
  { cc.ndim() } -> std::same_as<index_t>;
  { cc.rows() } -> std::same_as<index_t>;
  { c.table() } -> std::same_as<T*>;
  { C::table_name } -> std::convertible_to<const char*>;
  { s.local_grad } -> std::convertible_to<const T*>;
  c.sparse_update(ctx, rows, ids, s, lr, lr);
};

// An auxiliary loss of the source's own on a taped forward (the encoder's readout of the
// query cells): returns each row's loss [B] (null when switched off), accumulates its parameter
// gradients into g and keeps what backward needs in saved.
template <class C, class D, class T>
concept readout_source = context_source<C, D, T> &&
    requires(const C& c, context_t<D>& ctx, const T* p, index_t rows, typename C::saved& s, const std::int32_t* labels,
             ops::loss_kind kind, T scale, T* g, workspace<D>& ws) {
  { c.readout_loss(ctx, p, rows, s, labels, kind, scale, g, ws) } -> std::same_as<const T*>;
};

// Test-time adaptation: an offset [B, K·D] added to the context tokens, and its gradient.
template <class C, class D, class T>
concept offset_source = context_source<C, D, T> && requires(C& c, const T* offset, T* grad) {
  c.set_context_offset(offset, grad);
};

ETRM_END_NAMESPACE
