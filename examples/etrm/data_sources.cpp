// SPDX-License-Identifier: Apache-2.0
#include "data_sources.hpp"

#include <etrm/data/arc_dataset.hpp>
#include <etrm/data/arc_encoding.hpp>
#include <etrm/data/batching.hpp>
#include <etrm/data/generator.hpp>
#include <etrm/data/maze.hpp>
#include <etrm/data/query_batches.hpp>
#include <etrm/data/sudoku.hpp>

#include <fmt/core.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <unordered_set>

namespace etrm_cli {

namespace fs = std::filesystem;
namespace data = etrm::data;
using etrm::token_batch;

namespace {

constexpr std::int32_t ignore = data::ignore_label;

// Row r of a batch as spans.
struct row_spans {
  std::span<std::int32_t> in, lab, ctx;
};
row_spans row_of(token_batch& b, index_t r, index_t L, index_t W) {
  return {std::span(b.inputs).subspan(std::size_t(r * L), std::size_t(L)),
          std::span(b.labels).subspan(std::size_t(r * L), std::size_t(L)),
          std::span(b.context).subspan(std::size_t(r * W), std::size_t(W))};
}

// A grid pair on a side x side canvas at the origin; PAD labels ignored.
void encode_pair(const data::grid_pair& p, int side, std::span<std::int32_t> in, std::span<std::int32_t> lab) {
  data::encode_grid(p.input, {}, in, side);
  if (p.output.rows > 0) {
    data::encode_grid(p.output, {}, lab, side);
    for (auto& v : lab) v = v == data::arc_pad_token ? ignore : v;
  } else {
    std::fill(lab.begin(), lab.end(), ignore);
  }
}

bool task_fits(const data::task& t, const data::episode_shape& s) {
  return !t.train.empty() && !t.test.empty() &&
         std::all_of(t.train.begin(), t.train.end(), [&](const auto& p) { return s.fits(p); }) &&
         std::all_of(t.test.begin(), t.test.end(), [&](const auto& p) { return s.fits(p); });
}

// Rows of any number of sources packed into full batches of B rows (the last one padded).
class row_merger {
 public:
  row_merger(index_t B, index_t L, index_t W) : B_(B), L_(L), W_(W) {}
  // A new row with its id, task and augmentation: its spans, to be filled.
  row_spans add(const std::string& id, data::task t, const data::augmentation& a) {
    if (out_.empty() || out_.back().valid == B_) out_.push_back({etrm::padding_batch(B_, L_, W_), 0, {}, {}, {}});
    eval_rows& m = out_.back();
    m.ids.push_back(id);
    m.tasks.push_back(std::move(t));
    m.augs.push_back(a);
    return row_of(m.b, m.valid++, L_, W_);
  }
  // A copy of row r of e.
  void copy(const eval_rows& e, index_t r) {
    const auto i = std::size_t(r);
    const row_spans to = add(e.ids[i], e.tasks[i], e.augs[i]);
    std::copy_n(e.b.inputs.begin() + r * L_, L_, to.in.begin());
    std::copy_n(e.b.labels.begin() + r * L_, L_, to.lab.begin());
    std::copy_n(e.b.context.begin() + r * W_, W_, to.ctx.begin());
  }
  std::vector<eval_rows> take() { return std::move(out_); }

 private:
  index_t B_, L_, W_;
  std::vector<eval_rows> out_;
};

// ---- few-shot generator ---------------------------------------------------------------------

class fewshot_provider final : public data_provider {
 public:
  explicit fewshot_provider(run_spec& r)
      : r_(r), etrm_(r.model == "etrm"), shape_(etrm::episode_shape_of(r.enc)) {
    gen_.min_side = r.min_side;
    gen_.max_side = r.max_side;
    gen_.min_demos = r.gen_min_demos;
    gen_.max_demos = r.gen_max_demos;
    gen_.compose_percent = r.compose_percent;
    gen_.only = families_named(r.families);
    gen_.queries = 1;
    curriculum_gen_ = gen_;
    curriculum_gen_.only = families_named(r.curriculum_families);
    if (!data::split_has_rules(data::rule_split::train, gen_))
      throw std::invalid_argument("--families: every rule of these families is held out at these grid sizes; "
                                  "training needs a training rule");
    if (r.curriculum_steps > 0 && !data::split_has_rules(data::rule_split::train, curriculum_gen_))
      throw std::invalid_argument("--curriculum-families: every rule of these families is held out");
    has_held_out_ = data::split_has_rules(data::rule_split::held_out, gen_);
    if (r.task_pool > 0) {
      data::generator_config g = gen_;
      g.queries = std::max(2, r.pool_queries);
      for (std::uint64_t i = 0; pool_.size() < std::size_t(r.task_pool); ++i) {
        auto [rule, t] = data::sample_rule_and_task(data::rule_split::train, r.seed + 0x5000, i, g);
        if (!task_fits(t, shape_)) continue;
        if (in_curriculum(rule)) curriculum_pool_.push_back(pool_.size());
        pool_.push_back(std::move(t));
        pool_rules_.push_back(rule);
      }
      if (r.curriculum_steps > 0 && curriculum_pool_.empty())
        throw std::invalid_argument("the task pool has no task of the --curriculum-families");
    }
    if (!etrm_) r.cfg.num_puzzle_identifiers = index_t(pool_.size()) + 1;
  }

