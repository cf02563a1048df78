// SPDX-License-Identifier: Apache-2.0
// ETRM test-time adaptation (train/context_adaptation.hpp): the gradient the encoder's offset
// hook collects is the derivative of the deep-supervision loss (finite differences, reference
// backend, double), leave-one-out batches hold each demo once, a zero offset is the plain
// model, and fitting the offsets lowers the leave-one-out loss of unseen tasks. Test-time training
// of the weights, and the task solver that answers a task's test inputs under voting augmentations.
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

#include <numeric>

using namespace etrm;

namespace {

data::episode_shape tiny_shape() { return {4, 3}; }

trm_config etrm_config() {
  trm_config c = tiny::config(false, 1, 2);
  c.seq_len = tiny_shape().seq_len();
  c.vocab_size = 12;
  c.num_puzzle_identifiers = 1;
  c.puzzle_emb_ndim = 0;
  c.halt_max_steps = 2;
  return c;
}
encoder_config tiny_encoder() { return {tiny_shape().side, tiny_shape().max_demos, 1, 1}; }

std::vector<data::task> held_out_tasks(std::size_t count) {
  data::generator_config g;
  g.min_side = 2;
  g.max_side = 3;
  const data::episode_source src(data::rule_split::held_out, 23, tiny_shape(), g, 2, false);
  std::vector<data::task> out;
  for (std::uint64_t i = 0; out.size() < count; ++i) {
    auto [t, demos] = src.episode(i);
    data::task kept{t.id, {}, {t.test[0]}};
    for (auto d : demos) kept.train.push_back(t.train[d]);
    out.push_back(std::move(kept));
  }
  return out;
}

template <class D, class T>
using etrm_model = trm_model<D, T, attention_mixer<D>, dynamic_recursion, demo_encoder_policy<>::type>;

}  // namespace

TEST_CASE("leave-one-out batches: every demo of every task once, padding marked") {
  const auto tasks = held_out_tasks(5);
  const auto rows = make_leave_one_out_batches(tasks, tiny_shape(), 4);
  std::size_t want = 0;
  for (const auto& t : tasks) want += std::min<std::size_t>(t.train.size(), 3);
  std::vector<std::size_t> per_task(tasks.size(), 0);
  std::size_t padding = 0;
  for (const auto& s : rows.slot)
    for (std::int32_t k : s) k < 0 ? ++padding : ++per_task[std::size_t(k)];
  CHECK(std::accumulate(per_task.begin(), per_task.end(), std::size_t(0)) == want);
  CHECK(rows.batches.size() == (want + 3) / 4);
  CHECK(padding == rows.batches.size() * 4 - want);
  for (std::size_t k = 0; k < tasks.size(); ++k) CHECK(per_task[k] == std::min<std::size_t>(tasks[k].train.size(), 3));
}

// One supervision step with T = 1: the taped cycle is the whole computation, so the gradient is
// exact (with more steps or cycles TRM's truncated gradient ignores the detached carry).
TEST_CASE("the context offset gradient matches finite differences of the supervision loss") {
  using R = reference_device;
  context_t<R> ctx;
  etrm_model<R, double> m(ctx, etrm_config(), tiny_encoder());
  trainer<etrm_model<R, double>> tr(ctx, m, 3, {});
  const auto tasks = held_out_tasks(2);
  const auto rows = make_leave_one_out_batches(tasks, tiny_shape(), 3);
  const token_batch& b = rows.batches.at(0);
  const index_t KD = m.config().prefix_len() * m.config().hidden_size, n = 3 * KD;
  std::vector<double> offset = tiny::uniform_values(n, {9, 1});
  for (double& v : offset) v *= 0.3;
  buffer<double, R> off(n), grad(n);
  auto loss_at = [&](const std::vector<double>& o, bool with_grad) {
    std::copy(o.begin(), o.end(), off.data());
    std::fill(grad.data(), grad.data() + n, 0.0);
    m.prefix().set_context_offset(off.data(), with_grad ? grad.data() : nullptr);
    const double l = tr.supervised_gradients(b, 1);
    m.prefix().set_context_offset(nullptr, nullptr);
    return l;
  };
  loss_at(offset, true);
  const std::vector<double> analytic(grad.data(), grad.data() + n);
  double worst = 0, largest = 0;
  for (std::size_t j : testing::sample_indices(std::size_t(n), 24)) {
    const double h = 1e-5;
    auto plus = offset, minus = offset;
    plus[j] += h;
    minus[j] -= h;
    const double fd = (loss_at(plus, false) - loss_at(minus, false)) / (2 * h);
    worst = std::max(worst, std::abs(fd - analytic[j]));
    largest = std::max(largest, std::abs(fd));
  }
  INFO("max |fd - analytic| " << worst << ", max |fd| " << largest);
  CHECK(largest > 1e-4);  // the offsets matter
  CHECK(worst <= 1e-6 + 1e-5 * largest);
}

