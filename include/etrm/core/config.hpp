// SPDX-License-Identifier: Apache-2.0
// Library-wide configuration: version, the ABI-tagged inline namespace, host/device
// annotations and the index type. Every other header includes this one first.
#pragma once

#include <cstddef>
#include <cstdint>

#define ETRM_VERSION_MAJOR 0
#define ETRM_VERSION_MINOR 1
#define ETRM_VERSION_PATCH 0

// 1 where the CPU backend may take its GEMMs from oneDNN (the CMake target etrm::etrm defines it
// and links oneDNN when it finds the library).
#ifndef ETRM_WITH_DNNL
#define ETRM_WITH_DNNL 0
#endif

// Two builds with different settings must fail to link rather than silently mix layouts.
#if ETRM_WITH_DNNL
#define ETRM_ABI_NAMESPACE abi_v0_1_dnnl
#else
#define ETRM_ABI_NAMESPACE abi_v0_1
#endif

#define ETRM_BEGIN_NAMESPACE \
  namespace etrm {           \
  inline namespace ETRM_ABI_NAMESPACE {
#define ETRM_END_NAMESPACE \
  }                        \
  }

#if defined(__CUDACC__)
#define ETRM_HD __host__ __device__ __forceinline__
#else
#define ETRM_HD inline
#endif

ETRM_BEGIN_NAMESPACE
// Signed so that loops over shapes and differences of offsets never wrap.
using index_t = std::int64_t;
ETRM_END_NAMESPACE
