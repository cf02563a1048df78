// SPDX-License-Identifier: Apache-2.0
// ARC task files: `{"train": [{"input": grid, "output": grid}, ...], "test": [...]}`, one task per
// file, the file name (without .json) being the task id. Loads a file, a folder (searched
// recursively, so ConceptARC's `corpus/<Concept>/*.json` works) or a list of those, validating
// every grid; writes tasks back in the same format. Any defect throws `data_error` naming the
// file, the pair ("train[2].output") and the problem.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/grid.hpp>
#include <etrm/io/bounded_read.hpp>
#include <etrm/data/parallel_for.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

inline constexpr int arc_max_side = 30;
inline constexpr int arc_num_colours = 10;
// Limits on untrusted files, far above any real task (ARC files hold at most 10 pairs per split
// and 140 KB): a task with more pairs, or a larger file, is refused before it is parsed further.
inline constexpr std::size_t arc_max_pairs = 1000;
inline constexpr std::uint64_t arc_max_file_bytes = std::uint64_t(16) << 20;

// `where` prefixes the message, e.g. "a.json: train[2].output".
inline grid parse_arc_grid(const nlohmann::json& j, const std::string& where) {
  const auto fail = [&](const std::string& problem) { throw data_error(where + ": " + problem); };
  if (!j.is_array()) fail("grid is not a list of rows");
  if (j.empty()) fail("grid has no rows");
  if (j.size() > std::size_t(arc_max_side))
    fail("grid has " + std::to_string(j.size()) + " rows, more than " + std::to_string(arc_max_side));
  const auto rows = int(j.size());
  if (!j[0].is_array()) fail("row 0 is not a list");
  const auto cols = int(j[0].size());
  if (cols == 0) fail("row 0 is empty");
  if (cols > arc_max_side)
    fail("grid has " + std::to_string(cols) + " columns, more than " + std::to_string(arc_max_side));
  grid g(rows, cols);
  for (int r = 0; r < rows; ++r) {
    const auto& row = j[std::size_t(r)];
    if (!row.is_array()) fail("row " + std::to_string(r) + " is not a list");
    if (int(row.size()) != cols)
      fail("ragged rows: row " + std::to_string(r) + " has " + std::to_string(row.size()) +
           " cells, row 0 has " + std::to_string(cols));
    for (int c = 0; c < cols; ++c) {
      const auto& v = row[std::size_t(c)];
      const std::string cell = "cell (" + std::to_string(r) + "," + std::to_string(c) + ")";
      if (!v.is_number_integer()) fail(cell + " is not an integer");
      const auto value = v.get<long long>();
      if (value < 0 || value >= arc_num_colours)
        fail(cell + " = " + std::to_string(value) + " is not a colour 0..9");
      g.at(r, c) = std::uint8_t(value);
    }
  }
  return g;
}

// A test pair may lack "output" (hidden ARC Prize test sets); it is then left 0x0 and can never
// be scored correct. Demonstration pairs always need one. Extra keys (ARC-AGI-1's "name") are
// ignored.
inline task parse_arc_task(const nlohmann::json& j, std::string id, const std::string& source) {
  if (!j.is_object()) throw data_error(source + ": top level is not a JSON object");
  task t;
  t.id = std::move(id);
  for (const char* split : {"train", "test"}) {
    const std::string name = split;
    const auto it = j.find(name);
    if (it == j.end()) throw data_error(source + ": missing \"" + name + "\" list");
    if (!it->is_array()) throw data_error(source + ": \"" + name + "\" is not a list");
    if (it->empty()) throw data_error(source + ": \"" + name + "\" list is empty");
    if (it->size() > arc_max_pairs)
      throw data_error(source + ": \"" + name + "\" has " + std::to_string(it->size()) + " pairs, more than the limit of " +
                       std::to_string(arc_max_pairs));
    auto& pairs = name == "train" ? t.train : t.test;
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& p = (*it)[i];
      const std::string where = source + ": " + name + "[" + std::to_string(i) + "]";
      if (!p.is_object()) throw data_error(where + ": pair is not an object");
      if (!p.contains("input")) throw data_error(where + ": missing \"input\"");
      grid_pair gp;
      gp.input = parse_arc_grid(p["input"], where + ".input");
      if (p.contains("output"))
        gp.output = parse_arc_grid(p["output"], where + ".output");
      else if (name == "train")
        throw data_error(where + ": missing \"output\"");
      pairs.push_back(std::move(gp));
    }
  }
  return t;
}