TEST_CASE("test-time adaptation: zero offsets are the plain model, fitting lowers the leave-one-out loss") {
  using C = cpu_device;
  context_t<C> ctx(2);
  etrm_model<C, float> m(ctx, etrm_config(), tiny_encoder());
  trainer<etrm_model<C, float>> tr(ctx, m, 8, {});
  const auto tasks = held_out_tasks(6);
  // Query rows of the tasks (the full demo sets as context), row r = task r.
  token_batch q;
  q.batch = 8;
  const auto shape = tiny_shape();
  const std::size_t n = std::size_t(shape.seq_len()), w = std::size_t(shape.context_width());
  q.inputs.assign(8 * n, 0);
  q.labels.assign(8 * n, -100);
  q.context.assign(8 * w, 0);
  std::vector<std::int32_t> slot(8, -1);
  for (std::size_t r = 0; r < tasks.size(); ++r) {
    std::vector<std::size_t> demos(tasks[r].train.size());
    std::iota(demos.begin(), demos.end(), std::size_t(0));
    data::encode_episode(tasks[r], demos, 0, shape, std::span(q.inputs).subspan(r * n, n),
                         std::span(q.labels).subspan(r * n, n), std::span(q.context).subspan(r * w, w));
    slot[r] = std::int32_t(r);
  }
  context_adapter<etrm_model<C, float>> tta(tr, {.steps = 12, .lr = 0.2});
  std::vector<std::int32_t> plain_pred, zero_pred, fitted_pred;
  const auto plain = tr.evaluate(q, &plain_pred);
  const std::vector<float> zero(tasks.size() * std::size_t(tta.width()), 0.f);
  const auto same = tta.evaluate(q, zero, slot, &zero_pred);
  CHECK(same.lm_loss == plain.lm_loss);
  CHECK(zero_pred == plain_pred);

  std::vector<double> losses;
  const auto delta = tta.fit(tasks, tr.eval_parameters(), &losses);
  REQUIRE(losses.size() == 13);
  MESSAGE("leave-one-out loss " << losses.front() << " -> " << losses.back() << " after 12 steps");
  // An untrained model leans little on its context, so the loss moves by a few percent only;
  // it must move down, step after step.
  CHECK(losses.back() < 0.98 * losses.front());
  int rises = 0;
  for (std::size_t i = 1; i < losses.size(); ++i) rises += losses[i] > losses[i - 1];
  CHECK(rises <= 2);
  const auto fitted = tta.evaluate(q, delta, slot, &fitted_pred);
  CHECK(fitted.lm_loss != plain.lm_loss);  // the fitted offsets reach the queries
  // The hook is cleared after each call: plain evaluation is unchanged.
  CHECK(tr.evaluate(q).lm_loss == plain.lm_loss);
}

TEST_CASE("augmented copies: the task first, then distinct dihedral + colour variants of every pair") {
  const auto t = held_out_tasks(1).front();
  const auto copies = augmented_copies(t, 6, 4);
  REQUIRE(copies.size() >= 2);
  CHECK(copies.size() <= 6);
  CHECK(copies.front().train == t.train);
  for (std::size_t i = 1; i < copies.size(); ++i) {
    CHECK(copies[i].train.size() == t.train.size());
    CHECK(copies[i].test.size() == t.test.size());
    for (std::size_t j = 0; j < i; ++j) CHECK_FALSE(copies[i].train == copies[j].train);
  }
  CHECK(augmented_copies(t, 1, 4).size() == 1);
}

