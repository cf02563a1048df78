// SPDX-License-Identifier: Apache-2.0
// ETRM episodes as tokens: a task's query (input → output) on a canvas of side G, and up to
// M demonstration pairs for the demonstration encoder, all under one augmentation. A grid sits
// at the canvas origin with an EOS border (ARC's encoding with a smaller canvas), so small
// generated tasks cost G² tokens instead of 900.
//
// Row layout (matches model/demo_encoder.hpp):
//   inputs [G²], labels [G²] (PAD → −100),
//   context [M, 2, G, G] demo tokens, then [M] presence flags, then [M] copies of the count.
#pragma once

#include <etrm/data/arc_encoding.hpp>
#include <etrm/data/augment.hpp>
#include <etrm/data/generator.hpp>
#include <etrm/data/generator_augment.hpp>
#include <etrm/data/token_batch.hpp>
#include <etrm/data/parallel_for.hpp>


#include <algorithm>
#include <span>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace data {

struct episode_shape {
  int side = 11;      // G
  int max_demos = 4;  // M
  index_t seq_len() const { return index_t(side) * side; }
  index_t pair_len() const { return 2 * seq_len(); }
  index_t context_width() const { return index_t(max_demos) * (pair_len() + 2); }
  bool fits(const grid& g) const { return g.rows <= side && g.cols <= side; }
  bool fits(const grid_pair& p) const { return fits(p.input) && fits(p.output); }
};

// Writes one episode row: the query pair `q`, and the demonstrations pairs[demos[i]].
inline void encode_episode(std::span<const grid_pair> pairs, std::span<const std::size_t> demos, const grid_pair& q,
                           const episode_shape& shape, std::span<std::int32_t> inputs, std::span<std::int32_t> labels,
                           std::span<std::int32_t> context) {
  const std::size_t n = std::size_t(shape.seq_len()), M = std::size_t(shape.max_demos);
  if (demos.size() > M) throw std::invalid_argument("encode_episode: more demos than the shape holds");
  encode_grid(q.input, {}, inputs, shape.side);
  if (!labels.empty()) {
    encode_grid(q.output, {}, labels, shape.side);
    for (auto& l : labels) l = l == arc_pad_token ? -100 : l;
  }
  std::fill(context.begin(), context.end(), arc_pad_token);
  for (std::size_t i = 0; i < demos.size(); ++i) {
    const grid_pair& d = pairs[demos[i]];
    encode_grid(d.input, {}, context.subspan(2 * i * n, n), shape.side);
    encode_grid(d.output, {}, context.subspan((2 * i + 1) * n, n), shape.side);
  }
  const std::size_t flags = 2 * n * M;
  for (std::size_t i = 0; i < M; ++i) {
    context[flags + i] = i < demos.size();
    context[flags + M + i] = std::int32_t(demos.size());
  }
}

// The same with `demos` indexing t.train and the query t.test[query].
inline void encode_episode(const task& t, std::span<const std::size_t> demos, std::size_t query,
                           const episode_shape& shape, std::span<std::int32_t> inputs, std::span<std::int32_t> labels,
                           std::span<std::int32_t> context) {
  for (std::size_t d : demos)
    if (d >= t.train.size()) throw std::out_of_range("encode_episode: demo index beyond the task's pairs");
  encode_episode(t.train, demos, t.test.at(query), shape, inputs, labels, context);
}

// A leave-one-out row of the same episode: demo `held` (an index into `demos`) becomes the
// query and the other demos the context, so the model learns to predict each demo's output
// from the others (docs/demo-encoders.md §3). Needs two or more demos.
inline void encode_leave_one_out(const task& t, std::span<const std::size_t> demos, std::size_t held,
                                 const episode_shape& shape, std::span<std::int32_t> inputs,
                                 std::span<std::int32_t> labels, std::span<std::int32_t> context) {
  if (demos.size() < 2 || held >= demos.size())
    throw std::invalid_argument("encode_leave_one_out: needs two or more demos and a held demo among them");
  std::vector<std::size_t> rest;
  for (std::size_t i = 0; i < demos.size(); ++i)
    if (i != held) rest.push_back(demos[i]);
  encode_episode(t.train, rest, t.train.at(demos[held]), shape, inputs, labels, context);
}

