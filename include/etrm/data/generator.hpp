// SPDX-License-Identifier: Apache-2.0
// The few-shot task generator: the built-in data everything trains on without downloads. A rule
// is one family step (generator_families.hpp) or a composition of two; a task shows k
// demonstrations and q queries of one rule on random grids, deterministic by seed. Rules are
// split into a training split and a held-out split, so "unseen" means unseen: held-out families,
// held-out parameter values of training families, and held-out compositions of training
// families never appear in the training split (nor, once augmented, in training episodes:
// generator_augment.hpp). ARC JSON export is arc.hpp's arc_json / save_arc_task (included
// through augment.hpp).
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/error.hpp>
#include <etrm/data/generator_families.hpp>
#include <etrm/data/generator_grid.hpp>
#include <etrm/data/generator_random.hpp>
#include <etrm/data/grid.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

struct generator_config {
  // Input sides are drawn from [min_side, max_side], raised to a family's minimum and lowered
  // so that outputs fit 30x30.
  int min_side = 3;
  int max_side = 10;
  int min_demos = 2;
  int max_demos = 4;
  int queries = 1;
  int compose_percent = 25;  // chance that a sampled rule is a composition of two steps
  int max_pair_tries = 50;   // draws per pair before the rule is deemed unusable
  // Restricts rules to these families (compositions too); empty: every family.
  std::vector<family> only = {};
};

enum class rule_split : std::uint8_t { train, held_out };

// `first`, then `then` on its output when present.
struct rule {
  rule_step first;
  std::optional<rule_step> then;
  bool operator==(const rule&) const = default;
};

// Compositions of two training families reserved for the held-out split.
inline bool held_out_composition(family first, family second) {
  constexpr std::pair<family, family> reserved[] = {
      {family::color_map, family::dihedral},
      {family::gravity, family::scale_up},
      {family::denoise, family::tile},
      {family::fill_enclosed, family::translate},
      {family::recolor_by_size, family::draw_border},
      {family::extend_lines, family::gravity},
  };
  return std::find(std::begin(reserved), std::end(reserved), std::pair{first, second}) != std::end(reserved);
}

inline bool is_held_out(const rule& r) {
  return step_held_out(r.first) ||
         (r.then && (step_held_out(*r.then) || held_out_composition(r.first.fam, r.then->fam)));
}

inline bool rule_in_split(const rule& r, rule_split s) { return is_held_out(r) == (s == rule_split::held_out); }

// e.g. "color_map(1>3,2>5)+dihedral(k=4)".
inline std::string describe(const rule& r) {
  std::string s = describe(r.first);
  if (r.then) s.append("+").append(describe(*r.then));
  return s;
}

inline grid apply_rule(const rule& r, const grid& in) {
  grid out = apply_step(r.first, in);
  if (r.then && out.rows > 0) out = apply_step(*r.then, out);
  return out;
}

namespace detail {
// A bad configuration would make the samplers below loop forever, so it is refused up front.
inline void check_config(const generator_config& cfg) {
  if (cfg.min_side < 1 || cfg.max_side > 30 || cfg.min_side > cfg.max_side)
    throw data_error("generator.hpp: grid sides must satisfy 1 <= min_side <= max_side <= 30");
  if (cfg.min_demos < 1 || cfg.min_demos > cfg.max_demos || cfg.queries < 0 || cfg.max_pair_tries < 1)
    throw data_error("generator.hpp: need 1 <= min_demos <= max_demos, queries >= 0 and max_pair_tries >= 1");
}

// Input sides allowed for a rule: {lo, rows_hi, cols_hi}; lo > hi means the rule cannot fit.
inline std::array<int, 3> side_range(const rule& r, const generator_config& cfg) {
  auto [gr, gc] = step_growth(r.first);
  if (r.then) {
    const auto [tr, tc] = step_growth(*r.then);
    gr *= tr, gc *= tc;
  }
  const int lo = std::max(cfg.min_side, info(r.first.fam).min_side);
  return {lo, std::min(cfg.max_side, 30 / gr), std::min(cfg.max_side, 30 / gc)};
}
}  // namespace detail

inline bool rule_fits(const rule& r, const generator_config& cfg) {
  const auto [lo, rows_hi, cols_hi] = detail::side_range(r, cfg);
  return lo <= rows_hi && lo <= cols_hi;
}

