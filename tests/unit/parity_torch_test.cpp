// SPDX-License-Identifier: Apache-2.0
// The PyTorch parity fixtures on the CPU backend (checks in tests/common/parity_checks.hpp).
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
}
