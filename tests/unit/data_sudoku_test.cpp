// SPDX-License-Identifier: Apache-2.0
// Sudoku data: solver, uniqueness, loaders, augmentation, generator, tokens; with ETRM_DATA_DIR
// set, the solver labels the whole sudoku-exchange bank.
#include <etrm/data/sudoku.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace d = etrm::data;

namespace {

d::sudoku_board board(const std::string& s) {
  d::sudoku_board b{};
  for (int i = 0; i < 81; ++i) b[std::size_t(i)] = s[std::size_t(i)] == '.' ? 0 : std::uint8_t(s[std::size_t(i)] - '0');
  return b;
}

int clues(const d::sudoku_board& b) {
  int n = 0;
  for (auto v : b) n += v != 0;
  return n;
}

const std::string wiki_q = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
const std::string wiki_a = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
// Arto Inkala's "world's hardest Sudoku" (2012).
const std::string inkala_q = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..";
const std::string inkala_a = "812753649943682175675491283154237896369845721287169534521974368438526917796318452";

}  // namespace

TEST_CASE("sudoku solver finds the known solutions and proves them unique") {
  for (const auto& [q, a] : {std::pair{wiki_q, wiki_a}, std::pair{inkala_q, inkala_a}}) {
    d::sudoku_board solution{};
    CHECK(d::count_sudoku_solutions(board(q), 2, &solution) == 1);
    CHECK(solution == board(a));
    CHECK(d::is_sudoku_solution(board(q), solution));
    CHECK(d::solve_sudoku(board(q)) == board(a));
  }
}

TEST_CASE("sudoku uniqueness check detects several solutions and none") {
  CHECK(d::count_sudoku_solutions(d::sudoku_board{}) == 2);  // the empty board
  auto loose = board(wiki_q);
  for (int i = 0; i < 27; ++i) loose[std::size_t(i)] = 0;  // drop the top band's clues
  CHECK(d::count_sudoku_solutions(loose) == 2);
  CHECK(d::count_sudoku_solutions(loose, 50) > 2);
  auto clash = board(wiki_q);
  clash[2] = 5;  // a second 5 in row 0
  CHECK(d::count_sudoku_solutions(clash) == 0);
  CHECK_FALSE(d::solve_sudoku(clash).has_value());
  d::sudoku_example e{clash, {}, 0, "clash"};
  CHECK_THROWS_AS(d::label_sudoku(e), d::data_error);
}

TEST_CASE("sudoku augmentation keeps puzzle and solution consistent") {
  d::data_rng rng(7);
  const d::sudoku_example e{board(inkala_q), board(inkala_a), 0, "inkala"};
  int transposed = 0;
  for (int i = 0; i < 200; ++i) {
    const auto t = d::random_sudoku_transform(rng);
    transposed += t.transpose;
    CHECK(t.digit_map[0] == 0);
    const auto aug =
        d::sudoku_example{d::apply_sudoku_transform(t, e.question), d::apply_sudoku_transform(t, e.answer), 0, ""};
    REQUIRE(d::is_sudoku_solution(aug.question, aug.answer));
    CHECK(clues(aug.question) == clues(e.question));
    CHECK(d::count_sudoku_solutions(aug.question) == 1);
  }
  CHECK(transposed > 60);
  CHECK(transposed < 140);
  d::data_rng a(3), b(3);
  CHECK(d::augment_sudoku(e, a) == d::augment_sudoku(e, b));
}

TEST_CASE("sudoku generator gives unique puzzles with the requested clue count") {
  d::data_rng rng(11);
  for (int target : {40, 32, 28, 25}) {
    const auto e = d::generate_sudoku(rng, target);
    CHECK(clues(e.question) == target);
    CHECK(d::count_sudoku_solutions(e.question) == 1);
    CHECK(d::is_sudoku_solution(e.question, e.answer));
  }
  d::data_rng a(5), b(5);
  CHECK(d::generate_sudoku(a, 30) == d::generate_sudoku(b, 30));
}

TEST_CASE("sudoku tokens: PAD 0, blank 1, digit d -> d+1") {
  const auto q = board(wiki_q);
  const auto tokens = d::encode_sudoku(q);
  REQUIRE(tokens.size() == d::sudoku_seq_len);
  CHECK(tokens[0] == 6);  // digit 5
  CHECK(tokens[2] == d::sudoku_blank_token);
  for (auto t : tokens) CHECK((t >= 1 && t < d::sudoku_vocab_size));
  CHECK(d::decode_sudoku(tokens) == q);
}

TEST_CASE("sudoku loaders read both formats and reject bad lines") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto csv = dir / "etrm_sudoku_test.csv";
  std::ofstream(csv) << "source,question,answer,rating\r\nwiki," << wiki_q << "," << wiki_a << ",3\r\ninkala,"
                     << inkala_q << "," << inkala_a << ",42\n";
  const auto ex = d::load_sudoku_extreme_csv(csv);
  REQUIRE(ex.size() == 2);
  CHECK(ex[1].source == "inkala");
  CHECK(ex[1].question == board(inkala_q));
  CHECK(ex[1].answer == board(inkala_a));
  CHECK(ex[1].rating == 42.0f);
  CHECK(d::load_sudoku_extreme_csv(csv, 1).size() == 1);

  std::string digits = wiki_q;
  for (auto& ch : digits) ch = ch == '.' ? '0' : ch;
  const auto bank = dir / "etrm_sudoku_bank_test.txt";
  std::ofstream(bank) << "00015097c6c3 " << digits << "  7.2\n";
  auto b = d::load_sudoku_bank(bank);
  REQUIRE(b.size() == 1);
  CHECK(b[0].rating == doctest::Approx(7.2));
  d::label_sudoku(b[0]);
  CHECK(b[0].answer == board(wiki_a));

  std::ofstream(bank) << "00015097c6c3 " << digits.substr(1) << "  7.2\n";
  CHECK_THROWS_AS(d::load_sudoku_bank(bank), d::data_error);
  std::ofstream(csv) << "source,question,answer,rating\nwiki," << wiki_q << "," << inkala_a << ",3\n";
  CHECK_THROWS_AS(d::load_sudoku_extreme_csv(csv), d::data_error);
  CHECK_THROWS_AS(d::load_sudoku_bank(dir / "etrm_no_such_file.txt"), d::data_error);
  std::filesystem::remove(csv);
  std::filesystem::remove(bank);
}

TEST_CASE("sudoku solver labels the whole sudoku-exchange bank") {
  const char* root = std::getenv("ETRM_DATA_DIR");
  if (!root) {
    MESSAGE("ETRM_DATA_DIR not set: skipping the puzzle-bank check");
    return;
  }
  const auto file = std::filesystem::path(root) / "sudoku" / "sudoku-exchange-diabolical.txt";
  if (!std::filesystem::exists(file)) {
    MESSAGE(file.string() << " is absent: skipping the puzzle-bank check");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto bank = d::load_sudoku_bank(file);
  std::size_t unique = 0;
  for (auto& e : bank) {
    d::label_sudoku(e);  // throws unless exactly one solution
    unique += d::is_sudoku_solution(e.question, e.answer);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("labelled " << unique << " bank puzzles, each with a unique solution, in " << secs << " s");
  CHECK(bank.size() == 39719);
  CHECK(unique == bank.size());
}