  index_t seq_len() const override { return shape_.seq_len(); }
  index_t vocab_size() const override { return data::arc_vocab_size; }
  index_t num_puzzle_identifiers() const override { return etrm_ ? 1 : index_t(pool_.size()) + 1; }
  int canvas_side() const override { return shape_.side; }
  index_t width() const { return etrm_ ? shape_.context_width() : 1; }

  token_batch train_batch(index_t B, std::uint64_t step) override {
    const bool curriculum = step < std::uint64_t(r_.curriculum_steps);
    if (etrm_ && pool_.empty())
      return data::episode_source(data::rule_split::train, r_.seed, shape_, curriculum ? curriculum_gen_ : gen_, 1,
                                  r_.augment, r_.leave_one_out)
          .batch(B, step);
    token_batch b = etrm::padding_batch(B, seq_len(), width());
    tbb::parallel_for(index_t(0), B, [&](index_t r) {
      const std::uint64_t idx = step * std::uint64_t(B) + std::uint64_t(r);
      const etrm::philox_key key{r_.seed, 0x7001};
      const std::size_t ti =
          curriculum ? curriculum_pool_[std::size_t(etrm::uniform_index(key, 2 * idx, curriculum_pool_.size()))]
                     : std::size_t(etrm::uniform_index(key, 2 * idx, pool_.size()));
      const data::task& src = pool_[ti];
      const std::size_t queries = src.test.size() - 1;  // the last query is held for evaluation
      auto rs = row_of(b, r, seq_len(), width());
      if (etrm_) {
        data::augmentation a;  // redrawn while it would show a held-out rule (generator_augment.hpp)
        for (std::uint64_t k = 0; r_.augment && (k == 0 || data::shows_held_out(pool_rules_[ti], a)); ++k)
          a = data::augmentation_draw({r_.seed, 0xA06 + k}, idx);
        const data::task t = data::apply(a, src);
        const std::size_t q = std::size_t(etrm::uniform_index(key, 2 * idx + 1, queries));
        std::vector<std::size_t> demos(std::min<std::size_t>(t.train.size(), std::size_t(shape_.max_demos)));
        std::iota(demos.begin(), demos.end(), std::size_t(0));
        data::encode_episode(t, demos, q, shape_, rs.in, rs.lab, rs.ctx);
      } else {
        const std::size_t n = src.train.size() + queries;
        const std::size_t p = std::size_t(etrm::uniform_index(key, 2 * idx + 1, n));
        encode_pair(p < src.train.size() ? src.train[p] : src.test[p - src.train.size()], shape_.side, rs.in, rs.lab);
        rs.ctx[0] = std::int32_t(ti + 1);
      }
    });
    return b;
  }

  // With a task pool, train_rules are the pool tasks' held-back queries and new_tasks fresh
  // tasks of the training rules that are not in the pool (TRM: the blank id).
  // Families without a held-out rule (e.g. --families gravity) have no held_out split.
  std::vector<std::string> split_names() const override {
    std::vector<std::string> names{"train_rules"};
    if (!pool_.empty()) names.push_back("new_tasks");
    if (has_held_out_) names.push_back("held_out");
    return names;
  }

  eval_split split(const std::string& name, index_t B, index_t max_batches, int) override {
    eval_split s;
    s.name = name;
    if (name == "train_rules" && !pool_.empty()) {
      s.batches = (index_t(pool_.size()) + B - 1) / B;
      s.get = [this, B](index_t i) {
        return rows(B, [&](std::uint64_t idx) -> std::optional<std::pair<data::task, std::int32_t>> {
          if (idx >= pool_.size()) return std::nullopt;
          const data::task& src = pool_[idx];
          data::task t{src.id, src.train, {src.test.back()}};
          return std::pair{std::move(t), std::int32_t(idx + 1)};
        }, std::uint64_t(i));
      };
    } else if (name == "held_out" && !has_held_out_) {
      throw std::invalid_argument("fewshot split 'held_out': --families has no held-out rule at these grid sizes");
    } else if (name == "train_rules" || name == "held_out" || (name == "new_tasks" && !pool_.empty())) {
      const auto split = name == "held_out" ? data::rule_split::held_out : data::rule_split::train;
      const std::uint64_t seed = r_.seed + (name == "held_out" ? 2000003 : 1000003);
      s.batches = max_batches > 0 ? max_batches : 4;
      s.get = [this, B, split, seed](index_t i) {
        const data::episode_source src(split, seed, shape_, gen_, shape_.max_demos, false);
        return rows(B, [&](std::uint64_t idx) -> std::optional<std::pair<data::task, std::int32_t>> {
          auto [t, demos] = src.episode(idx);
          data::task out{t.id, {}, {t.test[0]}};
          for (auto d : demos) out.train.push_back(t.train[d]);
          return std::pair{std::move(out), std::int32_t(0)};
        }, std::uint64_t(i));
      };
    } else {
      throw std::invalid_argument("fewshot has no split '" + name + "' (train_rules, held_out; new_tasks with --task-pool)");
    }
    if (max_batches > 0) s.batches = std::min(s.batches, max_batches);
    return s;
  }

