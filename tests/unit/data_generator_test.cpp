// SPDX-License-Identifier: Apache-2.0
// The few-shot task generator: every family makes valid ARC grids, tasks are deterministic by
// seed, held-out rules never reach the training split, outputs differ from inputs, shared input
// distributions make the demonstrations necessary, tasks survive an ARC JSON round trip, and leave-one-out episode rows are what they claim.
#include <etrm/data/arc.hpp>
#include <etrm/data/episode.hpp>
#include <etrm/data/generator.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace d = etrm::data;

namespace {

void check_task(const d::task& t, const d::rule& r, const d::generator_config& cfg) {
  CHECK(int(t.train.size()) >= cfg.min_demos);
  CHECK(int(t.train.size()) <= cfg.max_demos);
  CHECK(int(t.test.size()) == cfg.queries);
  for (const auto* pairs : {&t.train, &t.test})
    for (const auto& p : *pairs) {
      REQUIRE(d::is_arc_grid(p.input));
      REQUIRE(d::is_arc_grid(p.output));
      CHECK(p.output == d::apply_rule(r, p.input));
    }
}

// Held-out rules recognised from the description alone, independently of is_held_out.
bool description_held_out(const std::string& id) {
  const std::string rule = id.substr(0, id.find('#'));
  std::vector<std::string> steps;
  for (std::size_t at = 0;;) {
    const auto plus = rule.find('+', at);
    steps.push_back(rule.substr(at, plus - at));
    if (plus == std::string::npos) break;
    at = plus + 1;
  }
  const std::set<std::string> held_families = {"mirror_extend", "outline", "keep_color", "connect_pixels"};
  const std::set<std::string> held_steps = {
      "dihedral(k=7)",        "fill_enclosed(c=7)",   "scale_up(3x2)",          "tile(1x3)",
      "extend_lines(all)",    "translate(dr=1,dc=2)", "translate(dr=-2,dc=-1)", "translate(dr=3,dc=0)",
      "translate(dr=0,dc=-3)"};
  const std::vector<std::string> held_maps = {"1>4", "2>8", "4>7", "5>2", "7>1", "8>5"};
  const std::set<std::pair<std::string, std::string>> held_pairs = {{"color_map", "dihedral"},
                                                                    {"gravity", "scale_up"},
                                                                    {"denoise", "tile"},
                                                                    {"fill_enclosed", "translate"},
                                                                    {"recolor_by_size", "draw_border"},
                                                                    {"extend_lines", "gravity"}};
  std::vector<std::string> names;
  for (const auto& s : steps) {
    const std::string name = s.substr(0, s.find('('));
    names.push_back(name);
    if (held_families.count(name) || held_steps.count(s)) return true;
    if (name == "color_map")
      for (const auto& m : held_maps)
        if (("," + s.substr(10)).find("," + m) != std::string::npos) return true;
  }
  return names.size() == 2 && held_pairs.count({names[0], names[1]});
}

}  // namespace

TEST_CASE("generator has at least 15 families, some held out") {
  const auto& fams = d::families();
  CHECK(fams.size() == std::size_t(d::num_families));
  CHECK(fams.size() >= 15);
  std::set<std::string> names;
  int held = 0;
  for (std::size_t i = 0; i < fams.size(); ++i) {
    CHECK(std::size_t(fams[i].fam) == i);
    names.insert(fams[i].name);
    held += fams[i].held_out;
  }
  CHECK(names.size() == fams.size());
  CHECK(held == 4);
}

TEST_CASE("every family and composition produces valid tasks") {
  d::data_rng rng(123);
  const d::generator_config small{}, wide{.min_side = 1, .max_side = 30, .min_demos = 3, .max_demos = 5, .queries = 2};
  for (const auto& f : d::families())
    for (const auto& cfg : {small, wide})
      for (int i = 0; i < 20; ++i) {
        const d::rule r{d::sample_step(f.fam, rng), std::nullopt};
        CAPTURE(d::describe(r));
        const auto t = d::make_task(r, cfg, rng);
        CHECK(t.id == d::describe(r));
        check_task(t, r, cfg);
      }
  const d::generator_config composed{.compose_percent = 100};
  int compositions = 0;
  for (auto split : {d::rule_split::train, d::rule_split::held_out})
    for (int i = 0; i < 300; ++i) {
      const auto r = d::sample_rule(split, composed, rng);
      CAPTURE(d::describe(r));
      if (const auto t = d::try_make_task(r, composed, rng)) {
        check_task(*t, r, composed);
        compositions += r.then.has_value();
      }
    }
  CHECK(compositions > 500);
}

