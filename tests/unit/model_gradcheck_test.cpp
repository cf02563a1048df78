// SPDX-License-Identifier: Apache-2.0
// Finite-difference gradchecks in double precision on the reference backend: each block
// variant, and the whole taped recursion (heads, n+1 net applications, embeddings, prefix; HRM:
// the last L_level and H_level applications), with gradient buffers pre-filled with a sentinel
// so that `=` instead of `+=` fails. And the no-grad boundaries: what the taped part does not
// see is exactly what the policy leaves out (TRM: the first T−1 cycles; HRM: every update but
// the last L and H updates, the one-step gradient).
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

using namespace etrm;
using R = reference_device;

namespace {

context_t<R> ctx;

std::vector<double> random_vec(index_t n, std::uint64_t stream) { return tiny::uniform_values(n, {3, stream}); }

// Every layer through the generic contract check: inputs and sampled weights against finite
// differences, the no-grad path equal to the taped one, the arena left as found.
template <class L>
testing::layer_gradcheck_result check_layer(const L& l, const param_layout& layout, const typename L::template shape<double>& sh) {
  const auto r = testing::gradcheck_layer(l, layout, sh);
  for (std::size_t i = 0; i < r.inputs.size(); ++i) {
    INFO("input " << i << " max_rel " << r.inputs[i].max_rel << " at " << r.inputs[i].worst);
    CHECK(r.inputs[i].max_rel < 1e-5);
    CHECK(r.inputs[i].checked > 0);
  }
  INFO("params max_rel " << r.params.max_rel << " over " << r.params.checked << " worst " << r.params.worst);
  CHECK(r.params.max_rel < 1e-5);
  CHECK(r.params.checked >= layout.entries().size());
  CHECK(r.no_grad_difference == 0.0);
  CHECK(r.arena_restored);
  return r;
}

const layer_dims small{/*batch=*/2, /*seq=*/5, /*width=*/8, /*heads=*/2, 1e-5};

template <class L>
void check_sequence_layer(const L& l, const param_layout& layout, bool rope_on) {
  rope_table<double, R> rope(ctx, small.seq, small.head_dim(), 10000.0);
  check_layer(l, layout, seq_shape<double>{small, rope_on ? rope.view() : rope_view<double>{}});
}

// Loss of one supervision step from a given carry, with gradients into g (sentinel-filled).
template <class Model>
double step_loss(Model& m, const std::vector<double>& p, const std::vector<double>& zh, const std::vector<double>& zl,
                 const token_batch& b, std::vector<double>* g, std::vector<double>* table_grad = nullptr) {
  const auto& c = m.config();
  const index_t B = b.batch, S = c.full_len(), V = c.vocab_size, P = c.prefix_len(), L = c.seq_len;
  trm_carry<double, R> carry(B, S, c.hidden_size);
  std::copy(zh.begin(), zh.end(), carry.zh.data());
  std::copy(zl.begin(), zl.end(), carry.zl.data());
  workspace<R> ws;
  typename Model::tape t;
  std::vector<double> logits(B * S * V), q(2 * B), dlogits(logits.size(), 0.0), dq(2 * B);
  m.forward(ctx, p.data(), carry, b.inputs.data(), b.context.data(), logits.data(), q.data(), g ? &t : nullptr, ws);
  std::vector<double> loss(B), halt(B);
  std::vector<std::int32_t> count(B), correct(B), exact(B);
  using K = kernels<R>;
  K::cross_entropy(ctx, B, L, V, S * V, ops::loss_kind::stablemax, logits.data() + P * V, b.labels.data(), 1.0 / B,
                   loss.data(), count.data(), correct.data(), dlogits.data() + P * V, nullptr);
  // A fixed halting target keeps the loss smooth in the parameters.
  for (index_t i = 0; i < B; ++i) exact[i] = std::int32_t(i % 2);
  K::halt_loss(ctx, B, q.data(), exact.data(), 0.5 / B, halt.data(), dq.data());
  if (g) {
    m.backward(ctx, p.data(), t, b.inputs.data(), b.context.data(), dlogits.data(), dq.data(), g->data(), ws);
    if (table_grad) {
      *table_grad = std::vector<double>(t.prefix.local_grad, t.prefix.local_grad + B * c.puzzle_emb_ndim);
    }
  }
  double s = 0;
  for (index_t i = 0; i < B; ++i) s += (loss[i] + 0.5 * halt[i]) / B;
  return s;
}

// T = 1 and n = 2: every application is taped, so the gradient is the true one.
trm_config recursion_config(bool mlp_t, pos_encoding pos) {
  trm_config c = tiny::config(mlp_t, /*T=*/1, /*n=*/2);
  c.pos_encodings = pos;
  if (pos == pos_encoding::rope2d) c.seq_len = 9;  // a 3 x 3 canvas
  return c;
}

template <class Mixer, class Recursion = dynamic_recursion>
void check_recursion(const trm_config& c) {
  trm_model<R, double, Mixer, Recursion> m(ctx, c);
  const index_t B = 3, n = B * c.full_len() * c.hidden_size;
  std::vector<double> p = m.layout().template initial_values<double>(5);
  // Non-trivial q_head and puzzle table so that every path carries gradient.
  for (const auto* name : {"model.inner.q_head.weight", "model.inner.q_head.bias"}) {
    const auto* e = m.layout().find(name);
    for (index_t i = 0; i < e->ref.size; ++i) p[e->ref.offset + i] = 0.3 * std::sin(double(i + 1));
  }
  for (index_t i = 0; i < m.prefix().rows() * m.prefix().ndim(); ++i) m.prefix().table()[i] = 0.5 * std::cos(double(i));
  auto zh = random_vec(n, 20), zl = random_vec(n, 21);
  const token_batch b = tiny::batch(c, B, 9);
  std::vector<double> g(p.size(), testing::grad_sentinel), tg;
  step_loss(m, p, zh, zl, b, &g, &tg);
  for (auto& v : g) v -= testing::grad_sentinel;

  std::vector<std::size_t> idx;
  for (const auto& e : m.layout().entries())
    for (std::size_t i : testing::sample_indices(std::size_t(e.ref.size), 25)) idx.push_back(std::size_t(e.ref.offset) + i);
  // h = 1e-5 and floor 1e-4, as for the layers: with h = 1e-6 the roundoff of the differences
  // decides for the smallest gradients (3.8e-5 under the asan preset's -O1 without -march=native).
  auto r = testing::gradcheck([&](std::vector<double>& params) { return step_loss(m, params, zh, zl, b, nullptr); }, p,
                              g, idx, 1e-5, 1e-4);
  INFO("params max_rel " << r.max_rel << " over " << r.checked);
  CHECK(r.max_rel < 1e-5);
  CHECK(r.checked > 100);

  // The puzzle-table rows in the batch: local gradient of row b = ∂loss/∂table[id_b].
  std::vector<double> table(m.prefix().table(), m.prefix().table() + m.prefix().rows() * m.prefix().ndim());
  const index_t nd = m.prefix().ndim();
  std::vector<double> tg_rows(table.size(), 0.0);
  for (index_t i = 0; i < B; ++i)
    for (index_t j = 0; j < nd; ++j) tg_rows[b.context[i] * nd + j] += tg[i * nd + j];
  auto rt = testing::gradcheck(
      [&](std::vector<double>& t) {
        std::copy(t.begin(), t.end(), m.prefix().table());
        const double v = step_loss(m, p, zh, zl, b, nullptr);
        std::copy(table.begin(), table.end(), m.prefix().table());
        return v;
      },
      table, tg_rows, testing::sample_indices(std::size_t(B * nd), 30));
  INFO("puzzle table max_rel " << rt.max_rel);
  CHECK(rt.max_rel < 1e-5);
}

}  // namespace