 private:
  // Rows of batch i from a per-index task source: (task with its demos and one query, puzzle id).
  template <class F>
  eval_rows rows(index_t B, F&& source, std::uint64_t i) {
    eval_rows e;
    e.b = etrm::padding_batch(B, seq_len(), width());
    e.ids.resize(std::size_t(B));
    e.tasks.resize(std::size_t(B));
    std::vector<char> valid(std::size_t(B), 0);
    tbb::parallel_for(index_t(0), B, [&](index_t r) {
      auto item = source(i * std::uint64_t(B) + std::uint64_t(r));
      auto rs = row_of(e.b, r, seq_len(), width());
      if (!item) return;  // padding: PAD inputs, ignored labels, no demonstrations
      auto& [t, id] = *item;
      if (etrm_) {
        std::vector<std::size_t> demos(std::min<std::size_t>(t.train.size(), std::size_t(shape_.max_demos)));
        std::iota(demos.begin(), demos.end(), std::size_t(0));
        data::encode_episode(t, demos, 0, shape_, rs.in, rs.lab, rs.ctx);
      } else {
        encode_pair(t.test[0], shape_.side, rs.in, rs.lab);
        rs.ctx[0] = id;
      }
      e.ids[std::size_t(r)] = t.id;
      e.tasks[std::size_t(r)] = std::move(t);
      valid[std::size_t(r)] = 1;
    });
    e.valid = index_t(std::find(valid.begin(), valid.end(), 0) - valid.begin());
    return e;
  }

  static std::vector<data::family> families_named(const std::vector<std::string>& names) {
    std::vector<data::family> out;
    for (const std::string& name : names) {
      const auto& all = data::families();
      const auto it = std::find_if(all.begin(), all.end(), [&](const auto& f) { return name == f.name; });
      if (it == all.end()) throw std::invalid_argument("unknown rule family '" + name + "' (etrm generate lists them)");
      out.push_back(it->fam);
    }
    return out;
  }

  bool in_curriculum(const data::rule& rule) const {
    const auto& only = curriculum_gen_.only;
    const auto has = [&](data::family f) { return std::find(only.begin(), only.end(), f) != only.end(); };
    return has(rule.first.fam) && (!rule.then || has(rule.then->fam));
  }

  run_spec& r_;
  bool etrm_;
  data::episode_shape shape_;
  data::generator_config gen_;
  data::generator_config curriculum_gen_;  // gen_ restricted to the curriculum families
  bool has_held_out_ = true;               // some rule of gen_'s families is held out
  std::vector<std::size_t> curriculum_pool_;  // pool tasks whose rule uses only curriculum families
  std::vector<data::task> pool_;
  std::vector<data::rule> pool_rules_;  // the rule of each pool task
};

// ---- Sudoku -----------------------------------------------------------------------------------

class sudoku_provider final : public data_provider {
 public:
  explicit sudoku_provider(run_spec& r) : r_(r) {
    if (!r.data_dir.empty()) {
      const fs::path dir = fs::path(r.data_dir) / "sudoku";
      if (fs::exists(dir / "train.csv")) train_ = data::load_sudoku_extreme_csv(dir / "train.csv", r.data_limit);
      if (fs::exists(dir / "test.csv")) test_ = data::load_sudoku_extreme_csv(dir / "test.csv", r.data_limit);
      // The sudoku-exchange puzzle bank ships no solutions: label it with the exact solver and
      // keep every tenth puzzle for the test split.
      const fs::path bank = dir / "sudoku-exchange-diabolical.txt";
      if (train_.empty() && fs::exists(bank)) {
        auto all = data::load_sudoku_bank(bank);
        if (r.data_limit > 0 && all.size() > std::size_t(r.data_limit)) all.resize(std::size_t(r.data_limit));
        tbb::parallel_for(std::size_t(0), all.size(), [&](std::size_t i) { data::label_sudoku(all[i]); });
        for (std::size_t i = 0; i < all.size(); ++i) (i % 10 == 9 ? test_ : train_).push_back(std::move(all[i]));
      }
    }
    r.cfg.num_puzzle_identifiers = 1;
  }
  index_t seq_len() const override { return 81; }
  index_t vocab_size() const override { return data::sudoku_vocab_size; }

