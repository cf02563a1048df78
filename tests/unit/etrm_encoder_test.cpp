// SPDX-License-Identifier: Apache-2.0
// ETRM's demonstration encoder: gradchecks of the cross-attention layer and of the whole model
// with the encoder as prefix source (every aggregation and injection policy), CPU against the
// reference backend (TRM's and HRM's recursion), and the absence of per-task parameters.
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

#include <numeric>

using namespace etrm;
using R = reference_device;

namespace {

context_t<R> ctx;

std::vector<double> random_vec(index_t n, std::uint64_t stream) { return tiny::uniform_values(n, {5, stream}); }

data::episode_shape tiny_shape() { return {4, 2}; }

trm_config etrm_config() {
  trm_config c = tiny::config(false, 1, 2);
  c.seq_len = tiny_shape().seq_len();
  c.vocab_size = 12;
  c.num_puzzle_identifiers = 1;
  c.puzzle_emb_ndim = 0;
  return c;
}
encoder_config tiny_encoder() { return {tiny_shape().side, tiny_shape().max_demos, 1, 1}; }

token_batch episodes(index_t B, std::uint64_t step) {
  data::generator_config g;
  g.min_side = 2;
  g.max_side = 3;
  return data::episode_source(data::rule_split::train, 17, tiny_shape(), g).batch(B, step);
}

template <class Model>
double loss_and_grad(Model& m, const std::vector<double>& p, const token_batch& b, std::vector<double>* g) {
  const auto& c = m.config();
  const index_t B = b.batch, S = c.full_len(), V = c.vocab_size, P = c.prefix_len();
  trm_carry<double, R> carry(B, S, c.hidden_size);
  const auto zh = random_vec(B * S * c.hidden_size, 40), zl = random_vec(B * S * c.hidden_size, 41);
  std::copy(zh.begin(), zh.end(), carry.zh.data());
  std::copy(zl.begin(), zl.end(), carry.zl.data());
  workspace<R> ws;
  typename Model::tape t;
  std::vector<double> logits(B * S * V), q(2 * B), dlogits(logits.size(), 0.0), dq(2 * B), loss(B), halt(B);
  std::vector<std::int32_t> count(B), correct(B), target(B);
  m.forward(ctx, p.data(), carry, b.inputs.data(), b.context.data(), logits.data(), q.data(), &t, ws);
  kernels<R>::cross_entropy(ctx, B, c.seq_len, V, S * V, ops::loss_kind::softmax, logits.data() + P * V,
                            b.labels.data(), 1.0 / B, loss.data(), count.data(), correct.data(), dlogits.data() + P * V,
                            nullptr);
  for (index_t i = 0; i < B; ++i) target[i] = std::int32_t(i % 2);
  kernels<R>::halt_loss(ctx, B, q.data(), target.data(), 0.5 / B, halt.data(), dq.data());
  // The encoder's readout loss (0 unless encoder_config::readout_weight > 0), as the trainer adds it.
  std::vector<double> unused(g ? 0 : p.size());
  const double* row_readout = m.prefix().readout_loss(ctx, p.data(), B, t.prefix, b.labels.data(),
                                                      ops::loss_kind::softmax, 1.0 / B, g ? g->data() : unused.data(), ws);
  const double readout = row_readout ? std::accumulate(row_readout, row_readout + B, 0.0) : 0.0;
  if (g) m.backward(ctx, p.data(), t, b.inputs.data(), b.context.data(), dlogits.data(), dq.data(), g->data(), ws);
  double s = m.prefix().encoder().readout_weight * readout / B;
  for (index_t i = 0; i < B; ++i) s += (loss[i] + 0.5 * halt[i]) / B;
  return s;
}

template <class Policy>
void check_encoder_gradients(const encoder_config& e = tiny_encoder()) {
  trm_model<R, double, attention_mixer<R>, dynamic_recursion, Policy::template type> m(ctx, etrm_config(), e);
  std::vector<double> p = m.layout().template initial_values<double>(3);
  const auto* q = m.layout().find("model.inner.q_head.weight");
  for (index_t i = 0; i < q->ref.size; ++i) p[q->ref.offset + i] = 0.2 * std::cos(double(i));
  // The neighbour tables start at zero; values let their path reach everything downstream.
  if (const auto* nb = m.layout().find("model.inner.encoder.embed_neighbours.weight"))
    for (index_t i = 0; i < nb->ref.size; ++i) p[nb->ref.offset + i] = 0.1 * std::sin(double(i));
  const token_batch b = episodes(3, 0);
  std::vector<double> g(p.size(), testing::grad_sentinel);
  loss_and_grad(m, p, b, &g);
  for (auto& v : g) v -= testing::grad_sentinel;
  std::vector<std::size_t> idx;
  index_t encoder_checked = 0;
  for (const auto& e : m.layout().entries())
    for (std::size_t i : testing::sample_indices(std::size_t(e.ref.size), 12)) {
      idx.push_back(std::size_t(e.ref.offset) + i);
      encoder_checked += e.name.find(".encoder.") != std::string::npos;
    }
  auto r = testing::gradcheck([&](std::vector<double>& x) { return loss_and_grad(m, x, b, nullptr); }, p, g, idx, 1e-5,
                              1e-5);
  INFO("max_rel " << r.max_rel << " over " << r.checked << " at " << r.worst);
  CHECK(r.max_rel < 1e-5);
  CHECK(encoder_checked > 50);
  // The encoder really receives gradient (it is not cut off from the loss).
  double enc_norm = 0;
  for (const auto& e : m.layout().entries())
    if (e.name.find(".encoder.") != std::string::npos)
      for (index_t i = 0; i < e.ref.size; ++i) enc_norm += g[e.ref.offset + i] * g[e.ref.offset + i];
  CHECK(enc_norm > 1e-12);
}

}  // namespace

