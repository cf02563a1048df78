// SPDX-License-Identifier: Apache-2.0
// Workspace arena: one aligned device allocation handed out as typed slices, reset per
// step. The first step may overflow into extra blocks (freed again on rewind, so the high-water
// mark is the true peak); the next reset() folds them into one block of the high-water size,
// so a steady-state training step allocates nothing.
#pragma once

#include <etrm/core/tensor.hpp>

#include <cstddef>
#include <vector>

ETRM_BEGIN_NAMESPACE

template <class D>
class workspace {
 public:
  static constexpr std::size_t alignment = 256;  // cuBLAS and AVX-512 friendly

  workspace() = default;
  explicit workspace(std::size_t bytes) { reserve(bytes); }
  workspace(const workspace&) = delete;
  workspace& operator=(const workspace&) = delete;
  ~workspace() { release_all(); }

  void reserve(std::size_t bytes) {
    if (bytes <= capacity_) return;
    release_all();
    main_ = device_traits<D>::allocate(bytes);
    capacity_ = bytes;
    ++allocations_;
  }

  // n elements of T, uninitialised, valid until the next reset().
  template <class T>
  T* take(index_t n) {
    const std::size_t bytes = round_up(std::size_t(n) * sizeof(T));
    used_ += bytes;
    high_water_ = std::max(high_water_, used_);
    if (used_ <= capacity_) return reinterpret_cast<T*>(static_cast<char*>(main_) + (used_ - bytes));
    overflow_.push_back({device_traits<D>::allocate(bytes), used_ - bytes});
    ++allocations_;
    return static_cast<T*>(overflow_.back().ptr);
  }
  template <class T, int R>
  tensor_view<T, R> take(std::array<index_t, R> shape) {
    tensor_view<T, R> v(nullptr, shape);
    v.data = take<T>(v.size());
    return v;
  }

  // Everything taken since the mark is returned by rewind(mark); used for scratch inside a
  // step whose results must outlive the scratch.
  std::size_t mark() const { return used_; }
  void rewind(std::size_t m) {
    while (!overflow_.empty() && overflow_.back().start >= m) {
      device_traits<D>::deallocate(overflow_.back().ptr);
      overflow_.pop_back();
    }
    used_ = m;
  }

  void reset() {
    if (!overflow_.empty() || high_water_ > capacity_) {
      const std::size_t want = high_water_;
      release_all();
      reserve(want);
    }
    used_ = 0;
  }

  std::size_t capacity() const { return capacity_; }
  std::size_t high_water() const { return high_water_; }
  std::size_t allocations() const { return allocations_; }

 private:
  static std::size_t round_up(std::size_t b) { return (b + alignment - 1) / alignment * alignment; }
  void release_all() {
    for (const auto& o : overflow_) device_traits<D>::deallocate(o.ptr);
    overflow_.clear();
    if (main_) device_traits<D>::deallocate(main_);
    main_ = nullptr;
    capacity_ = 0;
  }
  void* main_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;
  std::size_t high_water_ = 0;
  std::size_t allocations_ = 0;
  struct overflow_block {
    void* ptr;
    std::size_t start;  // logical offset where the block begins
  };
  std::vector<overflow_block> overflow_;
};

ETRM_END_NAMESPACE