// Training episodes from the built-in generator: row r of step s is task (s·B + r) of the
// split, with 1..M demos (uniform, as many as the task has), its first query, and a random
// dihedral + colour augmentation for the whole episode (in the training split never one that
// turns the rule into a held-out one: generator_augment.hpp). Deterministic by (seed, step, row);
// rows are built in parallel.
//
// leave_one_out (the auxiliary loss of the ETRM issue): that fraction of the rows whose episode
// has two or more demos becomes a leave-one-out row (encode_leave_one_out, the held demo drawn
// at random), so the training loss is (1 − f)·L_query + f·L_leave-one-out in expectation.
class episode_source {
 public:
  episode_source(rule_split split, std::uint64_t seed, episode_shape shape, generator_config gen = {},
                 int min_demos = 1, bool augment = true, double leave_one_out = 0)
      : split_(split), seed_(seed), shape_(shape), gen_(gen), min_demos_(min_demos), augment_(augment),
        leave_one_out_(leave_one_out) {
    if (!(leave_one_out >= 0 && leave_one_out <= 1))
      throw std::invalid_argument("episode_source: leave_one_out must be a fraction in [0, 1]");
  }

  const episode_shape& shape() const { return shape_; }

  token_batch batch(index_t B, std::uint64_t step) const {
    token_batch b;
    b.batch = B;
    const std::size_t n = std::size_t(shape_.seq_len()), w = std::size_t(shape_.context_width());
    b.inputs.resize(std::size_t(B) * n);
    b.labels.resize(b.inputs.size());
    b.context.resize(std::size_t(B) * w);
    data::parallel_for(B, [&](index_t r) {
      const std::uint64_t index = step * std::uint64_t(B) + std::uint64_t(r);
      const auto [t, demos] = episode(index);
      const auto in = std::span(b.inputs).subspan(std::size_t(r) * n, n);
      const auto lab = std::span(b.labels).subspan(std::size_t(r) * n, n);
      const auto ctx = std::span(b.context).subspan(std::size_t(r) * w, w);
      if (demos.size() >= 2 && leave_one_out_ > 0 && uniform01({seed_, 0x100}, index) < leave_one_out_)
        encode_leave_one_out(t, demos, std::size_t(uniform_index({seed_, 0x101}, index, demos.size())), shape_, in,
                             lab, ctx);
      else
        encode_episode(t, demos, 0, shape_, in, lab, ctx);
    });
    return b;
  }

  // The task (augmented) and the demos used for episode `index`.
  std::pair<task, std::vector<std::size_t>> episode(std::uint64_t index) const {
    for (std::uint64_t attempt = 0;; ++attempt) {
      auto [r, t] = sample_rule_and_task(split_, seed_, index * 1000 + attempt, gen_);
      if (augment_) {
        const augmentation a = augmentation_draw({seed_, 0xE915}, index * 1000 + attempt);
        if (split_ == rule_split::train && shows_held_out(r, a)) continue;  // keep held-out values unseen
        t = apply(a, t);
      }
      if (!fits(t)) continue;
      const std::size_t most = std::min<std::size_t>(t.train.size(), std::size_t(shape_.max_demos));
      const std::size_t least = std::min<std::size_t>(most, std::size_t(std::max(1, min_demos_)));
      const std::size_t k = least + std::size_t(uniform_index({seed_, 0xDE40}, index, most - least + 1));
      std::vector<std::size_t> demos(k);
      for (std::size_t i = 0; i < k; ++i) demos[i] = i;
      return {std::move(t), std::move(demos)};
    }
  }

  bool fits(const task& t) const {
    return !t.test.empty() && !t.train.empty() &&
           std::all_of(t.train.begin(), t.train.end(), [&](const grid_pair& p) { return shape_.fits(p); }) &&
           shape_.fits(t.test[0]);
  }

 private:
  rule_split split_;
  std::uint64_t seed_;
  episode_shape shape_;
  generator_config gen_;
  int min_demos_;
  bool augment_;
  double leave_one_out_;
};

}  // namespace data
ETRM_END_NAMESPACE
