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
cmake --preset release
cmake --build --preset release
ctest --preset release