TEST_SUITE("etrm encoder") {
  TEST_CASE("whole model gradcheck: cross-attention aggregation, prefix injection") {
    check_encoder_gradients<demo_encoder_policy<cross_attention_aggregation, prefix_injection>>();
  }
  TEST_CASE("whole model gradcheck: without aligned cells and query attention") {
    encoder_config e = tiny_encoder();
    e.aligned_cells = e.query_attention = false;
    check_encoder_gradients<demo_encoder_policy<>>(e);
  }
  TEST_CASE("whole model gradcheck: with the readout loss") {
    encoder_config e = tiny_encoder();
    e.readout_weight = 0.7;
    check_encoder_gradients<demo_encoder_policy<>>(e);
  }
  TEST_CASE("whole model gradcheck: with neighbour cells and the readout loss") {
    encoder_config e = tiny_encoder();
    e.neighbour_cells = true;
    e.readout_weight = 0.5;
    check_encoder_gradients<demo_encoder_policy<>>(e);
  }
  TEST_CASE("whole model gradcheck: with neighbour rays") {
    encoder_config e = tiny_encoder();
    e.neighbour_cells = true;
    e.neighbour_rays = true;
    check_encoder_gradients<demo_encoder_policy<>>(e);
  }
  TEST_CASE("whole model gradcheck: with neighbour relations and the pattern cells") {
    encoder_config e = tiny_encoder();
    e.neighbour_cells = true;
    e.neighbour_relations = true;
    e.pattern_cells = true;
    check_encoder_gradients<demo_encoder_policy<>>(e);
  }
  TEST_CASE("whole model gradcheck: with the alignment search, the candidate cells and the readout loss") {
    encoder_config e = tiny_encoder();
    e.search_alignment = true;
    e.candidate_cells = true;
    e.readout_weight = 0.5;
    check_encoder_gradients<demo_encoder_policy<>>(e);
  }
  TEST_CASE("whole model gradcheck: the raw lookup, with neighbour cells and the readout loss") {
    encoder_config e = tiny_encoder();
    e.raw_lookup = true;
    e.neighbour_cells = true;
    e.readout_weight = 0.5;
    check_encoder_gradients<demo_encoder_policy<>>(e);
  }
  TEST_CASE("the raw lookup needs query attention and pair blocks, and adds no parameter") {
    using model_t = trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type>;
    encoder_config e = tiny_encoder();
    const index_t without = model_t(ctx, etrm_config(), e).layout().total();
    e.raw_lookup = true;
    CHECK(model_t(ctx, etrm_config(), e).layout().total() == without);
    e.encoder_layers = 0;
    CHECK_THROWS_WITH(model_t(ctx, etrm_config(), e), doctest::Contains("raw_lookup needs query_attention and encoder_layers > 0"));
    e.encoder_layers = 1;
    e.query_attention = false;
    CHECK_THROWS_WITH(model_t(ctx, etrm_config(), e), doctest::Contains("raw_lookup needs query_attention"));
  }
  TEST_CASE("the alignment search and the candidate cells add one table each; each needs the one before") {
    const auto params = [](const encoder_config& e, const char* table) {
      trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type> m(ctx, etrm_config(), e);
      const auto* t = m.layout().find(std::string("model.inner.encoder.") + table);
      return t ? t->ref.size : 0;
    };
    const index_t V = etrm_config().vocab_size, Dm = etrm_config().hidden_size;
    encoder_config e = tiny_encoder();
    CHECK(params(e, "embed_transported.weight") == 0);
    e.search_alignment = true;
    CHECK(params(e, "embed_transported.weight") == (V + 1) * Dm);  // + the `outside` row
    CHECK(params(e, "embed_candidate.weight") == 0);
    e.candidate_cells = true;
    CHECK(params(e, "embed_candidate.weight") == 2 * V * Dm);  // + a row per colour the demos do not show
    e.search_alignment = false;
    CHECK_THROWS_WITH(params(e, ""), doctest::Contains("candidate_cells needs search_alignment"));
    e.search_alignment = true;
    e.query_attention = false;
    CHECK_THROWS_WITH(params(e, ""), doctest::Contains("search_alignment needs query_attention"));
    // The search's contingency table (on the device, no allocation) bounds the vocabulary.
    e.query_attention = true;
    e.candidate_cells = false;
    trm_config wide = etrm_config();
    wide.vocab_size = data::max_alignment_vocab + 1;
    using model_t = trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type>;
    CHECK_THROWS_WITH(model_t(ctx, wide, e), doctest::Contains("search_alignment needs a vocabulary of at most 32"));
  }
  TEST_CASE("neighbour_ids: the 8 neighbours of every cell, PAD beyond the grid") {
    // two 3×3 grids holding 1..9 and 11..19
    std::vector<std::int32_t> grids(18), out(8 * 18);
    for (int i = 0; i < 18; ++i) grids[std::size_t(i)] = (i / 9) * 10 + i % 9 + 1;
    neighbour_ids<R>(ctx, 2, 3, {}, grids.data(), out.data());
    const int dr[8] = {-1, -1, -1, 0, 0, 1, 1, 1}, dc[8] = {-1, 0, 1, -1, 1, -1, 0, 1};
    for (int d = 0; d < 8; ++d)
      for (int n = 0; n < 2; ++n)
        for (int r = 0; r < 3; ++r)
          for (int c = 0; c < 3; ++c) {
            const int rr = r + dr[d], cc = c + dc[d];
            const std::int32_t want = rr < 0 || rr > 2 || cc < 0 || cc > 2 ? 0 : grids[std::size_t(n * 9 + rr * 3 + cc)];
            INFO("direction " << d << " grid " << n << " cell " << r << "," << c);
            CHECK(out[std::size_t(d * 18 + n * 9 + r * 3 + c)] == want);
          }
    CHECK(out[4 * 18 + 9 + 4] == 16);  // grid 2, centre (15): its right neighbour
  }
  TEST_CASE("neighbour rays: the first non-black cell along each direction, and the ids the tables read") {
    // One 3×3 grid (tokens: black 2, colours ≥ 3) on a 4×4 canvas with its EOS border:
    //   3 2 2 1
    //   2 2 4 1
    //   5 2 2 1
    //   1 1 1 0
    const std::vector<std::int32_t> canvas = {3, 2, 2, 1, 2, 2, 4, 1, 5, 2, 2, 1, 1, 1, 1, 0};
    std::vector<std::int32_t> out(8 * 16);
    neighbour_ids<R>(ctx, 1, 4, {.rays = true}, canvas.data(), out.data());
    const auto seen = [&](int d, int r, int c) { return out[std::size_t(d * 16 + r * 4 + c)]; };
    // directions: 0 ↖, 1 ↑, 2 ↗, 3 ←, 4 →, 5 ↙, 6 ↓, 7 ↘
    CHECK(seen(3, 1, 1) == 0);  // ← from (1, 1): black (1, 0), then off the canvas
    CHECK(seen(4, 1, 0) == 4);  // → from (1, 0): past black (1, 1) to the 4
    CHECK(seen(4, 1, 2) == 1);  // → from the 4 itself: the EOS border next to it
    CHECK(seen(0, 1, 1) == 3);  // ↖ from (1, 1): the 3 adjacent
    CHECK(seen(0, 2, 2) == 3);  // ↖ from (2, 2): past black (1, 1) to the 3
    CHECK(seen(1, 2, 0) == 3);  // ↑ from the 5: past black (1, 0) to the 3
    CHECK(seen(6, 0, 0) == 5);  // ↓ from the 3: past black to the 5
    CHECK(seen(7, 2, 2) == 0);  // ↘ from (2, 2): the PAD corner
    CHECK(seen(5, 0, 2) == 5);  // ↙ from (0, 2): past black (1, 1) to the 5
    // Without rays the adjacent cells: → from (1, 0) is the black cell next to it.
    std::vector<std::int32_t> adjacent(8 * 16);
    neighbour_ids<R>(ctx, 1, 4, {}, canvas.data(), adjacent.data());
    CHECK(adjacent[std::size_t(4 * 16 + 1 * 4 + 0)] == 2);
    CHECK(adjacent[std::size_t(3 * 16 + 1 * 4 + 1)] == 2);  // ← from (1, 1): black (1, 0)
    encoder_config bad = tiny_encoder();
    bad.neighbour_rays = true;
    using model_t = trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type>;
    CHECK_THROWS_WITH(model_t(ctx, etrm_config(), bad), doctest::Contains("neighbour_rays needs neighbour_cells"));
  }
  TEST_CASE("neighbour relations: each neighbour's relation to the cell, the same in every palette") {
    // The canvas of the test before, and the same with its colours 3, 4, 5 renamed 7, 3, 9:
    //   3 2 2 1      7 2 2 1
    //   2 2 4 1      2 2 3 1
    //   5 2 2 1      9 2 2 1
    //   1 1 1 0      1 1 1 0
    const std::vector<std::int32_t> canvas = {3, 2, 2, 1, 2, 2, 4, 1, 5, 2, 2, 1, 1, 1, 1, 0},
                                     renamed = {7, 2, 2, 1, 2, 2, 3, 1, 9, 2, 2, 1, 1, 1, 1, 0};
    std::vector<std::int32_t> out(8 * 16), out_renamed(8 * 16);
    neighbour_ids<R>(ctx, 1, 4, {.relations = true}, canvas.data(), out.data());
    neighbour_ids<R>(ctx, 1, 4, {.relations = true}, renamed.data(), out_renamed.data());
    CHECK(out == out_renamed);
    const auto rel = [&](int d, int r, int c) { return out[std::size_t(d * 16 + r * 4 + c)]; };
    // 0 beyond the canvas, 1 the border, 2 the cell's own token, 3 black (the cell not), 4 another colour
    CHECK(rel(1, 0, 0) == 0);  // ↑ from the 3: off the canvas
    CHECK(rel(4, 1, 2) == 1);  // → from the 4: the EOS border
    CHECK(rel(4, 0, 1) == 2);  // → from black (0, 1): black (0, 2), its own token
    CHECK(rel(4, 0, 0) == 3);  // → from the 3: black
    CHECK(rel(7, 0, 0) == 3);  // ↘ from the 3: black (1, 1)
    CHECK(rel(6, 0, 0) == 3);  // ↓ from the 3: black (1, 0)
    CHECK(rel(1, 1, 2) == 3);  // ↑ from the 4: black (0, 2)
    CHECK(rel(3, 1, 2) == 3);  // ← from the 4: black (1, 1)
    CHECK(rel(0, 1, 1) == 4);  // ↖ from black (1, 1): the 3, a colour
    // Along rays black is passed: → from the 5 meets the border, ↖ from black (2, 2) the 3.
    std::vector<std::int32_t> rays(8 * 16);
    neighbour_ids<R>(ctx, 1, 4, {.rays = true, .relations = true}, canvas.data(), rays.data());
    CHECK(rays[std::size_t(4 * 16 + 2 * 4 + 0)] == 1);
    CHECK(rays[std::size_t(0 * 16 + 2 * 4 + 2)] == 4);
    // The tables shrink to the 5 relations; the option needs the neighbour cells.
    using model_t = trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type>;
    encoder_config e = tiny_encoder();
    e.neighbour_cells = e.neighbour_relations = true;
    const model_t m(ctx, etrm_config(), e);
    const auto* table = m.layout().find("model.inner.encoder.embed_neighbours.weight");
    REQUIRE(table);
    CHECK(table->shape == std::vector<index_t>{8, 5, etrm_config().hidden_size});
    e.neighbour_cells = false;
    CHECK_THROWS_WITH(model_t(ctx, etrm_config(), e), doctest::Contains("neighbour_relations needs neighbour_cells"));
  }
  TEST_CASE("the pattern cells add one table of 2 (V + 1) rows and need the query attention") {
    using model_t = trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type>;
    encoder_config e = tiny_encoder();
    e.pattern_cells = true;
    const model_t m(ctx, etrm_config(), e);
    const auto* table = m.layout().find("model.inner.encoder.embed_pattern.weight");
    REQUIRE(table);
    // Each answer (a token or none) once unsure and once sure.
    CHECK(table->shape == std::vector<index_t>{2 * (etrm_config().vocab_size + 1), etrm_config().hidden_size});
    e.query_attention = false;
    CHECK_THROWS_WITH(model_t(ctx, etrm_config(), e), doctest::Contains("pattern_cells needs query_attention"));
  }
  TEST_CASE("the readout head exists only with a positive weight and needs query attention") {
    const auto params = [](const encoder_config& e) {
      trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type> m(ctx, etrm_config(), e);
      return m.layout().find("model.inner.encoder.readout_head.weight") != nullptr;
    };
    encoder_config e = tiny_encoder();
    CHECK_FALSE(params(e));
    e.readout_weight = 0.5;
    CHECK(params(e));
    e.readout_weight = -1;
    CHECK_THROWS_WITH(params(e), doctest::Contains("readout_weight must not be negative"));
    e.readout_weight = 0.5;
    e.query_attention = false;
    CHECK_THROWS_WITH(params(e), doctest::Contains("readout_weight needs query_attention"));
  }
  TEST_CASE("whole model gradcheck: per-pair mean aggregation") {
    check_encoder_gradients<demo_encoder_policy<per_pair_mean_aggregation, prefix_injection>>();
  }
  TEST_CASE("whole model gradcheck: additive injection") {
    check_encoder_gradients<demo_encoder_policy<cross_attention_aggregation, additive_injection>>();
  }

  TEST_CASE("no per-task parameters: the count does not depend on the number of tasks") {
    trm_config a = etrm_config(), b = etrm_config();
    a.num_puzzle_identifiers = 1;
    b.num_puzzle_identifiers = 100000;
    trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type> ma(ctx, a, tiny_encoder()),
        mb(ctx, b, tiny_encoder());
    CHECK(ma.layout().count() == mb.layout().count());
    for (const auto& e : ma.layout().entries()) CHECK(e.name.find("puzzle_emb") == std::string::npos);
  }

  TEST_CASE("matching init: the query cross-attention starts with k_proj = q_proj and the demo token table "
            "as a copy of the model's") {
    using model_t = trm_model<R, double, attention_mixer<R>, dynamic_recursion, demo_encoder_policy<>::type>;
    const auto values_of = [](const model_t& m, const std::vector<double>& v, const std::string& name) {
      const param_entry* e = m.layout().find(name);
      REQUIRE(e != nullptr);
      return std::vector<double>(v.begin() + e->ref.offset, v.begin() + e->ref.offset + e->ref.size);
    };
    const std::string enc = "model.inner.encoder.";
    for (const bool matching : {true, false}) {
      encoder_config e = tiny_encoder();
      e.matching_init = matching;
      model_t m(ctx, etrm_config(), e);
      const auto v = m.layout().initial_values<double>(3);
      INFO("matching_init " << matching);
      CHECK((values_of(m, v, enc + "query_cross_attn.k_proj.weight") ==
             values_of(m, v, enc + "query_cross_attn.q_proj.weight")) == matching);
      CHECK((values_of(m, v, enc + "embed_tokens.weight") == values_of(m, v, token_embedding_name)) == matching);
      // The aggregation's cross-attention keeps independent draws.
      CHECK(values_of(m, v, enc + "cross_attn.k_proj.weight") != values_of(m, v, enc + "cross_attn.q_proj.weight"));
    }
  }

  TEST_CASE("a copy_of initialiser needs a drawn source of the same shape") {
    param_layout l;
    l.add("a", {2, 3}, init_spec::trunc_normal(1.0));
    l.add("b", {2, 3}, init_spec::copy_of("a"));
    const auto v = l.initial_values<float>(7);
    CHECK(std::equal(v.begin(), v.begin() + 6, v.begin() + l.find("b")->ref.offset));
    CHECK(v[0] != v[1]);
    param_layout wrong_shape = l;
    wrong_shape.add("c", {3, 2}, init_spec::copy_of("a"));
    CHECK_THROWS_AS(wrong_shape.initial_values<float>(7), std::logic_error);
    param_layout missing = l;
    missing.add("d", {2, 3}, init_spec::copy_of("nothing"));
    CHECK_THROWS_AS(missing.initial_values<float>(7), std::logic_error);
  }

  TEST_CASE("CPU matches the reference backend on ETRM training steps") {
    trm_config c = etrm_config();
    c.H_cycles = 2;
    encoder_config with_extras = tiny_encoder();
    with_extras.neighbour_cells = true;
    with_extras.search_alignment = true;
    with_extras.candidate_cells = true;
    with_extras.readout_weight = 1;
    encoder_config with_rays = with_extras;
    with_rays.neighbour_rays = true;
    with_rays.raw_lookup = true;
    with_rays.pattern_cells = true;
    encoder_config with_relations = with_extras;
    with_relations.neighbour_relations = true;
    with_relations.pattern_cells = true;
    for (const encoder_config& e : {tiny_encoder(), with_extras, with_rays, with_relations}) {
      INFO("neighbour cells, alignment search and candidate cells "
           << e.neighbour_cells << ", neighbour rays and raw lookup " << e.neighbour_rays << ", neighbour relations "
           << e.neighbour_relations << ", pattern cells " << e.pattern_cells << ", readout weight " << e.readout_weight);
      tiny::check_cpu_matches_reference<tiny::attention, demo_encoder_policy<>::type>(
          c, [](std::uint64_t s) { return episodes(4, s); }, e);
    }
  }
}

