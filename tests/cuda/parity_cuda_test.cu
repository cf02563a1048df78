// SPDX-License-Identifier: Apache-2.0
// The PyTorch parity fixtures on the CUDA backend: the same checks as on the CPU
// (tests/common/parity_checks.hpp) with the model, trainer and optimizers on the GPU.
#include "../common/parity_checks.hpp"
#include "cuda_test_util.cuh"

#include <etrm/etrm_cuda.cuh>

#include <cstdlib>

namespace {
// Binaries built here run on a GPU machine from another checkout: the environment may point at it.
const std::filesystem::path fixtures = std::getenv("ETRM_FIXTURE_DIR") ? std::getenv("ETRM_FIXTURE_DIR") : ETRM_FIXTURE_DIR;
}  // namespace

TEST_SUITE("pytorch parity on cuda") {
  TEST_CASE("cuda parity, attention variant") {
    CUDA_TEST_REQUIRE_GPU();
    parity::check_parity<etrm::cuda_device, etrm::attention_mixer>(cuda_test::ctx(), fixtures / "parity_att.safetensors");
  }
  TEST_CASE("cuda parity, mlp_t variant") {
    CUDA_TEST_REQUIRE_GPU();
    parity::check_parity<etrm::cuda_device, etrm::token_mlp_mixer>(cuda_test::ctx(), fixtures / "parity_mlp.safetensors");
  }
  TEST_CASE("cuda parity, attention variant, rotary positions by row and column") {
    CUDA_TEST_REQUIRE_GPU();
    parity::check_parity<etrm::cuda_device, etrm::attention_mixer>(cuda_test::ctx(), fixtures / "parity_rope2d.safetensors");
  }
  TEST_CASE("cuda parity, HRM") {
    CUDA_TEST_REQUIRE_GPU();
    parity::check_parity<etrm::cuda_device, etrm::attention_mixer, etrm::dynamic_hierarchical_recursion>(
        cuda_test::ctx(), fixtures / "parity_hrm.safetensors");
  }
}
