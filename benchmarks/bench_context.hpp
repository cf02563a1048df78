// SPDX-License-Identifier: Apache-2.0
// The CPU context of the step benchmarks, set from the environment so one binary serves
// tools/bench_compare.py's settings: ETRM_BENCH_THREADS (default: all cores) and
// ETRM_BENCH_GEMM (eigen or onednn; default: the build's provider).
#pragma once

#include <etrm/etrm.hpp>

#include <cstdlib>
#include <stdexcept>
#include <string_view>

inline etrm::context_t<etrm::cpu_device> bench_context(etrm::gemm_precision precision = etrm::gemm_precision::fp32) {
  const char* threads = std::getenv("ETRM_BENCH_THREADS");
  etrm::context_t<etrm::cpu_device> ctx(threads ? std::atoi(threads) : 0, precision);
  if (const char* provider = std::getenv("ETRM_BENCH_GEMM")) {
    const std::string_view p(provider);
    if (p != "eigen" && p != "onednn")
      throw std::invalid_argument("ETRM_BENCH_GEMM must be eigen or onednn, not '" + std::string(p) + "'");
    ctx.set_gemm_provider(p == "eigen" ? etrm::gemm_provider::eigen : etrm::gemm_provider::onednn);
  }
  return ctx;
}