TEST_SUITE("layer contract") {
  TEST_CASE("swiglu_mlp") {
    param_layout l;
    const auto mlp = declare_swiglu<R>(l, "m.", small.width, swiglu_intermediate(small.width, 2.0));
    check_layer(mlp, l, row_shape{small.tokens(), small.eps});
  }
  TEST_CASE("attention mixer, rope and no positions") {
    param_layout l;
    const auto mix = declare_mixer<R>(std::type_identity<attention_mixer<R>>{}, l, "a.", small.width, small.seq, 2.0);
    check_sequence_layer(mix, l, true);
    check_sequence_layer(mix, l, false);
  }
  TEST_CASE("mlp_t mixer") {
    param_layout l;
    const auto mix = declare_mixer<R>(std::type_identity<token_mlp_mixer<R>>{}, l, "t.", small.width, small.seq, 2.0);
    check_sequence_layer(mix, l, false);
  }
  TEST_CASE("attention block, rope") {
    param_layout l;
    check_sequence_layer(block<R, attention_mixer<R>>::declare(l, "b.", small.width, small.seq, 2.0), l, true);
  }
  TEST_CASE("mlp_t block") {
    param_layout l;
    check_sequence_layer(block<R, token_mlp_mixer<R>>::declare(l, "b.", small.width, small.seq, 2.0), l, false);
  }
  TEST_CASE("reasoning net of two blocks: both inputs get the gradient of their sum") {
    param_layout l;
    const reasoning_net<R, attention_mixer<R>> net(l, "net.", 2, small.width, small.seq, 2.0);
    rope_table<double, R> rope(ctx, small.seq, small.head_dim(), 10000.0);
    const auto r = check_layer(net, l, seq_shape<double>{small, rope.view()});
    CHECK(r.input_grads[0] == r.input_grads[1]);
  }
  TEST_CASE("cross-attention with a key mask") {
    param_layout l;
    const auto a = cross_attention<R>::declare(l, "x.", 8);
    const cross_dims d{2, 3, 5, 8, 2, 1e-5};
    std::vector<double> bias(std::size_t(d.batch * d.keys), 0.0);
    bias[1] = bias[7] = -1e9;  // masked keys
    const auto r = check_layer(a, l, cross_shape<double>{d, bias.data()});
    // Masked keys get no gradient at all.
    for (index_t j = 0; j < d.width; ++j) CHECK(r.input_grads[1][std::size_t(1 * d.width + j)] == 0.0);
  }
}

