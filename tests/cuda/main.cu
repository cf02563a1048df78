// SPDX-License-Identifier: Apache-2.0
// The doctest main of the CUDA tests. Without a visible GPU every test case skips itself (and
// passes); the main says so once, except when doctest only lists tests (ctest discovery parses
// that output).
#define DOCTEST_CONFIG_IMPLEMENT
#include "cuda_test_util.cuh"

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--list", 6) == 0 || std::strncmp(argv[i], "-l", 2) == 0 ||
        std::strncmp(argv[i], "--dt-list", 9) == 0)
      listing = true;
  if (!listing && !cuda_test::gpu_available()) std::printf("no CUDA device visible: CUDA tests skipped\n");
  doctest::Context context(argc, argv);
  return context.run();
}
