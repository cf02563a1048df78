// SPDX-License-Identifier: Apache-2.0
// The local rule the demos show (data/cell_patterns.hpp): on generated tasks of rules that
// recolour a cell by its neighbourhood or its colour, the look-alike cells' answer is the query's
// answer, also for held-out families the model never trains on and for query colours no demo
// shows; the colour a cell lies between; the key the demos support, the vote, the sure bit,
// which demos vote, the leave-one-out skip and the stored ranking, on hand-made canvases.
#include <etrm/data/cell_neighbours.hpp>
#include <etrm/data/cell_patterns.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/generator.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <iterator>
#include <vector>

namespace d = etrm::data;
using etrm::index_t;

namespace {

const d::episode_shape shape{8, 3};

// The relations of N stacked canvases of side G: [17, N, G, G].
std::vector<std::int32_t> relations(const std::vector<std::int32_t>& grids, index_t N, int G) {
  std::vector<std::int32_t> out(std::size_t(d::pattern_relations * N * G * G));
  const d::pattern_neighbours f{grids.data(), N, G, out.data()};
  for (index_t i = 0; i < index_t(out.size()); ++i) f(i);
  return out;
}

// A task's episode and the look-alikes' answer for every query cell.
struct answered {
  std::vector<std::int32_t> inputs, labels, answers;
};

answered answer_query(const d::task& t) {
  const index_t M = shape.max_demos, n = shape.seq_len(), G = shape.side;
  answered a{std::vector<std::int32_t>(std::size_t(n)), std::vector<std::int32_t>(std::size_t(n)), {}};
  std::vector<std::int32_t> context(std::size_t(shape.context_width()));
  std::vector<std::size_t> demos;
  for (std::size_t i = 0; i < t.train.size() && i < std::size_t(M); ++i) demos.push_back(i);
  d::encode_episode(t, demos, 0, shape, a.inputs, a.labels, context);
  const std::vector<std::int32_t> pairs(context.begin(), context.begin() + 2 * M * n);
  const auto demo_ids = relations(pairs, 2 * M, int(G)), query_ids = relations(a.inputs, 1, int(G));
  d::pattern_demos p{pairs.data(), context.data() + 2 * M * n, demo_ids.data(), 2 * M * n, int(M), int(G),
                     d::arc_vocab_size};
  p.find_voters().rank_keys();
  for (index_t i = 0; i < n; ++i)
    a.answers.push_back(p.answer(a.inputs[std::size_t(i)], {query_ids.data() + i, n}, -1).token);
  return a;
}

// Whether the answer of every cell of the query's grid is its label.
bool solves(const answered& a) {
  for (std::size_t i = 0; i < a.inputs.size(); ++i)
    if (a.inputs[i] >= d::arc_first_colour_token && a.answers[i] != a.labels[i]) return false;
  return true;
}

// Of 40 generated tasks of family f (with parameter p0 unless negative), how many the look-alikes solve.
int solved(d::family f, int p0 = -1) {
  d::generator_config cfg;
  cfg.max_side = 7;
  int n = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    d::data_rng rng(seed * 7919 + 3);
    d::rule_step s = d::sample_step(f, rng);
    if (p0 >= 0) s.p[0] = p0;
    n += solves(answer_query(d::make_task(d::rule{s, std::nullopt}, cfg, rng)));
  }
  return n;
}

}  // namespace

