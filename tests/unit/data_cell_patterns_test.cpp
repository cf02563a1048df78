// SPDX-License-Identifier: Apache-2.0
// The local rule the demos show (data/cell_patterns.hpp): on generated tasks of rules that
// recolour a cell by its neighbourhood, the look-alike cells' answer is the query's answer,
// also for the held-out families the model never trains on and for query colours no demo shows;
// the level order, the vote, which demos vote and the leave-one-out skip, on hand-made canvases.
#include <etrm/data/cell_neighbours.hpp>
#include <etrm/data/cell_patterns.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/generator.hpp>

#include <doctest/doctest.h>

#include <vector>

namespace d = etrm::data;
using etrm::index_t;

namespace {

const d::episode_shape shape{8, 3};

// The neighbour ids of N stacked canvases of side G: [8, N, G, G].
std::vector<std::int32_t> neighbour_ids(const std::vector<std::int32_t>& grids, index_t N, int G, d::neighbour_kind kind) {
  std::vector<std::int32_t> out(std::size_t(8 * N * G * G));
  const d::neighbour_tokens f{grids.data(), N, G, kind, out.data()};
  for (index_t i = 0; i < index_t(out.size()); ++i) f(i);
  return out;
}

// A task's episode and the look-alikes' answer for every query cell.
struct answered {
  std::vector<std::int32_t> inputs, labels, answers;
};

answered answer_query(const d::task& t, d::neighbour_kind kind) {
  const index_t M = shape.max_demos, n = shape.seq_len(), G = shape.side;
  answered a{std::vector<std::int32_t>(std::size_t(n)), std::vector<std::int32_t>(std::size_t(n)), {}};
  std::vector<std::int32_t> context(std::size_t(shape.context_width()));
  std::vector<std::size_t> demos;
  for (std::size_t i = 0; i < t.train.size() && i < std::size_t(M); ++i) demos.push_back(i);
  d::encode_episode(t, demos, 0, shape, a.inputs, a.labels, context);
  const std::vector<std::int32_t> pairs(context.begin(), context.begin() + 2 * M * n);
  const auto demo_ids = neighbour_ids(pairs, 2 * M, int(G), kind), query_ids = neighbour_ids(a.inputs, 1, int(G), kind);
  d::pattern_demos p{pairs.data(), context.data() + 2 * M * n, demo_ids.data(), 2 * M * n, int(M), int(G),
                     d::arc_vocab_size, kind.relations};
  p.find_voters();
  for (index_t i = 0; i < n; ++i) a.answers.push_back(p.answer(a.inputs[std::size_t(i)], {query_ids.data() + i, n}, -1));
  return a;
}

// Whether the answer of every cell of the query's grid is its label.
bool solves(const answered& a) {
  for (std::size_t i = 0; i < a.inputs.size(); ++i)
    if (a.inputs[i] >= d::arc_first_colour_token && a.answers[i] != a.labels[i]) return false;
  return true;
}

// Of 40 generated tasks of family f with parameter p0, how many the look-alikes solve.
int solved(d::family f, int p0, d::neighbour_kind kind) {
  d::generator_config cfg;
  cfg.max_side = 7;
  int n = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    d::data_rng rng(seed * 7919 + 3);
    d::rule_step s{f, {}};
    s.p[0] = p0;
    n += solves(answer_query(d::make_task(d::rule{s, std::nullopt}, cfg, rng), kind));
  }
  return n;
}

}  // namespace