  token_batch train_batch(index_t B, std::uint64_t step) override {
    token_batch b = etrm::padding_batch(B, 81, 1);
    tbb::parallel_for(index_t(0), B, [&](index_t r) {
      const std::uint64_t idx = step * std::uint64_t(B) + std::uint64_t(r);
      data::data_rng rng(data::stream_id({r_.seed, 0x5D, idx}));
      const data::sudoku_example e = train_.empty() ? data::generate_sudoku(rng, r_.sudoku_clues)
                                                    : train_[std::size_t(data::rand_below(rng, train_.size()))];
      encode(data::augment_sudoku(e, rng), b, r);
    });
    return b;
  }
  std::vector<std::string> split_names() const override { return {"test"}; }
  eval_split split(const std::string& name, index_t B, index_t max_batches, int) override {
    if (name != "test") throw std::invalid_argument("sudoku has no split '" + name + "' (test)");
    eval_split s{name, max_batches > 0 ? max_batches : 4, {}};
    if (!test_.empty()) s.batches = std::min<index_t>(s.batches, (index_t(test_.size()) + B - 1) / B);
    s.get = [this, B](index_t i) {
      eval_rows e;
      e.b = etrm::padding_batch(B, 81, 1);
      e.ids.resize(std::size_t(B));
      tbb::parallel_for(index_t(0), B, [&](index_t r) {
        const std::uint64_t idx = std::uint64_t(i * B + r);
        if (!test_.empty() && idx >= test_.size()) return;
        data::data_rng rng(data::stream_id({r_.seed + 1000003, 0x5D, idx}));
        const data::sudoku_example ex = test_.empty() ? data::generate_sudoku(rng, r_.sudoku_clues) : test_[idx];
        encode(ex, e.b, r);
        e.ids[std::size_t(r)] = test_.empty() ? "generated:" + std::to_string(idx) : ex.source;
      });
      e.valid = test_.empty() ? B : std::min<index_t>(B, index_t(test_.size()) - i * B);
      return e;
    };
    return s;
  }

 private:
  static void encode(const data::sudoku_example& e, token_batch& b, index_t r) {
    auto rs = row_of(b, r, 81, 1);
    data::encode_sudoku(e.question, rs.in);
    data::encode_sudoku(e.answer, rs.lab);
  }
  run_spec& r_;
  std::vector<data::sudoku_example> train_, test_;
};

// ---- mazes ------------------------------------------------------------------------------------

class maze_provider final : public data_provider {
 public:
  explicit maze_provider(run_spec& r) : r_(r) {
    cfg_.size = r.maze_size;
    r.cfg.num_puzzle_identifiers = 1;
  }
  index_t seq_len() const override { return index_t(cfg_.size) * cfg_.size; }
  index_t vocab_size() const override { return data::maze_vocab_size; }
  token_batch train_batch(index_t B, std::uint64_t step) override { return make(B, step, r_.seed, true); }
  std::vector<std::string> split_names() const override { return {"test"}; }
  eval_split split(const std::string& name, index_t B, index_t max_batches, int) override {
    if (name != "test") throw std::invalid_argument("maze has no split '" + name + "' (test)");
    return {name, max_batches > 0 ? max_batches : 4, [this, B](index_t i) {
              eval_rows e;
              e.b = make(B, std::uint64_t(i), r_.seed + 1000003, false);
              e.valid = B;
              e.ids.assign(std::size_t(B), "generated");
              return e;
            }};
  }

 private:
  token_batch make(index_t B, std::uint64_t step, std::uint64_t seed, bool augment) const {
    const index_t L = seq_len();
    token_batch b = etrm::padding_batch(B, L, 1);
    tbb::parallel_for(index_t(0), B, [&](index_t r) {
      data::data_rng rng(data::stream_id({seed, 0x3A2E, step * std::uint64_t(B) + std::uint64_t(r)}));
      data::maze_example m = data::generate_maze(cfg_, rng);
      if (augment) m = data::dihedral(m, int(data::rand_below(rng, 8)));
      auto rs = row_of(b, r, L, 1);
      data::encode_maze(m.question, rs.in);
      data::encode_maze(m.answer, rs.lab);
    });
    return b;
  }
  run_spec& r_;
  data::maze_config cfg_;
};

// ---- ARC --------------------------------------------------------------------------------------

struct arc_files {
  std::vector<data::task> training, evaluation;
};

arc_files load_arc(const run_spec& r) {
  const std::string set = "arc-agi-" + std::to_string(r.arc_version);
  if (r.data_dir.empty())
    throw data::data_error("ARC needs --data-dir (or ETRM_DATA_DIR) holding " + set + "/training and " + set +
                           "/evaluation");
  const fs::path root(r.data_dir);
  arc_files f;  // ConceptARC is an evaluation suite: it never trains
  f.training = data::load_arc_tasks(root / set / "training");
  f.evaluation = data::load_arc_tasks(root / set / "evaluation");
  return f;
}

class arc_trm_provider final : public data_provider {
 public:
  explicit arc_trm_provider(run_spec& r) : r_(r) {
    arc_files f = load_arc(r);
    data::arc_dataset_config c;
    c.num_aug = std::size_t(std::max(0, r.arc_augmentations));
    c.seed = r.seed;
    ds_ = std::make_unique<data::arc_dataset>(std::move(f.training), std::move(f.evaluation), c);
    train_view_ = std::make_unique<data::arc_dataset::split_view>(ds_->split(data::arc_split::train));
    test_view_ = std::make_unique<data::arc_dataset::split_view>(ds_->split(data::arc_split::test));
    r.cfg.num_puzzle_identifiers = ds_->num_puzzle_identifiers();
  }
  index_t seq_len() const override { return index_t(data::arc_seq_len); }
  index_t vocab_size() const override { return data::arc_vocab_size; }
  index_t num_puzzle_identifiers() const override { return ds_->num_puzzle_identifiers(); }
  int canvas_side() const override { return data::arc_canvas_side; }

