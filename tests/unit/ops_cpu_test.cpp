// SPDX-License-Identifier: Apache-2.0
// Every primitive of the CPU backend against the reference backend (see tests/common/op_checks.hpp).
#include "../common/op_checks.hpp"

#include <etrm/backend/cpu/cpu.hpp>

namespace {
etrm::context_t<etrm::cpu_device> cpu_ctx(2);
}

TEST_SUITE("ops cpu vs reference") {
  TEST_CASE("gemm") { op_checks::check_gemm<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("elementwise") { op_checks::check_elementwise<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("row ops") { op_checks::check_rows<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("layout and rope") { op_checks::check_layout<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("embedding gather and scatter") { op_checks::check_embedding<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("losses") { op_checks::check_losses<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("act bookkeeping") { op_checks::check_act<etrm::cpu_device>(cpu_ctx); }
  TEST_CASE("optimizers") { op_checks::check_optimizers<etrm::cpu_device>(cpu_ctx); }
}