// "EHRM": the same encoder as the context source of HRM's hierarchical recursion.
TEST_CASE("CPU matches the reference backend on training steps of HRM with the demo encoder") {
  trm_config c = etrm_config();
  c.H_cycles = 2;
  c.H_layers = 2;
  c.L_layers = 1;
  c.no_ACT_continue = false;
  tiny::check_cpu_matches_reference<tiny::attention, demo_encoder_policy<>::type, dynamic_hierarchical_recursion>(
      c, [](std::uint64_t s) { return episodes(4, s); }, tiny_encoder());
}

TEST_CASE("encoder_lr_scale: the demo encoder's parameters learn at lr times the scale, 0 freezes them") {
  using C = cpu_device;
  using model_t = trm_model<C, float, attention_mixer<C>, dynamic_recursion, demo_encoder_policy<>::type>;
  context_t<C> cpu(2);
  for (const double scale : {1.0, 0.0}) {
    model_t m(cpu, etrm_config(), tiny_encoder());
    trainer<model_t>::options o;
    o.optimizer.lr = 1e-3;
    o.optimizer.warmup_steps = 1;
    o.optimizer.encoder_lr_scale = scale;
    trainer<model_t> tr(cpu, m, 4, o);
    const auto before = to_host<C>(cpu, tr.parameters().data(), tr.parameters().size());
    for (std::uint64_t s = 0; s < 2; ++s) tr.train_step(episodes(4, s));
    const auto after = to_host<C>(cpu, tr.parameters().data(), tr.parameters().size());
    INFO("encoder_lr_scale " << scale);
    index_t encoder_tensors = 0;
    bool encoder_moved = false, network_moved = false;
    for (const auto& e : m.layout().entries()) {
      const bool encoder = e.name.starts_with("model.inner.encoder.");
      CHECK((e.group == param_group::encoder) == encoder);
      encoder_tensors += encoder;
      const auto first = before.begin() + e.ref.offset;
      const bool moved = !std::equal(first, first + e.ref.size, after.begin() + e.ref.offset);
      (encoder ? encoder_moved : network_moved) |= moved;
    }
    CHECK(encoder_tensors > 10);
    CHECK(encoder_moved == (scale != 0.0));
    CHECK(network_moved);
  }
}

