// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: any bytes as a safetensors file (a checkpoint or `etrm infer`'s input).
// Every tensor is read under each accessor, then the bytes are read as an infer input of a small
// TRM and a small ETRM. Only io_error may come out; anything else is a finding.
#include "infer_input.hpp"

#include <etrm/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using etrm::io::io_error;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto f = etrm::io::safetensors_file::parse(bytes, "fuzz.safetensors");
    for (const auto& name : f.names()) {
      for (auto read : {+[](const etrm::io::safetensors_file& s, const std::string& n) { (void)s.read_f32(n); },
                        +[](const etrm::io::safetensors_file& s, const std::string& n) { (void)s.read_f64(n); },
                        +[](const etrm::io::safetensors_file& s, const std::string& n) { (void)s.read_i32(n); },
                        +[](const etrm::io::safetensors_file& s, const std::string& n) { (void)s.read_i64(n); }}) {
        try {
          read(f, name);
        } catch (const io_error&) {
        }
      }
      (void)f.bytes(name);
    }
    etrm::trm_config c;
    c.seq_len = 4;
    c.vocab_size = 6;
    c.num_puzzle_identifiers = 3;
    try {
      (void)etrm_cli::read_infer_input(f, c, std::nullopt);
    } catch (const io_error&) {
    }
    try {
      (void)etrm_cli::read_infer_input(f, c, etrm_cli::infer_context_shape{2, 8});
    } catch (const io_error&) {
    }
  } catch (const io_error&) {
  }
  return 0;
}