TEST_CASE("test-time training of the weights: zero steps is the plain model, fitting lowers the loss, "
          "the trained weights stay") {
  using C = cpu_device;
  context_t<C> ctx(2);
  etrm_model<C, float> m(ctx, etrm_config(), tiny_encoder());
  trainer<etrm_model<C, float>> tr(ctx, m, 8, {});
  const auto tasks = held_out_tasks(3);
  const auto before = to_host<C>(ctx, tr.parameters().data(), tr.parameters().size());

  weight_adapter<etrm_model<C, float>> none(tr, {.steps = 0});
  const float* same = none.fit(tasks[0], tr.parameters().data());
  CHECK(to_host<C>(ctx, same, tr.parameters().size()) == before);

  weight_adapter<etrm_model<C, float>> ttt(tr, {.steps = 10, .lr = 3e-3});
  for (const auto& t : tasks) {
    std::vector<double> losses;
    const float* w = ttt.fit(t, tr.parameters().data(), &losses);
    REQUIRE(losses.size() == 11);
    MESSAGE(t.id << ": leave-one-out loss " << losses.front() << " -> " << losses.back() << " after 10 steps");
    CHECK(losses.back() < 0.8 * losses.front());
    CHECK(w != tr.parameters().data());
  }
  CHECK(to_host<C>(ctx, tr.parameters().data(), tr.parameters().size()) == before);

  // The query (test pairs) never reaches the fit: another answer gives the same weights.
  const auto fitted = to_host<C>(ctx, ttt.fit(tasks[0], tr.parameters().data()), tr.parameters().size());
  data::task other_answer = tasks[0];
  for (auto& c : other_answer.test.at(0).output.cells) c = std::uint8_t((c + 1) % 10);
  CHECK(to_host<C>(ctx, ttt.fit(other_answer, tr.parameters().data()), tr.parameters().size()) == fitted);

  data::task one_demo = tasks[0];
  one_demo.train.resize(1);
  CHECK(ttt.fit(one_demo, tr.parameters().data()) == tr.parameters().data());  // no leave-one-out rows

  // Without augmented copies only the task's own rows are fitted: the augmentations' seed no
  // longer changes the result, as it does with them.
  const auto fitted_with = [&](std::uint64_t seed, bool augment) {
    weight_adapter<etrm_model<C, float>> a(tr, {.steps = 2, .seed = seed, .augment = augment});
    return to_host<C>(ctx, a.fit(tasks[0], tr.parameters().data()), tr.parameters().size());
  };
  CHECK(fitted_with(1, false) == fitted_with(2, false));
  CHECK(fitted_with(1, true) != fitted_with(2, true));
  CHECK(fitted_with(1, false) != fitted_with(1, true));

  // skip_solved: weights that answer the task's leave-one-out rows are returned as they are
  // (here: a copy fitted hard to them); the plain weights, which do not, are fitted.
  weight_adapter<etrm_model<C, float>> hard(tr, {.steps = 60, .lr = 3e-3, .augment = false});
  const std::vector<float> solved = to_host<C>(ctx, hard.fit(tasks[0], tr.parameters().data()), tr.parameters().size());
  weight_adapter<etrm_model<C, float>> gated(tr, {.steps = 2, .augment = false, .skip_solved = true});
  std::vector<double> gated_losses;
  CHECK(gated.fit(tasks[0], solved.data(), &gated_losses) == solved.data());
  CHECK(gated_losses.empty());
  CHECK(gated.fit(tasks[0], tr.parameters().data()) != tr.parameters().data());

  // The fit's batch holds the task's rows alone, so the batch of the trainer it was given (whose
  // padding rows once diluted the loss and trained the halting head) does not change it.
  trainer<etrm_model<C, float>> wide(ctx, m, 16, {});
  weight_adapter<etrm_model<C, float>> from_wide(wide, {.steps = 2, .augment = false});
  CHECK(to_host<C>(ctx, from_wide.fit(tasks[0], tr.parameters().data()), tr.parameters().size()) ==
        fitted_with(1, false));
}

