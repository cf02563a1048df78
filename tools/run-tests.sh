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

# Reliability (docs/RELIABILITY.md): every fuzz target for a short time, then the loaders' and the
# numerical guard's unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the guard's
# training steps (two oneTBB threads) and the parallel ARC loaders under ThreadSanitizer (with the
# suppressions of oneTBB's uninstrumented internals, tests/tsan.supp). ETRM_SKIP_FUZZ=1 and
# ETRM_SKIP_SANITIZERS=1 leave them out.
if [ -z "${ETRM_SKIP_FUZZ:-}" ]; then
  tools/fuzz.sh all "${ETRM_FUZZ_SECONDS:-30}"
fi
if [ -z "${ETRM_SKIP_SANITIZERS:-}" ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan --target etrm_sanitizer_ci_tests
  build/asan/tests/etrm_sanitizer_ci_tests
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan --target etrm_sanitizer_ci_tests
  TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" build/tsan/tests/etrm_sanitizer_ci_tests \
    -sf='*numerical_guard*,*data_arc*'
fi
