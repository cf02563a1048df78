// SPDX-License-Identifier: Apache-2.0
// The PyTorch parity fixtures on the CPU backend (checks in tests/common/parity_checks.hpp):
// TRM's three variants and HRM (tools/reference/hrm_reference.py).
#include "../common/parity_checks.hpp"

#include <etrm/backend/cpu/cpu.hpp>

namespace {
etrm::context_t<etrm::cpu_device> ctx(2);
const std::filesystem::path fixtures = ETRM_FIXTURE_DIR;
}  // namespace

TEST_SUITE("pytorch parity") {
  TEST_CASE("attention variant") {
    parity::check_parity<etrm::cpu_device, etrm::attention_mixer>(ctx, fixtures / "parity_att.safetensors");
  }
  TEST_CASE("mlp_t variant") {
    parity::check_parity<etrm::cpu_device, etrm::token_mlp_mixer>(ctx, fixtures / "parity_mlp.safetensors");
  }
  TEST_CASE("attention variant, rotary positions by row and column") {
    parity::check_parity<etrm::cpu_device, etrm::attention_mixer>(ctx, fixtures / "parity_rope2d.safetensors");
  }
  TEST_CASE("HRM: two nets, the one-step gradient, halting on q_halt > q_continue with the continue target") {
    parity::check_parity<etrm::cpu_device, etrm::attention_mixer, etrm::dynamic_hierarchical_recursion>(
        ctx, fixtures / "parity_hrm.safetensors");
  }
}
