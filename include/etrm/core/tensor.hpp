// SPDX-License-Identifier: Apache-2.0
// Tensors: a non-owning view (pointer + runtime extents, rank a template parameter) and an
// owning buffer in a device's memory. Views are row-major and contiguous; ops take raw
// pointers plus extents so that the same view works on every backend.
#pragma once

#include <etrm/core/device.hpp>

#include <array>
#include <cassert>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

ETRM_BEGIN_NAMESPACE

template <class T, int Rank>
struct tensor_view {
  static_assert(Rank >= 1);
  T* data = nullptr;
  std::array<index_t, Rank> shape{};

  tensor_view() = default;
  tensor_view(T* p, std::array<index_t, Rank> s) : data(p), shape(s) {}
  template <class U>
    requires(std::is_convertible_v<U*, T*>)
  tensor_view(const tensor_view<U, Rank>& o) : data(o.data), shape(o.shape) {}

  index_t size() const {
    return std::accumulate(shape.begin(), shape.end(), index_t{1}, std::multiplies<>());
  }
  index_t extent(int i) const { return shape[i]; }
  // Row-major offset of a multi-index; host-side helper for tests and host backends.
  template <class... I>
  index_t offset(I... idx) const {
    static_assert(sizeof...(I) == Rank);
    const std::array<index_t, Rank> ix{index_t(idx)...};
    index_t o = 0;
    for (int d = 0; d < Rank; ++d) o = o * shape[d] + ix[d];
    return o;
  }
  template <class... I>
  T& operator()(I... idx) const {
    return data[offset(idx...)];
  }
  // Reinterprets the same memory with another shape of equal size.
  template <int R2>
  tensor_view<T, R2> reshape(std::array<index_t, R2> s) const {
    tensor_view<T, R2> v(data, s);
    assert(v.size() == size());
    return v;
  }
  tensor_view<T, 1> flat() const { return {data, {size()}}; }
};

// Owning, uninitialised device memory for n elements of T.
template <class T, class D>
class buffer {
 public:
  buffer() = default;
  explicit buffer(index_t n) : n_(n) {
    if (n > 0) p_ = static_cast<T*>(device_traits<D>::allocate(std::size_t(n) * sizeof(T)));
  }
  buffer(const buffer&) = delete;
  buffer& operator=(const buffer&) = delete;
  buffer(buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  buffer& operator=(buffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~buffer() { release(); }

  T* data() const { return p_; }
  index_t size() const { return n_; }
  template <int R>
  tensor_view<T, R> view(std::array<index_t, R> shape) const {
    tensor_view<T, R> v(p_, shape);
    if (v.size() > n_) throw std::length_error("etrm: view larger than its buffer");
    return v;
  }
  tensor_view<T, 1> view() const { return {p_, {n_}}; }

 private:
  void release() noexcept {
    if (p_) device_traits<D>::deallocate(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  index_t n_ = 0;
};

// Host <-> device transfers of whole arrays.
template <class D, class T>
std::vector<T> to_host(context_t<D>& ctx, const T* src, index_t n) {
  std::vector<T> out(static_cast<std::size_t>(n));
  if (n) device_traits<D>::to_host(ctx, out.data(), src, std::size_t(n) * sizeof(T));
  device_traits<D>::synchronize(ctx);
  return out;
}
template <class D, class T>
void from_host(context_t<D>& ctx, T* dst, const std::vector<T>& src) {
  if (!src.empty()) device_traits<D>::from_host(ctx, dst, src.data(), src.size() * sizeof(T));
}
template <class T, class D>
buffer<T, D> make_buffer(context_t<D>& ctx, const std::vector<T>& host) {
  buffer<T, D> b(index_t(host.size()));
  from_host<D>(ctx, b.data(), host);
  return b;
}

ETRM_END_NAMESPACE
