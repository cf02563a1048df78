// SPDX-License-Identifier: Apache-2.0
// Whole TRM training steps on the CPU backend against the reference backend: attention with
// RoPE, attention with learned positions, the mlp_t token mixer, and HRM's hierarchical
// recursion (the per-op comparisons are in ops_cpu_test.cpp, the ETRM one in etrm_encoder_test.cpp).
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

using namespace etrm;

TEST_SUITE("cpu vs reference: training steps") {
  TEST_CASE("attention + rope") {
    const trm_config c = tiny::config(false, 2, 2);
    tiny::check_cpu_matches_reference<tiny::attention>(c, [&](std::uint64_t s) { return tiny::batch(c, 4, s); });
  }
  TEST_CASE("attention + learned positions") {
    trm_config c = tiny::config(false, 2, 2);
    c.pos_encodings = pos_encoding::learned;
    tiny::check_cpu_matches_reference<tiny::attention>(c, [&](std::uint64_t s) { return tiny::batch(c, 4, s); });
  }
  TEST_CASE("mlp_t") {
    const trm_config c = tiny::config(true, 2, 2);
    tiny::check_cpu_matches_reference<tiny::mlp_t>(c, [&](std::uint64_t s) { return tiny::batch(c, 4, s); });
  }
  TEST_CASE("HRM: hierarchical recursion with the continue target") {
    const trm_config c = tiny::hrm_config(2, 3);
    tiny::check_cpu_matches_reference<tiny::attention, puzzle_id_prefix, dynamic_hierarchical_recursion>(
        c, [&](std::uint64_t s) { return tiny::batch(c, 4, s); });
  }
}