TEST_CASE("generator refuses configurations it cannot serve") {
  d::data_rng rng(1);
  CHECK_THROWS_AS(d::sample_rule(d::rule_split::train, {.min_side = 8, .max_side = 4}, rng), d::data_error);
  CHECK_THROWS_AS(d::sample_task(d::rule_split::train, 1, 0, {.max_side = 31}), d::data_error);
  CHECK_THROWS_AS(d::make_task({d::sample_step(d::family::tile, rng), std::nullopt}, {.min_demos = 0}, rng),
                  d::data_error);
  // A 3x3 tile of a 3x3 scale-up cannot fit 30x30 with 5x5 inputs.
  const d::rule too_big{{d::family::scale_up, {3, 3}}, d::rule_step{d::family::tile, {3, 3}}};
  CHECK_FALSE(d::rule_fits(too_big, {.min_side = 5}));
  CHECK_THROWS_AS(d::make_task(too_big, {.min_side = 5}, rng), d::data_error);
}

TEST_CASE("a split without rules among the chosen families is reported, not sampled forever") {
  const d::generator_config gravity{.only = {d::family::gravity}}, keep{.only = {d::family::keep_color}};
  CHECK(d::split_has_rules(d::rule_split::train, gravity));
  CHECK_FALSE(d::split_has_rules(d::rule_split::held_out, gravity));  // no held-out direction
  CHECK_FALSE(d::split_has_rules(d::rule_split::train, keep));        // a held-out family
  CHECK(d::split_has_rules(d::rule_split::held_out, keep));
  const d::generator_config translate{.only = {d::family::translate}};
  CHECK(d::split_has_rules(d::rule_split::held_out, translate));  // the reserved shifts
  CHECK(d::is_held_out(d::sample_rule_and_task(d::rule_split::held_out, 3, 0, translate).first));
}

TEST_CASE("same seed gives the same tasks") {
  d::task_stream a(d::rule_split::train, 42), b(d::rule_split::train, 42), c(d::rule_split::train, 43);
  int differ = 0;
  for (int i = 0; i < 200; ++i) {
    const auto ta = a.next(), tb = b.next(), tc = c.next();
    CHECK(ta.id == tb.id);
    CHECK(ta.train == tb.train);
    CHECK(ta.test == tb.test);
    differ += ta.train != tc.train;
    const auto again = d::sample_task(d::rule_split::train, 42, std::uint64_t(i));  // random access
    CHECK(again.id == ta.id);
    CHECK(again.test == ta.test);
  }
  CHECK(a.index() == 200);
  CHECK(differ > 190);
  CHECK(d::sample_task(d::rule_split::train, 42, 7).id.ends_with("#42:7"));
}

TEST_CASE("held-out rules never appear in the training split") {
  const int n = 5000;
  std::set<std::string> train_families;
  for (int i = 0; i < n; ++i) {
    const auto t = d::sample_task(d::rule_split::train, 2024, std::uint64_t(i));
    REQUIRE_FALSE(description_held_out(t.id));
    train_families.insert(t.id.substr(0, t.id.find_first_of("(#+")));
  }
  CHECK(train_families.size() == 14);
  int kinds[3] = {0, 0, 0};  // held-out family, held-out parameters, held-out composition
  d::data_rng rng(9);
  for (int i = 0; i < 2000; ++i) {
    const auto r = d::sample_rule(d::rule_split::held_out, {}, rng);
    REQUIRE(d::is_held_out(r));
    REQUIRE(description_held_out(d::describe(r)));
    const bool fam = d::info(r.first.fam).held_out || (r.then && d::info(r.then->fam).held_out);
    const bool params = d::step_params_held_out(r.first) || (r.then && d::step_params_held_out(*r.then));
    kinds[0] += fam;
    kinds[1] += !fam && params;
    kinds[2] += !fam && !params;
  }
  CHECK(kinds[0] > 100);
  CHECK(kinds[1] > 100);
  CHECK(kinds[2] > 10);
  // Rules drawn from the whole space agree with the description-based check both ways.
  for (int i = 0; i < 5000; ++i) {
    d::rule r{d::sample_step(d::family(d::rand_below(rng, d::num_families)), rng), std::nullopt};
    if (d::rand_chance(rng, 1, 2)) r.then = d::sample_step(d::family::gravity, rng);
    CHECK(d::is_held_out(r) == description_held_out(d::describe(r)));
    CHECK(d::rule_in_split(r, d::rule_split::train) != d::rule_in_split(r, d::rule_split::held_out));
  }
}

TEST_CASE("outputs differ from inputs") {
  int pairs = 0, changed = 0;
  for (auto split : {d::rule_split::train, d::rule_split::held_out})
    for (int i = 0; i < 1000; ++i) {
      const auto t = d::sample_task(split, 5, std::uint64_t(i));
      for (const auto* ps : {&t.train, &t.test})
        for (const auto& p : *ps) {
          ++pairs;
          changed += p.output != p.input;
        }
    }
  CHECK(changed >= pairs * 95 / 100);
}