TEST_SUITE("cell patterns") {
  TEST_CASE("held-out families: the look-alikes answer outline and connect_pixels queries") {
    const d::neighbour_kind relations{.relations = true}, rays{.rays = true, .relations = true};
    // Interior cells match the demos' interior cells by their neighbourhood whatever their colour.
    const int outline = solved(d::family::outline, 6, relations), hollow = solved(d::family::outline, 0, relations);
    // Along rays a cell between two pixels sees "another colour" on both sides, as in the demos.
    const int connect = solved(d::family::connect_pixels, 4, rays);
    INFO("outline " << outline << ", hollow " << hollow << ", connect " << connect << " of 40");
    CHECK(outline >= 36);
    CHECK(hollow >= 36);
    // Not all: a join's cell whose other rays differ from every demo's joins falls back to the
    // coarser levels, where most black cells stay black (25 of 40 when written).
    CHECK(connect >= 20);
    // The adjacent cells do not see the far pixel of a join.
    CHECK(solved(d::family::connect_pixels, 4, relations) < connect / 2);
  }

  TEST_CASE("the levels in turn, the vote, the voting demos and the skipped demo") {
    // G = 3 canvases of one row: [input | output], demos 0..2; neighbour ids are made up.
    const int G = 3, M = 3, n = 2 * G * G;
    std::vector<std::int32_t> pairs(std::size_t(M * n), d::arc_pad_token), ids(std::size_t(8 * M * n), 0);
    const auto set = [&](int m, int cell, std::int32_t in, std::int32_t out, std::int32_t id) {
      pairs[std::size_t(m * n + cell)] = in;
      pairs[std::size_t(m * n + G * G + cell)] = out;
      for (int d = 0; d < 8; ++d) ids[std::size_t(d * M * n + m * n + cell)] = id;
    };
    set(0, 0, 3, 7, 9);  // demo 0: token 3 with ids 9 became 7
    set(0, 1, 4, 4, 8);  //         token 4 with ids 8 was kept
    set(1, 0, 5, 6, 9);  // demo 1: token 5 with ids 9 became 6
    set(1, 1, 3, 3, 7);  //         token 3 with ids 7 was kept
    set(2, 0, 3, 7, 9);  // demo 2: as demo 0, but its output is a different grid: it does not vote
    set(2, 3, 3, 3, 1);
    pairs[std::size_t(2 * n + G * G + 3)] = d::arc_pad_token;
    pairs[std::size_t(2 * n + G * G + 4)] = 3;
    const std::int32_t present[M] = {1, 1, 1};
    d::pattern_demos p{pairs.data(), present, ids.data(), M * n, M, G, 12};
    p.find_voters();
    CHECK(p.votes(0));
    CHECK(p.votes(1));
    CHECK_FALSE(p.votes(2));
    std::vector<std::int32_t> nb(8, 9);
    const d::neighbour_view with9{nb.data(), 1};
    CHECK(p.answer(3, with9, -1) == 7);  // level 1: token 3 with ids 9
    CHECK(p.answer(5, with9, -1) == 6);  // level 1: token 5 with ids 9
    // Level 2: token 8 is in no demo; ids 9 in two, one vote each for "became 7" and "became 6".
    CHECK(p.answer(8, with9, -1) == 6);  // a tie: the lower token
    std::fill(nb.begin(), nb.end(), 8);
    CHECK(p.answer(10, with9, -1) == 10);  // level 2: ids 8 kept its token, so 10 stays 10
    // Level 5: of the 4 orthogonal ids only whether each holds the cell's token (none here, and
    // in no demo cell): token 3 became 7 once, was kept once, a tie: kept first.
    std::fill(nb.begin(), nb.end(), 4);
    CHECK(p.answer(3, with9, -1) == 3);
    // All 4 hold the cell's own token, as in no demo cell: level 7, the token alone.
    std::fill(nb.begin(), nb.end(), 5);
    CHECK(p.answer(5, with9, -1) == 6);
    std::fill(nb.begin(), nb.end(), 11);
    CHECK(p.answer(11, with9, -1) == 12);  // no look-alike anywhere: V
    CHECK(p.answer(d::arc_eos_token, with9, -1) == 12);  // not a colour
    std::fill(nb.begin(), nb.end(), 9);
    CHECK(p.answer(3, with9, 0) == 6);  // without demo 0, ids 9 leave only demo 1's answer (level 2)
    const std::int32_t only_first[M] = {1, 0, 0};
    d::pattern_demos q{pairs.data(), only_first, ids.data(), M * n, M, G, 12};
    CHECK(q.find_voters().voters == 1u);
    CHECK(q.answer(8, with9, -1) == 7);
    CHECK(q.answer(8, with9, 0) == 12);
  }
}
