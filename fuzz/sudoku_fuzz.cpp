// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: any bytes as a Sudoku file; the first byte picks the format (even: the
// Sudoku-Extreme CSV, odd: the sudoku-exchange bank). Only data_error may come out.
#include <etrm/data/sudoku.hpp>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = etrm::data;
  if (size == 0) return 0;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  try {
    if (data[0] % 2 == 0)
      (void)d::load_sudoku_extreme_csv(in, "fuzz.csv");
    else
      (void)d::load_sudoku_bank(in, "fuzz.txt");
  } catch (const d::data_error&) {
  }
  return 0;
}