TEST_CASE("readout loss: the trainer reports it apart from the loss and trains the readout head") {
  using C = cpu_device;
  using model_t = trm_model<C, float, attention_mixer<C>, dynamic_recursion, demo_encoder_policy<>::type>;
  context_t<C> cpu(2);
  const auto run = [&](double weight) {
    encoder_config e = tiny_encoder();
    e.readout_weight = weight;
    model_t m(cpu, etrm_config(), e);
    trainer<model_t>::options o;
    o.optimizer.lr = 1e-3;
    o.optimizer.warmup_steps = 1;
    trainer<model_t> tr(cpu, m, 4, o);
    const step_metrics first = tr.train_step(episodes(4, 0));
    return std::pair{first, to_host<C>(cpu, tr.gradients().data(), tr.gradients().size())};
  };
  const step_metrics off = run(0.0).first;
  const auto [on, g_on] = run(1.0);
  CHECK(off.readout_loss == 0.0);
  // At initialisation the head's answer is near uniform over the 12 tokens: loss ≈ ln 12.
  CHECK(on.readout_loss > 1.5);
  CHECK(on.readout_loss < 4.0);
  CHECK(on.loss == doctest::Approx(on.lm_loss + 0.5 * on.q_halt_loss));  // not part of the loss
  // The head is in the encoder's learning-rate group and gets gradient.
  encoder_config e = tiny_encoder();
  e.readout_weight = 1;
  model_t m(cpu, etrm_config(), e);
  const auto* head = m.layout().find("model.inner.encoder.readout_head.weight");
  REQUIRE(head != nullptr);
  CHECK(head->group == param_group::encoder);
  double head_norm = 0;
  for (index_t i = 0; i < head->ref.size; ++i) head_norm += std::abs(double(g_on[std::size_t(head->ref.offset + i)]));
  CHECK(head_norm > 0);
}