namespace detail {
// Uniform over families, then parameters; compositions put a grid-agnostic step (can_follow)
// after any other family. Redrawn until the rule belongs to `split` and fits the grid sizes, at
// most `max_draws` times: some family sets have no rule of a split (gravity alone has no held-out
// rule, keep_color alone no training rule).
inline std::optional<rule> draw_rule(rule_split split, const generator_config& cfg, data_rng& rng,
                                     std::uint64_t max_draws) {
  check_config(cfg);
  const auto allowed = [&](family f) {
    return cfg.only.empty() || std::find(cfg.only.begin(), cfg.only.end(), f) != cfg.only.end();
  };
  std::vector<family> firsts, followers;
  for (const auto& f : families()) {
    if (!allowed(f.fam)) continue;
    firsts.push_back(f.fam);
    if (f.can_follow) followers.push_back(f.fam);
  }
  if (firsts.empty()) throw std::invalid_argument("generator_config.only names no family");
  for (std::uint64_t draw = 0; draw < max_draws; ++draw) {
    rule r{sample_step(firsts[rand_below(rng, firsts.size())], rng), std::nullopt};
    if (!followers.empty() && rand_chance(rng, cfg.compose_percent, 100)) {
      const family second = followers[rand_below(rng, followers.size())];
      if (second == r.first.fam) continue;
      r.then = sample_step(second, rng);
    }
    if (rule_fits(r, cfg) && rule_in_split(r, split)) return r;
  }
  return std::nullopt;
}

inline std::string split_name(rule_split s) { return s == rule_split::held_out ? "held-out" : "training"; }
}  // namespace detail

// Whether `split` has a rule among cfg.only at these grid sizes, found within a million draws
// (a split whose rules are rarer than that is treated as empty).
inline bool split_has_rules(rule_split split, const generator_config& cfg) {
  data_rng probe(stream_id({0x5917, std::uint64_t(split)}));
  return detail::draw_rule(split, cfg, probe, 1'000'000).has_value();
}

inline rule sample_rule(rule_split split, const generator_config& cfg, data_rng& rng) {
  if (auto r = detail::draw_rule(split, cfg, rng, 10'000'000)) return *r;
  throw data_error("generator.hpp: the generator's families have no " + detail::split_name(split) +
                   " rule that fits the grid sizes");
}

// One task of `r`, or nothing when some pair cannot be drawn with an output that is a valid ARC
// grid, not blank and different from its input (e.g. a shift that pushes everything out).
inline std::optional<task> try_make_task(const rule& r, const generator_config& cfg, data_rng& rng) {
  detail::check_config(cfg);
  const auto [lo, rows_hi, cols_hi] = detail::side_range(r, cfg);
  if (lo > rows_hi || lo > cols_hi) return std::nullopt;
  task t;
  t.id = describe(r);
  const int demos = rand_int(rng, cfg.min_demos, cfg.max_demos);
  std::vector<grid> inputs;
  for (int k = 0; k < demos + cfg.queries; ++k) {
    std::optional<grid_pair> pair;
    for (int attempt = 0; attempt < cfg.max_pair_tries && !pair; ++attempt) {
      grid in = make_step_input(r.first, rng, rand_int(rng, lo, rows_hi), rand_int(rng, lo, cols_hi));
      grid out = apply_rule(r, in);
      const auto blank = [](const grid& g) {
        return std::all_of(g.cells.begin(), g.cells.end(), [](auto v) { return v == 0; });
      };
      if (!is_arc_grid(out) || out == in || blank(in) || blank(out)) continue;
      if (std::find(inputs.begin(), inputs.end(), in) != inputs.end()) continue;
      inputs.push_back(in);
      pair = grid_pair{std::move(in), std::move(out)};
    }
    if (!pair) return std::nullopt;
    (k < demos ? t.train : t.test).push_back(std::move(*pair));
  }
  return t;
}

inline task make_task(const rule& r, const generator_config& cfg, data_rng& rng) {
  auto t = try_make_task(r, cfg, rng);
  if (!t) throw data_error("generator.hpp: rule " + describe(r) + " yields no valid pairs at these grid sizes");
  return std::move(*t);
}

// Task `index` of the stream (split, seed) with its rule: a pure function of its arguments, so
// any worker can produce any task. id = "<rule>#<seed>:<index>".
inline std::pair<rule, task> sample_rule_and_task(rule_split split, std::uint64_t seed, std::uint64_t index,
                                                  const generator_config& cfg = {}) {
  data_rng rng(stream_id({seed, std::uint64_t(split), index}));
  for (;;) {
    const rule r = sample_rule(split, cfg, rng);
    if (auto t = try_make_task(r, cfg, rng)) {
      t->id += "#" + std::to_string(seed) + ":" + std::to_string(index);
      return {r, std::move(*t)};
    }
  }
}

inline task sample_task(rule_split split, std::uint64_t seed, std::uint64_t index, const generator_config& cfg = {}) {
  return sample_rule_and_task(split, seed, index, cfg).second;
}

// Endless tasks of one split: sample_task(split, seed, 0), (..., 1), ...
class task_stream {
 public:
  explicit task_stream(rule_split split, std::uint64_t seed, generator_config cfg = {})
      : split_(split), seed_(seed), cfg_(cfg) {}
  task next() { return sample_task(split_, seed_, index_++, cfg_); }
  std::uint64_t index() const { return index_; }

 private:
  rule_split split_;
  std::uint64_t seed_;
  generator_config cfg_;
  std::uint64_t index_ = 0;
};

}  // namespace data
ETRM_END_NAMESPACE