TEST_CASE("query batches: each test input under the identity first, then its augmentations; labels, "
          "padding, errors and what a canvas can answer") {
  const data::episode_shape shape = tiny_shape();
  data::task t = held_out_tasks(2)[0];
  t.test.push_back(held_out_tasks(2)[1].test[0]);  // two test inputs
  t.test[1].output = {};                            // the second's answer unknown
  const auto q = make_query_batches(t, shape, 3, 7, 4, "task.json");
  REQUIRE(q.batches.size() == 2);
  CHECK(q.valid == std::vector<index_t>{4, 2});
  REQUIRE(q.tasks.size() == 6);
  const std::size_t n = std::size_t(shape.seq_len()), w = std::size_t(shape.context_width());

  std::vector<std::int32_t> in(n), lab(n), ctx(w);
  std::vector<std::size_t> demos(std::min<std::size_t>(t.train.size(), std::size_t(shape.max_demos)));
  std::iota(demos.begin(), demos.end(), std::size_t(0));
  data::encode_episode(t, demos, 0, shape, in, lab, ctx);
  const auto& b0 = q.batches[0];
  CHECK(std::vector<std::int32_t>(b0.inputs.begin(), b0.inputs.begin() + std::ptrdiff_t(n)) == in);
  CHECK(std::vector<std::int32_t>(b0.context.begin(), b0.context.begin() + std::ptrdiff_t(w)) == ctx);
  CHECK(q.augs[0][0] == data::augmentation{});   // row 0: test 0 unchanged
  CHECK(!(q.augs[0][1] == data::augmentation{}));
  CHECK(q.augs[1][0] == q.augs[0][1]);           // row 4 (test 1, draw 1) has row 1's augmentation
  CHECK(q.tasks[3].test[0].input == t.test[1].input);
  // Labels: test 0's output where it has cells, ignored elsewhere; test 1's all ignored.
  std::vector<std::int32_t> truth(n);
  data::encode_grid(t.test[0].output, {}, truth, shape.side);
  for (auto& v : truth) v = v == data::arc_pad_token ? -100 : v;
  CHECK(std::vector<std::int32_t>(b0.labels.begin(), b0.labels.begin() + std::ptrdiff_t(n)) == truth);
  CHECK(std::all_of(b0.labels.begin() + std::ptrdiff_t(3 * n), b0.labels.end(), [](auto v) { return v == -100; }));
  const auto& b1 = q.batches[1];
  CHECK(std::all_of(b1.context.begin() + std::ptrdiff_t(2 * w), b1.context.end(), [](auto v) { return v == 0; }));

  // What of a task the canvas can answer: demos that do not fit are dropped; a test input that
  // does not fit, or no demo left, leaves nothing.
  data::task wide = t;
  wide.train.push_back({data::grid(1, shape.side + 1), data::grid(1, 1)});
  const auto part = answerable_part(wide, shape);
  REQUIRE(part.has_value());
  CHECK(part->train == t.train);
  CHECK(part->test == t.test);
  data::task no_demo = t;
  for (auto& p : no_demo.train) p.output = data::grid(shape.side + 1, 1);
  CHECK(!answerable_part(no_demo, shape).has_value());

  data::task big = t;
  big.test[0].input = data::grid(shape.side + 1, 1);
  CHECK(!answerable_part(big, shape).has_value());
  try {
    make_query_batches(big, shape, 1, 7, 4, "task.json");
    FAIL("a test input larger than the canvas was accepted");
  } catch (const data::data_error& e) {
    CHECK(std::string(e.what()).find("task.json: test[0].input is 5x1") != std::string::npos);
  }
}