TEST_CASE("a query input alone does not determine the output") {
  // These families draw inputs from one distribution that ignores the parameters: the same rng
  // state gives the same input, and different rules give different outputs.
  const d::family shared[] = {d::family::dihedral, d::family::translate,   d::family::gravity,      d::family::scale_up,
                              d::family::tile,     d::family::draw_border, d::family::mirror_extend};
  d::data_rng rng(77);
  int distinct_total = 0;
  for (int trial = 0; trial < 50; ++trial) {
    const auto state = rng;
    std::set<std::string> outputs;  // cells and row count as bytes
    d::grid first_input;
    for (auto f : shared) {
      auto params_rng = d::data_rng(rng());
      const auto step = d::sample_step(f, params_rng);
      auto input_rng = state;
      const auto in = d::make_step_input(step, input_rng, 6, 6);
      if (first_input.rows == 0) first_input = in;
      CHECK(in == first_input);
      const auto out = d::apply_step(step, in);
      std::string key(out.cells.begin(), out.cells.end());
      key.push_back(char(out.rows));
      outputs.insert(key);
    }
    distinct_total += int(outputs.size());
  }
  CHECK(distinct_total > 50 * 6);
  // Colour maps with different targets on one input.
  d::rule_step a{d::family::color_map, {2, 1, 2, 0, 3, 4, 0}}, b{d::family::color_map, {2, 1, 2, 0, 4, 3, 0}};
  auto ra = rng, rb = rng;
  const auto in = d::make_step_input(a, ra, 5, 5);
  CHECK(in == d::make_step_input(b, rb, 5, 5));
  CHECK(d::apply_step(a, in) != d::apply_step(b, in));
}

TEST_CASE("generated tasks round-trip through ARC JSON") {
  const auto dir = std::filesystem::temp_directory_path() / "etrm_generator_test";
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 50; ++i) {
    const auto t = d::sample_task(i % 2 ? d::rule_split::held_out : d::rule_split::train, 3, std::uint64_t(i));
    const auto j = d::arc_json(t);
    REQUIRE(j["train"].size() == t.train.size());
    const auto back = d::parse_arc_task(nlohmann::json::parse(j.dump()), t.id, "memory");
    CHECK(back.id == t.id);
    CHECK(back.train == t.train);
    CHECK(back.test == t.test);
    const auto file = dir / ("task" + std::to_string(i) + ".json");
    d::save_arc_task(t, file);
    const auto loaded = d::load_arc_task(file);
    CHECK(loaded.train == t.train);
    CHECK(loaded.test == t.test);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("grid helpers: validity and objects") {
  d::grid o(3, 3);
  o.at(0, 0) = o.at(0, 1) = 2;
  o.at(1, 1) = 2;
  o.at(2, 2) = 2;  // diagonal only: a separate object
  const auto objs = d::find_objects(o);
  REQUIRE(objs.size() == 2);
  CHECK(objs[0].size() == 3);
  CHECK(objs[1].size() == 1);
  CHECK(d::is_arc_grid(o));
  CHECK_FALSE(d::is_arc_grid(d::grid(31, 2)));
}

TEST_CASE("leave-one-out episode rows predict one demo from the others") {
  const d::episode_shape shape{8, 4};
  d::generator_config g;
  g.max_side = 6;
  const d::episode_source plain(d::rule_split::train, 3, shape, g, 2, true, 0.0);
  const d::episode_source loo(d::rule_split::train, 3, shape, g, 2, true, 1.0);
  const etrm::index_t B = 16, n = shape.seq_len(), w = shape.context_width();
  const auto a = plain.batch(B, 0), b = loo.batch(B, 0);
  auto row = [](const std::vector<std::int32_t>& v, etrm::index_t r, etrm::index_t len) {
    return std::vector<std::int32_t>(v.begin() + r * len, v.begin() + (r + 1) * len);
  };
  for (etrm::index_t r = 0; r < B; ++r) {
    const auto [t, demos] = plain.episode(std::uint64_t(r));
    REQUIRE(demos.size() >= 2);
    // The plain row asks the task's query; the leave-one-out row asks one of its demos, with
    // that demo missing from its context (one demo fewer).
    std::vector<std::int32_t> in(static_cast<std::size_t>(n)), lab(in.size()), ctx(static_cast<std::size_t>(w));
    d::encode_episode(t, demos, 0, shape, in, lab, ctx);
    CHECK(row(a.inputs, r, n) == in);
    CHECK(row(a.context, r, w) == ctx);
    int matches = 0;
    for (std::size_t held = 0; held < demos.size(); ++held) {
      d::encode_leave_one_out(t, demos, held, shape, in, lab, ctx);
      matches += row(b.inputs, r, n) == in && row(b.labels, r, n) == lab && row(b.context, r, w) == ctx;
    }
    CHECK(matches >= 1);
    CHECK(b.context[std::size_t(r * w + w - 1)] == std::int32_t(demos.size() - 1));
  }
  CHECK_THROWS_AS(d::episode_source(d::rule_split::train, 3, shape, g, 2, true, 1.5), std::invalid_argument);
  const auto [t, demos] = plain.episode(0);
  std::vector<std::int32_t> in(static_cast<std::size_t>(n)), lab(in.size()), ctx(static_cast<std::size_t>(w));
  const std::vector<std::size_t> one{0};
  CHECK_THROWS_AS(d::encode_leave_one_out(t, one, 0, shape, in, lab, ctx), std::invalid_argument);
}
