// SPDX-License-Identifier: Apache-2.0
// Memory functions shared by the two host backends (reference and CPU): aligned heap
// allocation and memcpy/memset transfers.
#pragma once

#include <etrm/core/config.hpp>

#include <cstdlib>
#include <cstring>
#include <new>

ETRM_BEGIN_NAMESPACE
namespace backend::host {

template <class Context>
struct host_memory {
  static void* allocate(std::size_t bytes) {
    void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void deallocate(void* p) noexcept { std::free(p); }
  static void copy(Context&, void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  static void to_host(Context&, void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  static void from_host(Context&, void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  static void zero(Context&, void* dst, std::size_t bytes) { std::memset(dst, 0, bytes); }
  static void synchronize(Context&) {}
};

}  // namespace backend::host
ETRM_END_NAMESPACE
