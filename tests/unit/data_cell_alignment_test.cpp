// SPDX-License-Identifier: Apache-2.0
// The alignment search (data/cell_alignment.hpp): on generated tasks whose rule moves cells it
// finds a transform and shift under which the query's transported input is the query's answer,
// for held-out shifts and transforms too; it keeps the identity for rules that move nothing,
// sees through a recolouring, ignores absent demos, and writes the EOS border of the moved
// grid's extent. On real data (ETRM_DATA_DIR): the ARC-AGI-1 training tasks that are one
// dihedral transform are answered by their transported test input.
#include <etrm/data/arc.hpp>
#include <etrm/data/cell_alignment.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/generator.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace d = etrm::data;

std::optional<std::filesystem::path> arc_data_dir();  // data_arc_test.cpp

namespace {

const d::episode_shape shape{12, 4};
constexpr std::int32_t outside = d::arc_vocab_size;

struct encoded {
  std::vector<std::int32_t> inputs, labels, context;
};

encoded encode(const d::task& t) {
  const int n = int(shape.seq_len());
  encoded e{std::vector<std::int32_t>(std::size_t(n)), std::vector<std::int32_t>(std::size_t(n)),
            std::vector<std::int32_t>(std::size_t(shape.context_width()))};
  std::vector<std::size_t> demos;
  for (std::size_t i = 0; i < t.train.size() && i < std::size_t(shape.max_demos); ++i) demos.push_back(i);
  d::encode_episode(t, demos, 0, shape, e.inputs, e.labels, e.context);
  return e;
}

d::cell_alignment search(const encoded& e) {
  const auto M = std::size_t(shape.max_demos);
  return d::search_alignment(e.context.data(), e.context.data() + 2 * M * std::size_t(shape.seq_len()),
                             shape.max_demos, shape.side, d::arc_vocab_size);
}

// The query's transported input, `outside` read as black (a shift brings in background).
std::vector<std::int32_t> transported(const encoded& e, const d::cell_alignment& h) {
  std::vector<std::int32_t> out(e.inputs.size());
  d::transport_canvas(e.inputs.data(), shape.side, h, outside, out.data());
  for (auto& v : out) v = v == outside ? d::arc_first_colour_token : v;
  return out;
}

std::vector<std::int32_t> label_canvas(const encoded& e) {
  std::vector<std::int32_t> l = e.labels;
  for (auto& v : l) v = v == -100 ? d::arc_pad_token : v;
  return l;
}

d::task task_of(const d::rule& r, std::uint64_t seed) {
  d::generator_config cfg;
  cfg.max_side = 9;
  d::data_rng rng(seed * 1000 + 99);
  return d::make_task(r, cfg, rng);
}

}  // namespace

