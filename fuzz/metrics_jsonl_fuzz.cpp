// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: any bytes as the metrics.jsonl that `etrm resume` cuts back to the
// checkpoint's step. Nothing may come out: a damaged line is dropped. Whatever is kept must be
// kept again unchanged (cutting twice is cutting once).
#include "metrics_log.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string kept = etrm_cli::metrics_through_step(text, 5);
  if (etrm_cli::metrics_through_step(kept, 5) != kept) std::abort();
  return 0;
}
