// SPDX-License-Identifier: Apache-2.0
// Every primitive of the CPU backend against the reference backend (see tests/common/op_checks.hpp).
#include "../common/op_checks.hpp"

#include <etrm/backend/cpu/cpu.hpp>

#include <stdexcept>
#include <string>

namespace {
etrm::context_t<etrm::cpu_device> cpu_ctx(2);
}

TEST_SUITE("ops cpu vs reference") {
  TEST_CASE("gemm, the default provider") {
    MESSAGE("CPU GEMM provider: " << std::string(etrm::to_string(cpu_ctx.provider())));
    CHECK(cpu_ctx.provider() == etrm::default_gemm_provider);
    op_checks::check_gemm<etrm::cpu_device>(cpu_ctx);
  }
  TEST_CASE("gemm, Eigen") {
    etrm::context_t<etrm::cpu_device> ctx(2);
    ctx.set_gemm_provider(etrm::gemm_provider::eigen);
    op_checks::check_gemm<etrm::cpu_device>(ctx);
  }
#if ETRM_WITH_DNNL
  TEST_CASE("gemm, oneDNN") {
    etrm::context_t<etrm::cpu_device> ctx(2);
    ctx.set_gemm_provider(etrm::gemm_provider::onednn);
    op_checks::check_gemm<etrm::cpu_device>(ctx);
    // oneDNN, not the Eigen fallback, ran the checked shapes (transposed, batched, broadcast).
    using etrm::backend::cpu::onednn::operands;
    for (const bool t : {false, true}) {
      const std::string plain = ctx.onednn->implementation(2, operands::fp32, {t, t, 37, 23, 51, t ? 37 : 51, t ? 51 : 23,
                                                                               23, 37 * 51, 51 * 23, 37 * 23, 3, 0.7f, 0.3f});
      const std::string broadcast = ctx.onednn->implementation(
          2, operands::fp32, {t, t, 37, 23, 51, t ? 37 : 51, t ? 51 : 23, 23, 0, 51 * 23, 37 * 23, 3, 1.f, 1.f});
      MESSAGE("oneDNN matmul, transposed " << t << ": " << plain << ", broadcast A: " << broadcast);
      CHECK(!plain.empty());
    }
  }
#else
  TEST_CASE("gemm, oneDNN is refused in a build without it") {
    etrm::context_t<etrm::cpu_device> ctx(1);
    CHECK_THROWS_AS(ctx.set_gemm_provider(etrm::gemm_provider::onednn), std::invalid_argument);
  }
#endif
  TEST_CASE("elementwise") { op_checks::check_elementwise<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("row ops") { op_checks::check_rows<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("layout and rope") { op_checks::check_layout<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("embedding gather and scatter") { op_checks::check_embedding<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("losses") { op_checks::check_losses<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("act bookkeeping") { op_checks::check_act<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("optimizers") { op_checks::check_optimizers<etrm::cpu_device>(cpu_ctx); }
}