  // The sampler walks iterations of shuffled groups; batch `step` is found by replaying from the
  // start when it is not the next one (a resumed run), so it depends on (seed, step) only.
  token_batch train_batch(index_t B, std::uint64_t step) override {
    if (!sampler_ || sampler_batch_size_ != B || step != next_step_) {
      sampler_ = std::make_unique<data::train_sampler<data::arc_dataset::split_view>>(*train_view_, std::size_t(B), r_.seed);
      sampler_batch_size_ = B;
      next_step_ = 0;
      while (next_step_ < step) {
        next(B);
        ++next_step_;
      }
    }
    data::batch b = next(B);
    ++next_step_;
    return {B, std::move(b.inputs), std::move(b.labels), std::move(b.puzzle_identifiers)};
  }

  std::vector<std::string> split_names() const override { return {"arc-eval"}; }
  eval_split split(const std::string& name, index_t B, index_t max_batches, int) override {
    if (name != "arc-eval") throw std::invalid_argument("arc has no split '" + name + "' (arc-eval)");
    const index_t total = (index_t(test_view_->total_examples()) + B - 1) / B;
    eval_split s{name, max_batches > 0 ? std::min(total, max_batches) : total, {}, true, {}, -1};
    const auto tasks = ds_->evaluation_tasks();
    s.vote_tasks.assign(tasks.begin(), tasks.end());
    s.get = [this, B](index_t i) {
      if (!seq_ || i == 0 || i != seq_next_) {
        seq_ = std::make_unique<data::sequential_batches<data::arc_dataset::split_view>>(*test_view_, std::size_t(B));
        for (seq_next_ = 0; seq_next_ < i; ++seq_next_) seq_->next(scratch_);
      }
      data::batch b;
      seq_->next(b);
      ++seq_next_;
      eval_rows e;
      e.valid = index_t(b.num_valid);
      for (std::size_t r = 0; r < b.size; ++r) {
        const auto p = ds_->identify(b.puzzle_identifiers[r]);
        e.ids.push_back(p ? p->source->id : "");
        e.augs.push_back(p ? p->aug : data::augmentation{});
      }
      e.b = {B, std::move(b.inputs), std::move(b.labels), std::move(b.puzzle_identifiers)};
      return e;
    };
    return s;
  }

 private:
  data::batch next(index_t B) {
    data::batch b;
    while (!sampler_->next(b)) sampler_->begin_iteration(sampler_->iteration() + 1);
    (void)B;
    return b;
  }
  run_spec& r_;
  std::unique_ptr<data::arc_dataset> ds_;
  std::unique_ptr<data::arc_dataset::split_view> train_view_, test_view_;
  std::unique_ptr<data::train_sampler<data::arc_dataset::split_view>> sampler_;
  index_t sampler_batch_size_ = 0;
  std::uint64_t next_step_ = 0;
  std::unique_ptr<data::sequential_batches<data::arc_dataset::split_view>> seq_;
  index_t seq_next_ = 0;
  data::batch scratch_;
};

class arc_etrm_provider final : public data_provider {
 public:
  explicit arc_etrm_provider(run_spec& r) : r_(r), shape_(etrm::episode_shape_of(r.enc)) {
    arc_files f = load_arc(r);
    // Nothing of an evaluated task's test pairs trains: not the training tasks that are one of
    // them (same id or same pairs), not a pair whose output is one of their test outputs.
    std::vector<data::task> evaluated = f.evaluation;
    for (const auto& name : available_suites(r))
      if (name != "generator-held-out")
        for (auto& t : suite_tasks(r, name, 0)) evaluated.push_back(std::move(t));
    std::unordered_set<std::uint64_t> test_outputs;
    for (const auto& t : evaluated)
      for (const auto& p : t.test) test_outputs.insert(data::grid_hash(p.output));
    const auto leak = data::find_leakage(f.training, evaluated);
    std::size_t pairs_left_out = 0;
    // Training episodes use the pairs that fit the canvas (all of them at 30x30).
    const auto add_to_pool = [&](std::vector<data::grid_pair> pairs) {
      pairs_left_out += std::size_t(std::erase_if(
          pairs, [&](const data::grid_pair& p) { return test_outputs.contains(data::grid_hash(p.output)); }));
      std::erase_if(pairs, [&](const data::grid_pair& p) { return !shape_.fits(p); });
      if (pairs.size() >= 2) pool_.push_back(std::move(pairs));
    };
    const std::size_t sources = f.training.size();
    for (auto& t : data::exclude_leaked(std::move(f.training), leak)) {
      std::vector<data::grid_pair> pairs = t.train;
      pairs.insert(pairs.end(), t.test.begin(), t.test.end());
      add_to_pool(std::move(pairs));
      ++kept_;
    }
    if (r.eval_demos_in_training)  // their demonstrations only: test outputs are never seen
      for (const auto& t : f.evaluation) add_to_pool(t.train);
    fmt::print("training pool: {} episodes' sources; left out: {} of {} training tasks (an evaluated task's id or "
               "pairs), {} pairs (output = an evaluated test output); evaluation demos in training: {}\n",
               pool_.size(), sources - kept_, sources, pairs_left_out, r.eval_demos_in_training ? "yes" : "no");
    eval_ = std::move(f.evaluation);
    if (pool_.empty())
      throw data::data_error(r.data_dir + ": no ARC task with two or more pairs that fit the " +
                             std::to_string(shape_.side) + "x" + std::to_string(shape_.side) + " canvas to train on");
  }
  index_t seq_len() const override { return shape_.seq_len(); }
  index_t vocab_size() const override { return data::arc_vocab_size; }
  int canvas_side() const override { return shape_.side; }