TEST_CASE("the collapse monitor: identical contexts have zero spread, different ones do not") {
  const std::vector<float> same = {1, 2, 3, 1, 2, 3, 1, 2, 3};
  CHECK(context_spread(same, 3, 3) == 0.0);
  const std::vector<float> varied = {1, 2, 3, -1, 0, 5, 2, -2, 1};
  CHECK(context_spread(varied, 3, 3) > 0.3);
  const std::vector<float> a = {3, 4, 9}, b = {0, 0, 9};
  CHECK(relative_change(a, a, 3) == 0.0);
  CHECK(relative_change(a, b, 2) == doctest::Approx(1.0));  // only the first n values count
  CHECK(relative_change(b, a, 2) == 0.0);                   // a zero reference: 0, not a division by 0
}

TEST_CASE("rotate_contexts: each row takes the next row's context, rows past `rows` stay") {
  token_batch b;
  b.batch = 4;
  b.context = {0, 0, 1, 1, 2, 2, 3, 3};
  rotate_contexts(b, 3);
  CHECK(b.context == std::vector<std::int32_t>{1, 1, 2, 2, 0, 0, 3, 3});
  rotate_contexts(b, 1);
  CHECK(b.context == std::vector<std::int32_t>{1, 1, 2, 2, 0, 0, 3, 3});
}