TEST_SUITE("cell patterns") {
  TEST_CASE("held-out families and training families: the look-alikes answer the query") {
    // Interior cells match the demos' interior cells by their neighbourhood whatever their colour.
    const int outline = solved(d::family::outline, 6), hollow = solved(d::family::outline, 0);
    // A cell between two pixels of one colour along its row or column, whichever way the demos'
    // pairs lie; with p0 = 0 it takes the colour it lies between.
    const int connect = solved(d::family::connect_pixels, 4), connect_own = solved(d::family::connect_pixels, 0);
    // The colour every demo keeps shows in every demo's input, the others do not: a query colour
    // no demo shows is cleared by its role.
    const int keep = solved(d::family::keep_color);
    // A colour map: the key by the token alone explains every changed demo cell.
    const int colours = solved(d::family::color_map);
    // A lone pixel has black adjacent cells all round; a cell inside a shape sees it along rays;
    // the outermost ring has the border beside it.
    const int denoise = solved(d::family::denoise), fill = solved(d::family::fill_enclosed);
    const int border = solved(d::family::draw_border);
    INFO("outline " << outline << ", hollow " << hollow << ", connect " << connect << ", connect in the pixels' colour "
                    << connect_own << ", keep " << keep << ", colour map " << colours << ", denoise " << denoise
                    << ", fill " << fill << ", border " << border << " of 40");
    CHECK(outline >= 36);
    CHECK(hollow >= 36);
    CHECK(connect >= 36);
    CHECK(connect_own >= 30);
    CHECK(keep >= 30);
    CHECK(colours >= 36);
    CHECK(denoise >= 30);
    CHECK(fill >= 30);
    CHECK(border >= 25);  // 35 when written
  }

  TEST_CASE("the colour a cell lies between, along its row or its column") {
    // G = 4, colours 3 and 5 (black is 2, the border EOS 1):
    //   3 2 2 3
    //   2 2 5 2
    //   2 2 2 2
    //   1 1 5 1
    const int G = 4;
    const std::vector<std::int32_t> canvas = {3, 2, 2, 3, 2, 2, 5, 2, 2, 2, 2, 2, 1, 1, 5, 1};
    const auto ids = relations(canvas, 1, G);
    const auto between = [&](int r, int c) { return ids[std::size_t(d::pattern_between * G * G + r * G + c)]; };
    CHECK(between(0, 1) == 3);  // 3 on both sides along the row
    CHECK(between(2, 2) == 5);  // 5 above and below
    CHECK(between(1, 1) == d::arc_pad_token);  // 5 on its right only; nothing above, the border below
    CHECK(between(2, 1) == d::arc_pad_token);  // the border is no colour
  }

  TEST_CASE("the key the demos support, the vote, the voting demos and the skipped demo") {
    // G = 3 canvases, demos 0..2 (cells: [input | output]); relations are made up, the same in all
    // 17 of a cell.
    const int G = 3, M = 3, n = 2 * G * G;
    std::vector<std::int32_t> pairs(std::size_t(M * n), d::arc_pad_token);
    std::vector<std::int32_t> ids(std::size_t(d::pattern_relations * M * n), 0);
    const auto set = [&](int m, int cell, std::int32_t in, std::int32_t out, std::int32_t id) {
      pairs[std::size_t(m * n + cell)] = in;
      pairs[std::size_t(m * n + G * G + cell)] = out;
      for (int d = 0; d < d::pattern_relations; ++d) ids[std::size_t(d * M * n + m * n + cell)] = id;
    };
    // A rule by neighbourhood: cells with relations 9 become 7 whatever their token, 8 keep theirs.
    set(0, 0, 3, 7, 9);
    set(0, 1, 4, 4, 8);
    set(1, 0, 5, 7, 9);
    set(1, 1, 5, 5, 8);
    set(2, 0, 3, 7, 9);  // demo 2: its output is a different grid, so it does not vote
    set(2, 3, 4, 4, 8);
    pairs[std::size_t(2 * n + G * G + 3)] = d::arc_pad_token;
    pairs[std::size_t(2 * n + G * G + 4)] = 4;
    const std::int32_t present[M] = {1, 1, 1};
    d::pattern_demos p{pairs.data(), present, ids.data(), M * n, M, G, 12};
    p.find_voters().rank_keys();
    CHECK(p.voters == 3u);
    CHECK(p.order[0] == 1);  // the same class, the same 8 adjacent relations: right on every demo cell
    std::vector<std::int32_t> nb(d::pattern_relations, 9);
    const d::neighbour_view view{nb.data(), 1};
    CHECK(p.answer(11, view, -1).token == 7);  // a token no demo shows
    CHECK(p.answer(11, view, -1).sure);  // its key answers every demo cell right
    // The ranking stored and restored answers alike (the query side reads the demo side's).
    std::vector<std::int32_t> ranking(std::size_t(d::pattern_ranking_ints));
    p.save(ranking.data());
    d::pattern_demos loaded{pairs.data(), present, ids.data(), M * n, M, G, 12};
    CHECK(loaded.load(ranking.data()).voters == p.voters);
    CHECK(std::equal(std::begin(loaded.order), std::end(loaded.order), std::begin(p.order)));
    CHECK(loaded.answer(11, view, -1).token == 7);
    std::fill(nb.begin(), nb.end(), 8);
    CHECK(p.answer(11, view, -1).token == 11);  // kept
    CHECK(p.answer(d::arc_eos_token, view, -1).token == 12);  // not a colour: V
    std::fill(nb.begin(), nb.end(), 6);
    // Ids no demo shows: the next keys; the coarse one (the 4 hold the cell's token or not; none
    // does here) matches every cell, a tie of "became 7" and "kept": kept first.
    CHECK(p.answer(3, view, -1).token == 3);
    CHECK_FALSE(p.answer(3, view, -1).sure);  // that key misses the changed demo cells
    std::fill(nb.begin(), nb.end(), 9);
    CHECK(p.answer(4, view, 1).token == 7);  // demo 0 alone
    // A colour map: 3 becomes 6 and 4 stays whatever the relations (2: the neighbours hold the
    // cell's token; 1: the border), so the token alone is the key.
    std::fill(pairs.begin(), pairs.end(), d::arc_pad_token);
    set(0, 0, 3, 6, 2);
    set(0, 1, 4, 4, 8);
    set(1, 0, 4, 4, 9);
    set(1, 1, 3, 6, 1);
    const std::int32_t first_two[M] = {1, 1, 0};
    d::pattern_demos q{pairs.data(), first_two, ids.data(), M * n, M, G, 12};
    CHECK(q.find_voters().rank_keys().voters == 3u);
    const d::pattern_key best = d::pattern_key_at(q.order[0]);
    CHECK((best.look == d::pattern_look::token && best.mask == 0u));
    CHECK(q.sure[q.order[0]]);
    CHECK(q.answer(3, view, -1).token == 6);
    CHECK(q.answer(4, view, -1).token == 4);
    CHECK(q.answer(5, view, -1).token == 5);  // a token no demo shows: relations 9 as the kept 4 of demo 1
    CHECK(q.answer(3, view, 0).token == 6);  // demo 1 alone
    const std::int32_t none[M] = {0, 0, 0};
    d::pattern_demos r{pairs.data(), none, ids.data(), M * n, M, G, 12};
    CHECK(r.find_voters().rank_keys().answer(3, view, -1).token == 12);  // no demo: V
  }
}