  token_batch train_batch(index_t B, std::uint64_t step) override {
    token_batch b = etrm::padding_batch(B, seq_len(), shape_.context_width());
    tbb::parallel_for(index_t(0), B, [&](index_t r) {
      const std::uint64_t idx = step * std::uint64_t(B) + std::uint64_t(r);
      const etrm::philox_key key{r_.seed, 0xA4C};
      const auto& pairs = pool_[std::size_t(etrm::uniform_index(key, 3 * idx, pool_.size()))];
      const std::size_t q = std::size_t(etrm::uniform_index(key, 3 * idx + 1, pairs.size()));
      const std::size_t start = std::size_t(etrm::uniform_index(key, 3 * idx + 2, pairs.size()));
      data::task t{"", {}, {pairs[q]}};
      for (std::size_t k = 0; k < pairs.size() && t.train.size() < std::size_t(shape_.max_demos); ++k) {
        const std::size_t j = (start + k) % pairs.size();
        if (j != q) t.train.push_back(pairs[j]);
      }
      if (r_.augment) t = data::apply(data::augmentation_draw({r_.seed, 0xA06}, idx), t);
      std::vector<std::size_t> demos(t.train.size());
      std::iota(demos.begin(), demos.end(), std::size_t(0));
      auto rs = row_of(b, r, seq_len(), shape_.context_width());
      data::encode_episode(t, demos, 0, shape_, rs.in, rs.lab, rs.ctx);
    });
    return b;
  }

  std::vector<std::string> split_names() const override { return {"arc-eval"}; }
  eval_split split(const std::string& name, index_t B, index_t max_batches, int augmentations) override {
    if (name != "arc-eval") throw std::invalid_argument("arc has no split '" + name + "' (arc-eval)");
    eval_split s = scored_split(r_, name, eval_, B, augmentations);
    if (max_batches > 0) s.batches = std::min(s.batches, max_batches);
    return s;
  }