TEST_CASE("task solver: one vote is the plain answer; votes add up per test input; test-time training "
          "leaves the trained weights alone") {
  using C = cpu_device;
  using M = etrm_model<C, float>;
  context_t<C> ctx(2);
  M m(ctx, etrm_config(), tiny_encoder());
  trainer<M> tr(ctx, m, 4, {});
  const data::task t = held_out_tasks(1)[0];
  const float* w = tr.parameters().data();
  const auto before = to_host<C>(ctx, w, tr.parameters().size());

  task_solver<M> plain(tr, {.votes = 1});
  const auto one = plain.solve(t, w);
  REQUIRE(one.result.pairs.size() == 1);
  REQUIRE(one.result.pairs[0].ranked.size() == 1);
  const auto q = make_query_batches(t, tiny_shape(), 1, 0, 4, t.id);
  std::vector<std::int32_t> pred;
  std::vector<float> qh;
  tr.evaluate(q.batches[0], &pred, &qh, w);
  const auto n = std::size_t(tiny_shape().seq_len());
  CHECK(one.result.pairs[0].ranked[0].prediction ==
        data::crop_canvas(std::span(pred).first(n), {}, tiny_shape().side));
  CHECK(one.identity_q_halt.at(0) == qh[0]);
  CHECK(one.adapt_losses.empty());

  data::evaluator_options o;
  o.pass_ks = {1, 2};
  data::arc_evaluator split(std::span(&t, 1), o);
  task_solver<M> voting(tr, {.votes = 6, .seed = 3});
  const auto six = voting.solve(t, w, &split);
  std::size_t votes = 0;
  for (const auto& c : six.result.pairs[0].ranked) votes += c.count;
  CHECK(votes == 6);  // every augmented answer maps back to the test input and votes
  const auto split_result = split.result();
  const auto& also = split_result.tasks.at(0).pairs.at(0).ranked;
  REQUIRE(also.size() == six.result.pairs[0].ranked.size());
  for (std::size_t i = 0; i < also.size(); ++i) CHECK(also[i].count == six.result.pairs[0].ranked[i].count);

  task_solver<M> adapted(tr, {.votes = 2, .adapt = {.steps = 3}, .adapt_losses = true});
  const auto fitted = adapted.solve(t, w);
  CHECK(fitted.adapt_losses.size() == 4);
  CHECK(fitted.adapt_losses.back() < fitted.adapt_losses.front());
  CHECK(to_host<C>(ctx, w, tr.parameters().size()) == before);
}

// TRM with puzzle ids reads no demos: test-time training fits it on the same demo rows under the
// blank id (the comparison's baseline for what the encoder adds), and the solver answers the
// query alone under that id.
TEST_CASE("a model with puzzle ids: fitted on each demo's input and output under the blank id, answers the "
          "query alone") {
  using C = cpu_device;
  using M = trm_model<C, float, attention_mixer<C>>;
  static_assert(!reads_demos_v<M> && reads_demos_v<etrm_model<C, float>>);
  context_t<C> ctx(2);
  trm_config c = etrm_config();
  c.num_puzzle_identifiers = 3;
  c.puzzle_emb_ndim = c.hidden_size;
  M m(ctx, c);
  CHECK(task_shape(m, 5).side == tiny_shape().side);
  CHECK(task_shape(m, 5).max_demos == 5);
  trainer<M> tr(ctx, m, 8, {});
  const data::task t = held_out_tasks(1)[0];
  const float* w = tr.parameters().data();
  const auto before = to_host<C>(ctx, w, tr.parameters().size());

  // The plain answer is the query row alone under id 0.
  task_solver<M> plain(tr, {.votes = 1});
  const auto one = plain.solve(t, w);
  REQUIRE(one.result.pairs.at(0).ranked.size() == 1);
  const auto n = std::size_t(tiny_shape().seq_len());
  token_batch q = padding_batch(8, index_t(n), 1);
  data::encode_grid(t.test[0].input, {}, std::span(q.inputs).first(n), tiny_shape().side);
  std::vector<std::int32_t> pred;
  std::vector<float> qh;
  tr.evaluate(q, &pred, &qh, w);
  CHECK(one.result.pairs[0].ranked[0].prediction == data::crop_canvas(std::span(pred).first(n), {}, tiny_shape().side));
  CHECK(one.identity_q_halt.at(0) == qh[0]);

  // The fit lowers the loss of the demo rows; the same rows with any demos in ETRM's context
  // would be refused by the model (context width 1), so reaching here shows they were dropped.
  task_solver<M> adapted(tr, {.votes = 2, .adapt = {.steps = 10}, .adapt_losses = true});
  const auto fitted = adapted.solve(t, w);
  REQUIRE(fitted.adapt_losses.size() == 11);
  CHECK(fitted.adapt_losses.back() < 0.8 * fitted.adapt_losses.front());
  CHECK(to_host<C>(ctx, w, tr.parameters().size()) == before);

  // Its rows are the demos themselves: a task whose demos are swapped for others fits differently.
  weight_adapter<M> ttt(tr, {.steps = 2});
  const auto a = to_host<C>(ctx, ttt.fit(t, w), tr.parameters().size());
  data::task other = t;
  for (auto& p : other.train)
    for (auto& cell : p.output.cells) cell = std::uint8_t((cell + 1) % 10);
  CHECK(to_host<C>(ctx, ttt.fit(other, w), tr.parameters().size()) != a);
}