TEST_SUITE("gradcheck") {
  TEST_CASE("taped recursion, attention + rope") {
    check_recursion<attention_mixer<R>>(recursion_config(false, pos_encoding::rope));
  }
  TEST_CASE("taped recursion, attention + rope2d") {
    check_recursion<attention_mixer<R>>(recursion_config(false, pos_encoding::rope2d));
  }
  TEST_CASE("taped recursion, attention + learned positions") {
    check_recursion<attention_mixer<R>>(recursion_config(false, pos_encoding::learned));
  }
  TEST_CASE("taped recursion, mlp_t") { check_recursion<token_mlp_mixer<R>>(recursion_config(true, pos_encoding::none)); }
  // N = T = 1: one L_level and one H_level application, both taped, so the one-step gradient
  // is the true gradient, through both nets, the injection, the embeddings and the puzzle table.
  TEST_CASE("HRM one-step path: the last L_level and H_level updates") {
    check_recursion<attention_mixer<R>, dynamic_hierarchical_recursion>(tiny::hrm_config(1, 1));
  }

  // Across the no-grad boundary: T cycles give the gradient of one taped cycle started from
  // the state the first T−1 cycles reach, and the carry after the step is that cycle's output.
  TEST_CASE("no-grad cycles: T=3 equals T=1 from the state after two cycles") {
    trm_config c3 = tiny::config(false, 3, 2), c2 = tiny::config(false, 2, 2), c1 = tiny::config(false, 1, 2);
    trm_model<R, double, attention_mixer<R>> m3(ctx, c3), m2(ctx, c2), m1(ctx, c1);
    std::vector<double> p = m3.layout().initial_values<double>(8);
    const index_t B = 2, S = c3.full_len(), Dm = c3.hidden_size, n = B * S * Dm;
    auto zh = random_vec(n, 30), zl = random_vec(n, 31);
    const token_batch b = tiny::batch(c3, B, 4);
    // State after two cycles: the carry a T=2 step leaves behind.
    trm_carry<double, R> carry(B, S, Dm);
    std::copy(zh.begin(), zh.end(), carry.zh.data());
    std::copy(zl.begin(), zl.end(), carry.zl.data());
    workspace<R> ws;
    std::vector<double> logits(B * S * c3.vocab_size), q(2 * B);
    m2.forward(ctx, p.data(), carry, b.inputs.data(), b.context.data(), logits.data(), q.data(), nullptr, ws);
    std::vector<double> zh2(carry.zh.data(), carry.zh.data() + n), zl2(carry.zl.data(), carry.zl.data() + n);
    std::vector<double> g3(p.size(), 0.0), g1(p.size(), 0.0);
    const double l3 = step_loss(m3, p, zh, zl, b, &g3);
    const double l1 = step_loss(m1, p, zh2, zl2, b, &g1);
    CHECK(l3 == doctest::Approx(l1).epsilon(1e-12));
    auto cmp = testing::compare(g3, g1, 1e-9);
    CHECK(cmp.max_rel < 1e-10);
  }

  // HRM's one-step gradient, in two parts. Within a cycle: N = 1, T = 2 from (z_H, z_L) has the
  // loss and gradient of N = T = 1 from (z_H, z_L') where z_L' is the first L update's output,
  // which the carry of an N = T = 1 step holds. Across cycles: N = 2, T = 2 equals N = 1, T = 2
  // from the carry that N = 1, T = 2 leaves behind (L L H | L L H, of which only the last L
  // and H updates are taped).
  TEST_CASE("HRM no-grad updates: all but the last L and H updates carry no gradient") {
    const trm_config c22 = tiny::hrm_config(2, 2), c12 = tiny::hrm_config(1, 2), c11 = tiny::hrm_config(1, 1);
    using model_t = trm_model<R, double, attention_mixer<R>, dynamic_hierarchical_recursion>;
    model_t m22(ctx, c22), m12(ctx, c12), m11(ctx, c11);
    std::vector<double> p = m22.layout().initial_values<double>(8);
    const index_t B = 2, S = c22.full_len(), Dm = c22.hidden_size, n = B * S * Dm;
    auto zh = random_vec(n, 40), zl = random_vec(n, 41);
    const token_batch b = tiny::batch(c22, B, 5);
    // The carry after one untaped step of `m` from (zh, zl).
    const auto carry_after = [&](const model_t& m) {
      trm_carry<double, R> carry(B, S, Dm);
      std::copy(zh.begin(), zh.end(), carry.zh.data());
      std::copy(zl.begin(), zl.end(), carry.zl.data());
      workspace<R> ws;
      std::vector<double> logits(B * S * c22.vocab_size), q(2 * B);
      m.forward(ctx, p.data(), carry, b.inputs.data(), b.context.data(), logits.data(), q.data(), nullptr, ws);
      return std::pair{std::vector<double>(carry.zh.data(), carry.zh.data() + n),
                       std::vector<double>(carry.zl.data(), carry.zl.data() + n)};
    };
    const auto compare_steps = [&](auto& ma, const std::vector<double>& zha, const std::vector<double>& zla, auto& mb,
                                   const std::vector<double>& zhb, const std::vector<double>& zlb) {
      std::vector<double> ga(p.size(), 0.0), gb(p.size(), 0.0);
      CHECK(step_loss(ma, p, zha, zla, b, &ga) == doctest::Approx(step_loss(mb, p, zhb, zlb, b, &gb)).epsilon(1e-12));
      CHECK(testing::compare(ga, gb, 1e-9).max_rel < 1e-10);
      CHECK(testing::compare(ga, std::vector<double>(p.size(), 0.0), 1e-9).max_rel > 0);  // not vacuous
    };
    const auto [zh11, zl11] = carry_after(m11);
    compare_steps(m12, zh, zl, m11, zh, zl11);
    const auto [zh12, zl12] = carry_after(m12);
    compare_steps(m22, zh, zl, m12, zh12, zl12);
  }
}
