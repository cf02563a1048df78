// SPDX-License-Identifier: Apache-2.0
// ARC loading, validation errors, writing, the 30x30 token encoding and the crop, and the
// leakage check, on hand-made grids, the bad files in tests/data/bad and (when ETRM_DATA_DIR
// names the shared data folder) every real ARC-AGI-1/2 and ConceptARC task.
#include <etrm/data/arc.hpp>
#include <etrm/data/arc_dataset.hpp>
#include <etrm/data/arc_encoding.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#ifndef ETRM_TEST_DATA_DIR
#error "ETRM_TEST_DATA_DIR must name tests/data (a compile definition of the test target)"
#endif

namespace fs = std::filesystem;
using namespace etrm::data;

// Shared with the other data tests: the real-data folder, or nothing when ETRM_DATA_DIR is unset
// or does not hold the ARC folders.
std::optional<fs::path> arc_data_dir() {
  const char* env = std::getenv("ETRM_DATA_DIR");
  if (env == nullptr || !fs::is_directory(fs::path(env) / "arc-agi-1")) {
    MESSAGE("ETRM_DATA_DIR unset or without arc-agi-1/: skipping the real-data checks");
    return std::nullopt;
  }
  return fs::path(env);
}

namespace {

grid make_grid(std::initializer_list<std::initializer_list<int>> rows) {
  grid g(int(rows.size()), int(rows.begin()->size()));
  int r = 0;
  for (const auto& row : rows) {
    int c = 0;
    for (int v : row) g.at(r, c++) = std::uint8_t(v);
    ++r;
  }
  return g;
}

std::string error_of(const fs::path& file) {
  try {
    (void)load_arc_task(file);
  } catch (const data_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("bad ARC files fail with one clear line naming file, pair and problem") {
  const fs::path bad = fs::path(ETRM_TEST_DATA_DIR) / "bad";
  struct expectation {
    const char* file;
    const char* where;
    const char* problem;
  };
  for (const expectation& e : {
           expectation{"malformed.json", "", "invalid JSON"},
           expectation{"truncated.json", "", "invalid JSON"},
           expectation{"too_large.json", "train[1].input", "31 rows, more than 30"},
           expectation{"colour_10.json", "test[0].output", "cell (1,1) = 10 is not a colour 0..9"},
           expectation{"ragged.json", "train[0].input", "ragged rows: row 1 has 2 cells, row 0 has 3"},
           expectation{"empty_train.json", "", "\"train\" list is empty"},
       }) {
    CAPTURE(e.file);
    const std::string msg = error_of(bad / e.file);
    CAPTURE(msg);
    CHECK(msg.find(e.file) != std::string::npos);
    CHECK(msg.find(e.where) != std::string::npos);
    CHECK(msg.find(e.problem) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
  // A folder holding a bad file fails as a whole, with the same message.
  CHECK_THROWS_AS(load_arc_tasks(bad), data_error);
  CHECK_THROWS_WITH_AS(load_arc_tasks(bad / "missing"), doctest::Contains("no such file or folder"), data_error);
}

TEST_CASE("grid validation covers every rule") {
  using nlohmann::json;
  const auto problem = [](const json& j) {
    try {
      (void)parse_arc_grid(j, "x");
    } catch (const data_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(problem(json::parse("[[1,2],[3,4]]")).empty());
  CHECK(problem(json::parse("[]")) == "x: grid has no rows");
  CHECK(problem(json::parse("[[]]")) == "x: row 0 is empty");
  CHECK(problem(json::parse("[1,2]")) == "x: row 0 is not a list");
  CHECK(problem(json::parse("[[1],2]")) == "x: row 1 is not a list");
  CHECK(problem(json::parse("[[1,-1]]")) == "x: cell (0,1) = -1 is not a colour 0..9");
  CHECK(problem(json::parse("[[1,1.5]]")) == "x: cell (0,1) is not an integer");
  CHECK(problem(json(std::vector<std::vector<int>>(1, std::vector<int>(31, 0)))) ==
        "x: grid has 31 columns, more than 30");
  CHECK(problem(json(std::vector<std::vector<int>>(30, std::vector<int>(30, 9)))).empty());
  CHECK(problem(json::parse("{\"a\":1}")) == "x: grid is not a list of rows");
}

TEST_CASE("tasks round-trip through the ARC JSON writer") {
  task t{"roundtrip",
         {{make_grid({{1, 2, 3}}), make_grid({{3}, {2}, {1}})}, {make_grid({{0}}), make_grid({{9, 9}})}},
         {{make_grid({{4, 5}, {6, 7}}), make_grid({{7}})}, {make_grid({{8}}), grid{}}}};
  const fs::path dir = fs::temp_directory_path() / "etrm_data_arc_test";
  fs::create_directories(dir);
  const fs::path file = dir / "roundtrip.json";  // the file name is the id
  save_arc_task(t, file);
  const task back = load_arc_task(file);
  fs::remove_all(dir);
  CHECK(back.id == "roundtrip");
  CHECK(back.train == t.train);
  CHECK(back.test == t.test);  // the unknown test output stays unknown (0x0)
  CHECK(arc_json(t)["test"][1].contains("output") == false);
  CHECK_THROWS_WITH_AS(parse_arc_task(nlohmann::json::parse(R"({"train":[{"input":[[1]]}],"test":[{"input":[[1]]}]})"),
                                      "t", "f.json"),
                       "f.json: train[0]: missing \"output\"", data_error);
}

TEST_CASE("encoding: colours + 2, EOS row and column, PAD elsewhere, crop inverts it") {
  const grid g = make_grid({{0, 9, 3}, {5, 0, 1}});
  SUBCASE("at the origin") {
    const auto tok = encode_grid(g);
    const auto at = [&](int r, int c) { return tok[std::size_t(r) * 30 + c]; };
    CHECK(at(0, 0) == 2);
    CHECK(at(0, 1) == 11);
    CHECK(at(1, 2) == 3);
    CHECK(at(2, 0) == arc_eos_token);  // row below, over the grid's columns
    CHECK(at(2, 2) == arc_eos_token);
    CHECK(at(0, 3) == arc_eos_token);  // column right, over the grid's rows
    CHECK(at(1, 3) == arc_eos_token);
    CHECK(at(2, 3) == arc_pad_token);  // the corner stays PAD
    CHECK(at(3, 0) == arc_pad_token);
    CHECK(std::count(tok.begin(), tok.end(), arc_eos_token) == 5);
    CHECK(crop_canvas(tok) == g);
  }
  SUBCASE("translated, decoded from its offset") {
    const canvas_offset off{7, 25};
    const auto tok = encode_grid(g, off);
    CHECK(tok[7 * 30 + 25] == 2);
    CHECK(tok[9 * 30 + 25] == arc_eos_token);
    CHECK(tok[7 * 30 + 28] == arc_eos_token);
    CHECK(crop_canvas(tok, off) == g);
    CHECK_THROWS_AS(encode_grid(g, {29, 0}), std::invalid_argument);
  }
  SUBCASE("a grid touching the canvas edges has no EOS there") {
    const grid full(30, 30, 4);
    const auto tok = encode_grid(full);
    CHECK(std::count(tok.begin(), tok.end(), arc_eos_token) == 0);
    CHECK(crop_canvas(tok) == full);
    const grid wide(3, 30, 1);
    const auto t2 = encode_grid(wide);
    CHECK(std::count(t2.begin(), t2.end(), arc_eos_token) == 30);
    CHECK(crop_canvas(t2) == wide);
  }
}

TEST_CASE("crop keeps the largest colour rectangle anchored top-left (spec 6.2)") {
  std::vector<std::int32_t> canvas(arc_seq_len, arc_pad_token);
  const auto set = [&](int r, int c, std::int32_t v) { canvas[std::size_t(r) * 30 + c] = v; };
  CHECK(crop_canvas(canvas).rows == 0);  // nothing predicted: an empty grid
  // Row 0 has 5 colours, rows 1-3 have 2: areas 5, 4, 6 -> 3x2 wins.
  for (int c = 0; c < 5; ++c) set(0, c, 3);
  for (int r = 1; r < 3; ++r)
    for (int c = 0; c < 2; ++c) set(r, c, 4);
  set(1, 2, arc_eos_token);
  const grid g = crop_canvas(canvas);
  CHECK(g.rows == 3);
  CHECK(g.cols == 2);
  CHECK(g.at(0, 0) == 1);
  CHECK(g.at(2, 1) == 2);
  // An out-of-vocabulary token ends a row like EOS does.
  set(0, 1, 12);
  CHECK(crop_canvas(canvas).cols == 1);
}

TEST_CASE("real ARC data: every task loads, encodes and crops back") {
  const auto dir = arc_data_dir();
  if (!dir) return;
  const auto a1_train = load_arc_tasks(*dir / "arc-agi-1" / "training");
  const auto a1_eval = load_arc_tasks(*dir / "arc-agi-1" / "evaluation");
  const auto a2 = load_arc_tasks({*dir / "arc-agi-2" / "training", *dir / "arc-agi-2" / "evaluation"});
  const auto concept_all = load_arc_tasks(*dir / "concept-arc");
  const auto concept_corpus = load_arc_tasks(*dir / "concept-arc" / "corpus");
  CHECK(a1_train.size() == 400);
  CHECK(a1_eval.size() == 400);
  CHECK(a2.size() == 1120);
  CHECK(concept_all.size() == 176);
  CHECK(concept_corpus.size() == 160);
  std::size_t pairs = 0, grids_ok = 0;
  for (const auto* set : {&a1_train, &a1_eval, &a2, &concept_all})
    for (const auto& t : *set)
      for (const auto* split : {&t.train, &t.test})
        for (const auto& p : *split) {
          ++pairs;
          grids_ok += crop_canvas(encode_grid(p.input)) == p.input;
          grids_ok += crop_canvas(encode_grid(p.output)) == p.output;
        }
  CHECK(grids_ok == 2 * pairs);
  MESSAGE("read " << a1_train.size() + a1_eval.size() << " ARC-AGI-1, " << a2.size() << " ARC-AGI-2 and "
                  << concept_all.size() << " ConceptARC tasks (" << pairs << " pairs), all encoded and cropped back");
  // README counts of pairs: ARC-AGI-1 training 1302 + 416.
  std::size_t a1_train_pairs = 0;
  for (const auto& t : a1_train) a1_train_pairs += t.train.size() + t.test.size();
  CHECK(a1_train_pairs == 1302 + 416);
}

TEST_CASE("leakage: ARC-AGI-2 training hides ARC-AGI-1 evaluation tasks") {
  const auto dir = arc_data_dir();
  if (!dir) return;
  const auto a1_train = load_arc_tasks(*dir / "arc-agi-1" / "training");
  const auto a1_eval = load_arc_tasks(*dir / "arc-agi-1" / "evaluation");
  const auto a2_train = load_arc_tasks(*dir / "arc-agi-2" / "training");
  const auto a2_eval = load_arc_tasks(*dir / "arc-agi-2" / "evaluation");

  const auto vs_eval = find_leakage(a2_train, a1_eval);
  CHECK(vs_eval.same_id.size() == 376);
  CHECK(vs_eval.same_pairs.size() == 375);
  auto a1_all = a1_train;
  a1_all.insert(a1_all.end(), a1_eval.begin(), a1_eval.end());
  const auto vs_all = find_leakage(a2_train, a1_all);
  CHECK(vs_all.same_id.size() == 767);
  CHECK(vs_all.same_pairs.size() == 766);
  const auto a2_eval_vs_a1_eval = find_leakage(a2_eval, a1_eval);
  CHECK(a2_eval_vs_a1_eval.same_id.size() == 6);
  CHECK(a2_eval_vs_a1_eval.same_pairs.size() == 6);
  // Not in the README: one ARC-AGI-1 training task is an evaluation task under another id.
  const auto a1 = find_leakage(a1_train, a1_eval);
  CHECK(a1.same_id.empty());
  REQUIRE(a1.same_pairs.size() == 1);
  CHECK(a1.same_pairs[0] == "40853293");  // = evaluation 070dd51e
  const auto kept = exclude_leaked(a2_train, vs_eval);
  CHECK(kept.size() == 1000 - 376);  // every content match also matches by id
  MESSAGE("leakage: ARC-AGI-2 training vs ARC-AGI-1 evaluation " << vs_eval.same_id.size() << " by id, "
          << vs_eval.same_pairs.size() << " by pair set; vs all ARC-AGI-1 " << vs_all.same_id.size() << " by id, "
          << vs_all.same_pairs.size() << " by pair set; ARC-AGI-2 evaluation vs ARC-AGI-1 evaluation "
          << a2_eval_vs_a1_eval.same_id.size() << "; ARC-AGI-1 training vs evaluation by pair set "
          << a1.same_pairs.size() << " (" << a1.same_pairs[0] << "); excluding leaves " << kept.size()
          << " ARC-AGI-2 training tasks");
}
