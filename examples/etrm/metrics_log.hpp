// SPDX-License-Identifier: Apache-2.0
// The run's metrics.jsonl: one JSON object per line, appended and flushed as training goes, and
// cut back to a checkpoint's step when `resume` continues the run. The file can be damaged (a
// run killed in the middle of a line, an edited file): lines that are not a JSON object, or whose
// "step" is not an integer, are dropped, never a reason to stop a resume.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/io/atomic_file.hpp>
#include <etrm/io/error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace etrm_cli {

// Appends JSON lines; flushed after every line so a killed run keeps what it logged. A disabled
// log (ranks other than 0 of a data-parallel run) writes nothing.
class jsonl_log {
 public:
  jsonl_log(const std::filesystem::path& file, bool append, bool enabled = true) : path_(file) {
    if (!enabled) return;
    out_.open(file, append ? std::ios::app : std::ios::trunc);
    if (!out_) throw etrm::io::io_error("cannot write '" + file.string() + "'");
  }
  void write(const nlohmann::json& j) {
    if (!out_.is_open()) return;
    out_ << j.dump() << '\n';
    out_.flush();
    if (!out_) throw etrm::io::io_error("cannot write '" + path_.string() + "'");
  }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

// The lines of `text` whose "step" is at most `step` (a line without one is kept), each ending in '\n'.
inline std::string metrics_through_step(std::string_view text, etrm::index_t step) {
  std::string kept;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;  // also a line that does not parse (discarded value)
    const auto it = j.find("step");
    if (it != j.end() && (!it->is_number_integer() || it->get<etrm::index_t>() > step)) continue;
    kept.append(line).push_back('\n');
  }
  return kept;
}

// Keeps the lines of an earlier run up to `step` (a resumed run rewrites what came after).
inline void truncate_metrics(const std::filesystem::path& file, etrm::index_t step) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return;
  std::ostringstream text;
  text << in.rdbuf();
  in.close();
  etrm::io::write_file_atomic(file, metrics_through_step(text.str(), step));
}

}  // namespace etrm_cli