// `text` is the content of one task file; `source` names it in errors.
inline task parse_arc_task_text(std::string_view text, std::string id, const std::string& source) {
  const nlohmann::json j =
      io::parse_json_bounded(text, [&](const std::string& problem) { throw data_error(source + ": " + problem); });
  return parse_arc_task(j, std::move(id), source);
}

inline task load_arc_task(const std::filesystem::path& file) {
  const std::string text = io::read_file_bounded<data_error>(file, arc_max_file_bytes, "an ARC task file");
  return parse_arc_task_text(text, file.stem().string(), file.string());
}

namespace detail {
// Sorted so that task order, and with it puzzle identifiers, never depend on the file system.
inline void collect_arc_files(const std::filesystem::path& path, std::vector<std::filesystem::path>& out) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(path)) {
    out.push_back(path);
    return;
  }
  if (!fs::is_directory(path)) throw data_error(path.string() + ": no such file or folder");
  std::vector<fs::path> found;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file() && e.path().extension() == ".json") found.push_back(e.path());
  if (found.empty()) throw data_error(path.string() + ": folder holds no .json task files");
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}
}  // namespace detail

// Files and folders in the given order; task ids must be unique across all of them, since the
// id is what puzzle identifiers, voting and submissions key on.
inline std::vector<task> load_arc_tasks(const std::vector<std::filesystem::path>& paths) {
  std::vector<std::filesystem::path> files;
  for (const auto& p : paths) detail::collect_arc_files(p, files);
  std::vector<task> tasks(files.size());
  data::parallel_for(files.size(), [&](std::size_t i) { tasks[i] = load_arc_task(files[i]); });
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const auto [it, fresh] = seen.emplace(tasks[i].id, i);
    if (!fresh)
      throw data_error(files[i].string() + ": duplicate task id \"" + tasks[i].id + "\", also in " +
                       files[it->second].string());
  }
  return tasks;
}

inline std::vector<task> load_arc_tasks(const std::filesystem::path& path) {
  return load_arc_tasks(std::vector<std::filesystem::path>{path});
}

inline nlohmann::json arc_json(const grid& g) {
  auto rows = nlohmann::json::array();
  for (int r = 0; r < g.rows; ++r) {
    auto row = nlohmann::json::array();
    for (int c = 0; c < g.cols; ++c) row.push_back(int(g.at(r, c)));
    rows.push_back(std::move(row));
  }
  return rows;
}

// A 0x0 test output (unknown answer) is written without "output", as it was read.
inline nlohmann::json arc_json(const task& t) {
  nlohmann::json j = nlohmann::json::object();
  for (const char* split : {"train", "test"}) {
    const auto& pairs = std::string(split) == "train" ? t.train : t.test;
    auto list = nlohmann::json::array();
    for (const auto& p : pairs) {
      nlohmann::json pj = {{"input", arc_json(p.input)}};
      if (p.output.rows > 0) pj["output"] = arc_json(p.output);
      list.push_back(std::move(pj));
    }
    j[split] = std::move(list);
  }
  return j;
}

inline void save_arc_task(const task& t, const std::filesystem::path& file) {
  std::ofstream out(file, std::ios::binary);
  if (!out) throw data_error(file.string() + ": cannot write file");
  out << arc_json(t).dump() << '\n';
  if (!out) throw data_error(file.string() + ": write failed");
}

}  // namespace data
ETRM_END_NAMESPACE
