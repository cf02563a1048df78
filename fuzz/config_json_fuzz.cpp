// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: any bytes as a configuration: the `etrm` run description (--config files,
// `train_state.run` in a checkpoint: trm_config, encoder config, optimizer, data and budget
// options) and as a checkpoint's `config` metadata. Errors must be exceptions the CLI reports in
// one line (io_error, invalid_argument, nlohmann's); a crash, a sanitizer report or an abort is
// a finding.
#include "spec.hpp"

#include <etrm/train/checkpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto j = etrm::io::parse_json_bounded(text, [](const std::string& m) { throw etrm::io::io_error(m); });
    etrm_cli::run_spec r = etrm_cli::spec_from_json(j);
    r.cfg.validate();
  } catch (const std::exception&) {
  }
  etrm::io::safetensors_writer w;
  w.set_metadata("config", text);
  try {
    const auto f = etrm::io::safetensors_file::parse(w.serialize(), "fuzz.safetensors");
    etrm::read_checkpoint_config(f).validate();
  } catch (const std::invalid_argument&) {  // the writer refuses text that is not UTF-8; validate()
  } catch (const etrm::io::io_error&) {
  }
  return 0;
}