TEST_CASE("measure_collapse: the decoder's input depends on the demos; one task's demos everywhere give 0") {
  using C = cpu_device;
  using model_t = trm_model<C, float, attention_mixer<C>, dynamic_recursion, demo_encoder_policy<>::type>;
  context_t<C> cpu(2);
  for (const bool query_attention : {true, false}) {
    encoder_config e = tiny_encoder();
    e.query_attention = query_attention;
    model_t m(cpu, etrm_config(), e);
    trainer<model_t> tr(cpu, m, 4, {});
    INFO("query_attention " << query_attention);
    const token_batch b = episodes(4, 0);
    const collapse_metrics distinct = measure_collapse(tr, b, 4, tr.eval_parameters());
    CHECK(distinct.context_spread > 0.01);
    CHECK(distinct.demo_dependence > 0.01);
    token_batch one_task = b;
    const std::size_t W = one_task.context.size() / 4;
    for (std::size_t r = 1; r < 4; ++r)
      std::copy_n(one_task.context.begin(), W, one_task.context.begin() + std::ptrdiff_t(r * W));
    const collapse_metrics same = measure_collapse(tr, one_task, 4, tr.eval_parameters());
    // Identical rows give the same tokens up to summation order (oneDNN's GEMM kernels sum a row
    // in an order that depends on its place in their tiles: 1.7e-7 measured), far below `distinct`.
    CHECK(same.context_spread < 1e-5);
    CHECK(same.demo_dependence == 0.0);
    CHECK(measure_collapse(tr, b, 1, tr.eval_parameters()).demo_dependence == 0.0);
  }
}

TEST_CASE("measure_collapse mid-training: like an evaluation, the next step's rows start afresh") {
  using C = cpu_device;
  using model_t = trm_model<C, float, attention_mixer<C>, dynamic_recursion, demo_encoder_policy<>::type>;
  context_t<C> cpu(2);
  model_t m(cpu, etrm_config(), tiny_encoder());
  trainer<model_t> measured(cpu, m, 4, {}), evaluated(cpu, m, 4, {});
  for (auto* tr : {&measured, &evaluated}) tr->train_step(episodes(4, 0));
  measure_collapse(measured, episodes(4, 7), 4, measured.eval_parameters());
  evaluated.evaluate(episodes(4, 7), nullptr, nullptr, evaluated.eval_parameters());
  const double a = measured.train_step(episodes(4, 1)).loss, b = evaluated.train_step(episodes(4, 1)).loss;
  CHECK(a == doctest::Approx(b).epsilon(1e-6));
}