TEST_SUITE("cell alignment") {
  TEST_CASE("every dihedral transform and shift is found: the transported query input is its answer") {
    int solved = 0, total = 0;
    for (int t = 1; t < d::num_dihedral; ++t)
      for (std::uint64_t seed = 0; seed < 4; ++seed) {
        const d::rule r{{d::family::dihedral, {t}}, std::nullopt};
        const encoded e = encode(task_of(r, seed));
        solved += transported(e, search(e)) == label_canvas(e);
        ++total;
      }
    for (int dr = -3; dr <= 3; ++dr)
      for (int dc = -3; dc <= 3; ++dc) {
        if (!dr && !dc) continue;
        const d::rule r{{d::family::translate, {dr, dc}}, std::nullopt};
        const encoded e = encode(task_of(r, std::uint64_t(dr * 7 + dc + 100)));
        solved += transported(e, search(e)) == label_canvas(e);
        ++total;
      }
    INFO(solved << " of " << total);
    // A sparse grid can be explained equally well by another move (all of its cells black after
    // a shift, say); nearly every task is unambiguous.
    CHECK(solved >= total - 2);
  }

  TEST_CASE("the exact hypothesis of a transposed task with a shift, recoloured") {
    const d::rule r{{d::family::dihedral, {6}}, d::rule_step{d::family::color_map, {2, 1, 2, 0, 3, 4}}};
    const encoded e = encode(task_of(r, 5));
    const d::cell_alignment h = search(e);
    CHECK(h.transform == 6);
    CHECK(h.dr == 0);
    CHECK(h.dc == 0);
  }

  TEST_CASE("the demos' colour map under the alignment recolours the moved query into its answer") {
    // color_map then dihedral is a composition the training split never shows.
    int answered = 0, readable = 0;
    for (int t = 1; t < d::num_dihedral; ++t)
      for (std::uint64_t seed = 0; seed < 6; ++seed) {
        d::data_rng rng(seed * 31 + std::uint64_t(t));
        const d::rule r{d::sample_step(d::family::color_map, rng), d::rule_step{d::family::dihedral, {t}}};
        const encoded e = encode(task_of(r, seed + 40));
        const auto M = std::size_t(shape.max_demos), n = std::size_t(shape.seq_len());
        const std::int32_t *pairs = e.context.data(), *present = pairs + 2 * M * n;
        std::array<std::int32_t, d::arc_vocab_size> map{};
        const d::cell_alignment h =
            d::search_alignment(pairs, present, int(M), shape.side, d::arc_vocab_size, map.data());
        CHECK(h == search(e));  // asking for the map does not change the hypothesis
        std::vector<std::int32_t> candidate(n);
        d::transport_canvas(e.inputs.data(), shape.side, h, outside, candidate.data());
        d::recolour_canvas(candidate.data(), shape.side, outside, map.data());
        // A colour the demo inputs never show is kept and marked (V + colour): its image is unknown.
        const bool unseen =
            std::any_of(candidate.begin(), candidate.end(), [](std::int32_t v) { return v >= d::arc_vocab_size; });
        for (std::int32_t c = d::arc_first_colour_token; c < d::arc_vocab_size; ++c) {
          bool shown = false;
          for (std::size_t m = 0; m < M; ++m)
            if (present[m]) shown |= std::count(pairs + 2 * m * n, pairs + (2 * m + 1) * n, c) > 0;
          if (!shown) CHECK(map[std::size_t(c)] == d::arc_vocab_size + c);
        }
        if (unseen) continue;
        ++readable;
        answered += candidate == label_canvas(e);
      }
    INFO(answered << " of " << readable << " whose query colours the demos show");
    CHECK(readable >= 30);
    CHECK(answered >= readable - 1);
  }

  TEST_CASE("rules that move nothing keep the identity") {
    for (const d::rule& r : {d::rule{{d::family::color_map, {2, 1, 2, 0, 3, 4}}, std::nullopt},
                             d::rule{{d::family::fill_enclosed, {4}}, std::nullopt},
                             d::rule{{d::family::denoise, {}}, std::nullopt}}) {
      INFO(d::describe(r));
      CHECK(search(encode(task_of(r, 3))) == d::cell_alignment{});
    }
  }

  TEST_CASE("absent demos are not read; no demo at all gives the identity") {
    const d::rule r{{d::family::translate, {2, -1}}, std::nullopt};
    encoded e = encode(task_of(r, 11));
    const d::cell_alignment found = search(e);
    CHECK(found == d::cell_alignment{0, 2, -1});
    // Noise in the slots of absent demos changes nothing.
    const auto M = std::size_t(shape.max_demos), n = std::size_t(shape.seq_len());
    for (std::size_t m = 0; m < M; ++m)
      if (!e.context[2 * M * n + m])
        for (std::size_t i = 0; i < 2 * n; ++i) e.context[2 * m * n + i] = std::int32_t(2 + (i * 7 + m) % 10);
    CHECK(search(e) == found);
    std::fill(e.context.begin() + std::ptrdiff_t(2 * M * n), e.context.begin() + std::ptrdiff_t(2 * M * n + M), 0);
    CHECK(search(e) == d::cell_alignment{});
  }

  TEST_CASE("transport_canvas: cells brought in by the shift are `outside`, EOS borders the moved extent") {
    // A 2 x 3 grid at the origin of a 4 x 4 canvas, shifted one row down.
    const std::vector<std::int32_t> in = {2, 3, 4, 1,  //
                                          5, 6, 7, 1,  //
                                          1, 1, 1, 0,  //
                                          0, 0, 0, 0};
    std::vector<std::int32_t> out(16);
    d::transport_canvas(in.data(), 4, {0, 1, 0}, 12, out.data());
    CHECK(out == std::vector<std::int32_t>{12, 12, 12, 1, 2, 3, 4, 1, 1, 1, 1, 0, 0, 0, 0, 0});
    // Transposed: a 3 x 2 grid, its EOS column at 2 and row at 3.
    d::transport_canvas(in.data(), 4, {6, 0, 0}, 12, out.data());
    CHECK(out == std::vector<std::int32_t>{2, 5, 1, 0, 3, 6, 1, 0, 4, 7, 1, 0, 1, 1, 0, 0});
    // An empty canvas stays PAD.
    const std::vector<std::int32_t> empty(16, 0);
    d::transport_canvas(empty.data(), 4, {3, 1, 1}, 12, out.data());
    CHECK(out == empty);
  }

  TEST_CASE("real data: ARC-AGI-1 training tasks that rotate, flip or transpose are answered by the search") {
    const auto dir = arc_data_dir();
    if (!dir) return;
    // rot180, rot180, fliplr, flipud, transpose, rot90
    for (const char* id : {"3c9b0459", "6150a2bd", "67a3c6ac", "68b16354", "74dd1130", "ed36ccf7"}) {
      const d::task t = d::load_arc_task(*dir / "arc-agi-1" / "training" / (std::string(id) + ".json"));
      INFO(id);
      REQUIRE(t.test.size() == 1);
      const encoded e = encode(t);
      const d::cell_alignment h = search(e);
      CHECK(h.transform != 0);
      CHECK(transported(e, h) == label_canvas(e));
    }
  }
}
