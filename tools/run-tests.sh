#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command: installs what is missing, builds everything in Release (CUDA targets too
# when nvcc is present) and runs the whole test suite. Real ARC/Sudoku data is read from
# ETRM_DATA_DIR (default: ../shared/data beside the checkout when it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if [ -z "${ETRM_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export ETRM_DATA_DIR="$(cd ../shared/data && pwd)"
fi
# oneDNN's OpenMP workers spin after every GEMM by default; with ctest running two test processes
# on two cores that spinning takes the cores the other process needs (a test took 2-3x longer).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
cmake --preset release
cmake --build --preset release
ctest --preset release

# Reliability (docs/RELIABILITY.md): every fuzz target for a short time (ETRM_SKIP_FUZZ=1 leaves
# it out); with ETRM_SANITIZERS=1 also a subset of the unit tests under AddressSanitizer +
# UndefinedBehaviorSanitizer and, for the oneTBB-parallel code, ThreadSanitizer.
if [ -z "${ETRM_SKIP_FUZZ:-}" ]; then
  tools/fuzz.sh all "${ETRM_FUZZ_SECONDS:-20}"
fi
if [ -n "${ETRM_SANITIZERS:-}" ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan --target etrm_sanitizer_tests
  build/asan/tests/etrm_sanitizer_tests
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan --target etrm_sanitizer_tests
  TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/etrm_sanitizer_tests \
    -ts='ops cpu vs reference,cpu vs reference: training steps'
fi
