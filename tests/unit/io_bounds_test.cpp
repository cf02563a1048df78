// SPDX-License-Identifier: Apache-2.0
// Untrusted sizes (issue #32): a declared size far beyond the file, a file beyond its reader's
// limit, JSON nested 10^5 deep, 10^5 demonstrations, a grid of 10^6 cells, a line of 10^5
// characters, a configuration of 10^12 tokens, a float where an integer belongs. Each is refused
// with one line that names the file (or field) and the limit, before anything is allocated for it.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <etrm/data/arc.hpp>
#include <etrm/data/sudoku.hpp>
#include <etrm/io/bounded_read.hpp>
#include <etrm/io/safetensors.hpp>
#include <etrm/model/demo_encoder.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace io = etrm::io;
namespace d = etrm::data;
namespace fs = std::filesystem;

namespace {

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

std::string safetensors_bytes(const std::string& header, std::uint64_t declared_length) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &declared_length, 8);
  return out + header;
}

// 'path', as the loaders' errors name a file (built by appending: "'" + std::string makes g++ 12
// warn, a -Wstringop-overflow false positive).
std::string quoted(const fs::path& p) {
  std::string s = "'";
  s += p.string();
  s += "'";
  return s;
}

fs::path fresh_file(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("etrm_bounds_" + std::to_string(::getpid()) + "_" + name);
  fs::remove(p);
  return p;
}

}  // namespace

TEST_CASE("safetensors: a header declaring 10^12 elements is refused without allocating them") {
  const std::string h = R"({"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,0]}})";
  const auto msg = error_of([&] { (void)io::safetensors_file::parse(safetensors_bytes(h, h.size()), "big.safetensors"); });
  CHECK(msg == "'big.safetensors': tensor 'w' has 0 bytes but F32 [1000000, 1000000] needs 4000000000000");
}

TEST_CASE("safetensors: a header length beyond the 100 MB limit is refused before it is parsed") {
  std::string bytes = safetensors_bytes("{}", 200'000'000);
  bytes.resize(200'000'008, ' ');  // the bytes are there: the limit, not truncation, refuses them
  const auto msg = error_of([&] { (void)io::safetensors_file::parse(std::move(bytes), "h.safetensors"); });
  CHECK(msg == "'h.safetensors': header length is 200000000 bytes, more than the limit of 100000000 bytes");
}

TEST_CASE("safetensors: a file beyond the size limit is refused before it is read") {
  const fs::path p = fresh_file("large.safetensors");
  { std::ofstream(p) << "x"; }
  fs::resize_file(p, 10'000'000'000ull);  // sparse: 10 GB declared, nothing written
  const auto msg = error_of([&] { (void)io::safetensors_file::load(p); });
  CHECK(msg == quoted(p) + ": file is 10000000000 bytes, more than the limit of 8589934592 bytes for a safetensors file");
  fs::remove(p);
}

TEST_CASE("JSON nested 10^5 deep is refused at the depth limit") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const auto msg = error_of([&] { (void)io::parse_json_bounded(deep, [](const std::string& m) { throw io::io_error(m); }); });
  CHECK(msg == "JSON nested deeper than 32 levels");
  // As a safetensors header and as an ARC task, with the file named.
  CHECK(error_of([&] { (void)io::safetensors_file::parse(safetensors_bytes(deep, deep.size()), "d.safetensors"); }) ==
        "'d.safetensors': malformed header: JSON nested deeper than 32 levels");
  CHECK(error_of([&] { (void)d::parse_arc_task_text(deep, "d", "d.json"); }) == "d.json: JSON nested deeper than 32 levels");
  // The deepest legitimate documents pass.
  CHECK_NOTHROW((void)d::parse_arc_task_text(R"({"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":[[3]]}]})", "ok", "ok.json"));
}

TEST_CASE("ARC: 10^5 demonstrations and a grid of 10^6 cells are refused naming the limit") {
  std::string many = R"({"train":[)";
  for (int i = 0; i < 100000; ++i) many += std::string(i ? "," : "") + R"({"input":[[1]],"output":[[2]]})";
  many += R"(],"test":[{"input":[[1]]}]})";
  CHECK(error_of([&] { (void)d::parse_arc_task_text(many, "m", "m.json"); }) ==
        "m.json: \"train\" has 100000 pairs, more than the limit of 1000");

  std::string row = "[0";
  for (int c = 1; c < 1000; ++c) row += ",0";
  row += "]";
  std::string big = R"({"train":[{"input":[)" + row;
  for (int r = 1; r < 1000; ++r) big += "," + row;
  big += R"(],"output":[[1]]}],"test":[{"input":[[1]]}]})";
  CHECK(error_of([&] { (void)d::parse_arc_task_text(big, "b", "b.json"); }) ==
        "b.json: train[0].input: grid has 1000 rows, more than 30");
}

TEST_CASE("ARC: a task file beyond the size limit is refused before it is read") {
  const fs::path p = fresh_file("task.json");
  { std::ofstream(p) << "{}"; }
  fs::resize_file(p, 10'000'000'000ull);
  CHECK(error_of([&] { (void)d::load_arc_task(p); }) ==
        quoted(p) + ": file is 10000000000 bytes, more than the limit of 16777216 bytes for an ARC task file");
  fs::remove(p);
}

TEST_CASE("Sudoku: a line of 10^5 characters is refused at the line limit") {
  std::istringstream csv(std::string(100000, '1'));
  CHECK(error_of([&] { (void)d::load_sudoku_extreme_csv(csv, "s.csv"); }) ==
        "s.csv:1: line longer than the limit of 4096 characters");
  std::string text = "abc 000 1\n";
  text.append(100000, ' ');  // appended, as in quoted()
  std::istringstream bank(text);
  CHECK(error_of([&] { (void)d::load_sudoku_bank(bank, "b.txt"); }).starts_with("b.txt:1: "));  // the bad first line
}

TEST_CASE("configuration: an integer field holding 1e300 or 2.5 is refused, not cast") {
  etrm::trm_config c;
  CHECK(error_of([&] { c = nlohmann::json::parse(R"({"hidden_size": 1e300})").get<etrm::trm_config>(); }) ==
        "hidden_size must be an integer in [-9223372036854775808, 9223372036854775807], got 1e+300");
  CHECK(error_of([&] { c = nlohmann::json::parse(R"({"seq_len": 2.5})").get<etrm::trm_config>(); }).starts_with(
      "seq_len must be an integer"));
  c = nlohmann::json::parse(R"({"hidden_size": 256.0, "num_heads": 4})").get<etrm::trm_config>();  // YAML-converted
  CHECK(c.hidden_size == 256);
  etrm::encoder_config e;
  CHECK(error_of([&] { e = nlohmann::json::parse(R"({"grid_side": -1e19})").get<etrm::encoder_config>(); }).starts_with(
      "grid_side must be an integer"));
}

TEST_CASE("configuration: sizes beyond the limits are refused naming the limit") {
  etrm::trm_config c;
  c.hidden_size = 1 << 20;
  c.num_heads = 1;
  CHECK(error_of([&] { c.validate(); }) == "etrm config: hidden_size is 1048576, more than the limit of 65536");
  c = {};
  c.seq_len = 1'000'000'000'000;
  CHECK(error_of([&] { c.validate(); }) == "etrm config: seq_len is 1000000000000, more than the limit of 1048576");
  c = {};
  c.expansion = 1e300;
  CHECK(error_of([&] { c.validate(); }).starts_with("etrm config: expansion must be in (0, 64"));
}