 private:
  run_spec& r_;
  data::episode_shape shape_;
  std::vector<std::vector<data::grid_pair>> pool_;
  std::size_t kept_ = 0;  // training tasks that are no evaluated task
  std::vector<data::task> eval_;
};

}  // namespace

// ---- external evaluation suites ------------------------------------------------------------------

namespace {
// The ARC suites' folders under the data directory.
std::optional<fs::path> suite_folder(const std::string& name) {
  if (name == "arc1-eval") return fs::path("arc-agi-1") / "evaluation";
  if (name == "concept-arc") return fs::path("concept-arc") / "corpus";
  if (name == "arc2-eval") return fs::path("arc-agi-2") / "evaluation";
  return std::nullopt;
}
}  // namespace

const std::vector<std::string>& suite_names() {
  static const std::vector<std::string> names{"arc1-eval", "concept-arc", "arc2-eval", "generator-held-out"};
  return names;
}

bool is_suite(const std::string& name) {
  return std::find(suite_names().begin(), suite_names().end(), name) != suite_names().end();
}

std::vector<std::string> available_suites(const run_spec& r) {
  std::vector<std::string> out;
  for (const auto& name : suite_names()) {
    const auto folder = suite_folder(name);
    if (!folder || (!r.data_dir.empty() && fs::is_directory(fs::path(r.data_dir) / *folder))) out.push_back(name);
  }
  return out;
}

bool fits_canvas(const data::task& t, const data::episode_shape& s) {
  return !t.test.empty() && std::all_of(t.test.begin(), t.test.end(), [&](const auto& p) { return s.fits(p); }) &&
         std::any_of(t.train.begin(), t.train.end(), [&](const auto& p) { return s.fits(p); });
}

std::vector<data::task> suite_tasks(const run_spec& r, const std::string& name, std::size_t count) {
  if (name == "generator-held-out") {
    data::generator_config g;
    g.min_side = r.min_side;
    g.max_side = r.max_side;
    g.min_demos = r.gen_min_demos;
    g.max_demos = r.gen_max_demos;
    g.compose_percent = r.compose_percent;
    g.queries = 1;
    std::vector<data::task> tasks(count);
    tbb::parallel_for(std::size_t(0), count, [&](std::size_t i) {
      tasks[i] = data::sample_task(data::rule_split::held_out, r.seed + 3000017, i, g);  // drawn once, fitting or not
      tasks[i].id = fmt::format("held_out_{:05d}_{}", i, tasks[i].id);
    });
    return tasks;
  }
  const auto folder = suite_folder(name);
  if (!folder) throw std::invalid_argument("unknown evaluation suite '" + name + "'");
  const fs::path dir = fs::path(r.data_dir) / *folder;
  if (r.data_dir.empty() || !fs::is_directory(dir))
    throw data::data_error("suite " + name + " needs " + folder->string() + " under --data-dir (or ETRM_DATA_DIR)" +
                           (r.data_dir.empty() ? "" : "; not found in " + r.data_dir));
  return data::load_arc_tasks(dir);
}

eval_split scored_split(const run_spec& r, const std::string& name, std::vector<data::task> tasks, index_t B,
                        int augmentations) {
  const bool etrm = r.model == "etrm";
  if (!etrm && r.task != "fewshot")
    throw std::invalid_argument("split " + name + ": a TRM answers ARC-format tasks only when trained on the few-shot "
                                "generator's canvases (--task fewshot)");
  const data::episode_shape shape = etrm::episode_shape_of(r.enc);
  const index_t L = shape.seq_len(), W = etrm ? shape.context_width() : 1;
  row_merger rows(B, L, W);
  index_t fitting = 0;
  for (const auto& t : tasks) {
    if (!fits_canvas(t, shape)) continue;  // no rows, no answer: failed
    ++fitting;
    const data::task part = *etrm::answerable_part(t, shape);
    if (etrm) {
      for (const auto& e : task_rows(part, r.enc, augmentations, r.seed, B, t.id))
        for (index_t i = 0; i < e.valid; ++i) rows.copy(e, i);
    } else {  // a TRM answers each test input under the blank id (or fits its copy on the demos)
      for (const auto& q : part.test) {
        const row_spans to = rows.add(t.id, {t.id, part.train, {q}}, {});
        encode_pair(q, shape.side, to.in, to.lab);
        to.ctx[0] = 0;
      }
    }
  }
  auto all = std::make_shared<std::vector<eval_rows>>(rows.take());
  eval_split s{name, index_t(all->size()), [all](index_t i) { return (*all)[std::size_t(i)]; }, true, std::move(tasks),
               fitting};
  return s;
}

void take_other_tasks_demos(eval_rows& e) {
  const index_t n = e.valid, W = index_t(e.b.context.size()) / std::max<index_t>(1, e.b.batch);
  const std::vector<std::int32_t> own = e.b.context;
  for (index_t r = 0; r < n; ++r)
    for (index_t k = 1; k < n; ++k) {
      const index_t o = (r + k) % n;
      if (e.ids[std::size_t(o)] == e.ids[std::size_t(r)]) continue;
      std::copy_n(own.begin() + o * W, W, e.b.context.begin() + r * W);
      break;
    }
}

// ---- shared -------------------------------------------------------------------------------------

void finalize_spec(run_spec& r) {
  const auto one_of = [](const std::string& v, std::initializer_list<const char*> ok, const char* what) {
    for (const char* o : ok)
      if (v == o) return;
    std::string list;
    for (const char* o : ok) list += (list.empty() ? "" : ", ") + std::string(o);
    throw std::invalid_argument(std::string("unknown ") + what + " '" + v + "' (" + list + ")");
  };
  one_of(r.task, {"fewshot", "sudoku", "maze", "arc"}, "task");
  one_of(r.model, {"etrm", "trm", "hrm"}, "model");
  one_of(r.loss, {"stablemax", "softmax"}, "loss");
  const bool etrm = r.model == "etrm";
  if (etrm && (r.task == "sudoku" || r.task == "maze"))
    throw std::invalid_argument("--model etrm reads demonstrations; task '" + r.task + "' has none (use --model trm)");
  if (r.batch_size <= 0) throw std::invalid_argument("--batch-size must be positive");
  if (!(r.opt.encoder_lr_scale >= 0)) throw std::invalid_argument("--encoder-lr-scale must be >= 0");
  auto& c = r.cfg;
  if (r.model == "hrm" && c.H_layers <= 0)
    throw std::invalid_argument("--model hrm needs H_layers > 0 (--H-layers, or a preset hrm_*)");
  if (r.model == "hrm" && c.mlp_t) throw std::invalid_argument("--model hrm has no mlp_t variant (HRM's blocks attend)");
  if (r.model != "hrm" && c.H_layers > 0)
    throw std::invalid_argument("H_layers is HRM's second net; --model " + r.model + " has none (use --model hrm)");
  if (r.task == "fewshot") {
    if (r.enc.grid_side < 3 || r.enc.grid_side > 30) throw std::invalid_argument("--grid-side must be 3..30");
    if (r.max_side > r.enc.grid_side) r.max_side = int(r.enc.grid_side);
    if (r.min_side > r.max_side) throw std::invalid_argument("--min-side exceeds --max-side / --grid-side");
    c.seq_len = r.enc.grid_side * r.enc.grid_side;
    c.vocab_size = data::arc_vocab_size;
    if (!etrm && r.task_pool <= 0) r.task_pool = 512;
  } else if (r.task == "arc") {
    if (r.arc_version != 1 && r.arc_version != 2) throw std::invalid_argument("--arc-version must be 1 or 2");
    if (r.arc_canvas_side < 3 || r.arc_canvas_side > data::arc_canvas_side)
      throw std::invalid_argument("--arc-canvas-side must be 3..30");
    if (!etrm && r.arc_canvas_side != data::arc_canvas_side)
      throw std::invalid_argument("--arc-canvas-side needs --model etrm (TRM on ARC uses the 30x30 canvas)");
    if (etrm) r.enc.grid_side = r.arc_canvas_side;
    c.seq_len = etrm ? r.enc.grid_side * r.enc.grid_side : index_t(data::arc_seq_len);
    c.vocab_size = data::arc_vocab_size;
  } else if (r.task == "sudoku") {
    c.seq_len = 81;
    c.vocab_size = data::sudoku_vocab_size;
  } else {
    if (r.maze_size < 3 || r.maze_size > 30) throw std::invalid_argument("--maze-size must be 3..30");
    c.seq_len = index_t(r.maze_size) * r.maze_size;
    c.vocab_size = data::maze_vocab_size;
  }
  if (etrm) {
    c.puzzle_emb_ndim = 0;
    c.num_puzzle_identifiers = 1;
    if (c.puzzle_emb_len <= 0) throw std::invalid_argument("etrm needs puzzle_emb_len > 0 (the number of context tokens)");
    if (r.enc.max_demos <= 0) throw std::invalid_argument("--max-demos must be positive");
  } else if (c.puzzle_emb_ndim == 0 && (r.model == "hrm" || (r.task != "sudoku" && r.task != "maze"))) {
    c.puzzle_emb_ndim = c.hidden_size;  // HRM always has its puzzle slot: the q_head reads it
  }
  if (c.mlp_t && c.rotary()) c.pos_encodings = etrm::pos_encoding::none;
  if (r.opt.total_steps == 0 && r.steps > 0) r.opt.total_steps = r.steps;
  c.validate();
}

std::unique_ptr<data_provider> make_provider(run_spec& r) {
  if (r.task == "fewshot") return std::make_unique<fewshot_provider>(r);
  if (r.task == "sudoku") return std::make_unique<sudoku_provider>(r);
  if (r.task == "maze") return std::make_unique<maze_provider>(r);
  if (r.model == "etrm") return std::make_unique<arc_etrm_provider>(r);
  return std::make_unique<arc_trm_provider>(r);
}

void strip_demos(token_batch& b, const etrm::encoder_config& e) {
  const std::size_t W = std::size_t(e.context_width());
  for (index_t r = 0; r < b.batch; ++r) std::fill_n(b.context.begin() + std::ptrdiff_t(std::size_t(r) * W), W, 0);
}

std::vector<eval_rows> task_rows(const data::task& t, const etrm::encoder_config& e, int augmentations,
                                 std::uint64_t seed, index_t B, const std::string& source) {
  auto q = etrm::make_query_batches(t, etrm::episode_shape_of(e), augmentations, seed, B, source);
  std::vector<eval_rows> out;
  auto task = q.tasks.begin();
  for (std::size_t i = 0; i < q.batches.size(); ++i) {
    const auto n = std::size_t(q.valid[i]);
    out.push_back({std::move(q.batches[i]), q.valid[i], std::vector<std::string>(n, t.id),
                   std::vector<data::task>(std::make_move_iterator(task), std::make_move_iterator(task + std::ptrdiff_t(n))),
                   std::move(q.augs[i])});
    task += std::ptrdiff_t(n);
  }
  return out;
}

data::grid decode_canvas(const std::vector<std::int32_t>& tokens, std::size_t row, int side) {
  const std::size_t n = std::size_t(side) * std::size_t(side);
  return data::crop_canvas(std::span(tokens).subspan(row * n, n), {}, side);
}

}  // namespace etrm_cli
