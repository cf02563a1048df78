// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: any bytes as an ARC task file, then, when it loads, the task through the
// dataset (leakage check, augmentation draws, encoding of every example of both splits) and
// through ETRM's episode shape check. Only data_error may come out of the loader.
#include <etrm/data/arc.hpp>
#include <etrm/data/arc_dataset.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = etrm::data;
  d::task t;
  try {
    t = d::parse_arc_task_text(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", "fuzz.json");
  } catch (const d::data_error&) {
    return 0;
  }
  d::arc_dataset_config cfg;
  cfg.num_aug = 2;
  d::task evaluation = t;
  evaluation.id = "other";
  const d::arc_dataset ds({t}, {evaluation}, cfg);
  std::vector<std::int32_t> inputs(d::arc_seq_len), labels(d::arc_seq_len);
  for (const auto split : {d::arc_split::train, d::arc_split::test}) {
    const auto view = ds.split(split);
    for (std::size_t g = 0; g < view.num_groups(); ++g)
      for (std::size_t p = 0; p < view.num_puzzles(g); ++p)
        for (std::size_t e = 0; e < view.num_examples(g, p); ++e) view.encode(g, p, e, inputs, labels);
  }
  return 0;
}
