// SPDX-License-Identifier: Apache-2.0
// Device tags and the device trait. A device is a plain tag type; everything a backend
// needs at run time lives in its explicit `context` (no globals). `device_traits<D>` has no
// primary definition, so an unknown device is a compile error.
//
// Each specialisation provides:
//   using context = ...;                                   // stream/handles/thread arena
//   static void* allocate(std::size_t bytes);               // device memory, 256-byte aligned
//   static void deallocate(void* p) noexcept;
//   static void copy(context&, void* dst, const void* src, std::size_t bytes);   // device->device
//   static void to_host(context&, void* dst, const void* src, std::size_t bytes);
//   static void from_host(context&, void* dst, const void* src, std::size_t bytes);
//   static void zero(context&, void* dst, std::size_t bytes);
//   static void synchronize(context&);
//   static constexpr const char* name;
// and `kernels<D>` (declared below, specialised by each backend) implements the numeric
// primitives; their list is the concept `kernel_set` in ops/kernels.hpp.
#pragma once

#include <etrm/core/config.hpp>

#include <concepts>
#include <cstddef>

ETRM_BEGIN_NAMESPACE

struct reference_device {};
struct cpu_device {};
struct cuda_device {};

template <class D>
struct device_traits;  // specialised per backend only

template <class D>
using context_t = typename device_traits<D>::context;

// The numeric primitives of a backend; specialised next to its device_traits.
template <class D>
struct kernels;

template <class D>
concept device = requires(void* p, const void* q, std::size_t n, context_t<D>& ctx) {
  { device_traits<D>::allocate(n) } -> std::same_as<void*>;
  device_traits<D>::deallocate(p);
  device_traits<D>::copy(ctx, p, q, n);
  device_traits<D>::to_host(ctx, p, q, n);
  device_traits<D>::from_host(ctx, p, q, n);
  device_traits<D>::zero(ctx, p, n);
  device_traits<D>::synchronize(ctx);
};

// True for backends whose memory the host can read directly.
template <class D>
inline constexpr bool host_accessible = false;
template <>
inline constexpr bool host_accessible<reference_device> = true;
template <>
inline constexpr bool host_accessible<cpu_device> = true;

ETRM_END_NAMESPACE
