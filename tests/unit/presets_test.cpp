// SPDX-License-Identifier: Apache-2.0
// The papers' parameter counts (trm-computation.md §1.10, docs/hrm.md), puzzle table excluded,
// and the arena's promise that a steady-state training step allocates nothing.
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

using namespace etrm;
using R = reference_device;

namespace {
context_t<R> ctx;

index_t count(const std::string& name) {
  const trm_config c = preset(name);
  if (c.H_layers > 0) return hrm_model<R, float>(ctx, c).layout().count();
  if (c.mlp_t) return trm_model<R, float, token_mlp_mixer<R>>(ctx, c).layout().count();
  return trm_model<R, float, attention_mixer<R>>(ctx, c).layout().count();
}
}  // namespace

TEST_CASE("preset parameter counts match the paper") {
  CHECK(count("sudoku_mlp") == 5028866);
  CHECK(count("sudoku_att") == 6828034);
  CHECK(count("maze") == 6822914);
  CHECK(count("arc") == 6829058);
  CHECK(count("hrm_sudoku") == 27275266);
  CHECK(count("hrm_maze") == 27270146);
  CHECK(count("hrm_arc") == 27276290);
  CHECK_THROWS_WITH_AS(preset("nope"), doctest::Contains("unknown preset 'nope'"), std::invalid_argument);
}

TEST_CASE("HRM presets: the official tensor names and shapes, one prefix token") {
  const trm_config c = preset("hrm_sudoku");
  CHECK(c.prefix_len() == 1);
  CHECK(c.full_len() == 82);
  const hrm_model<R, float> m(ctx, c);
  // 36 parameters (docs/hrm.md); H_init, L_init and the puzzle table are buffers.
  CHECK(m.layout().entries().size() == 36);
  for (const char* level : {"H_level", "L_level"})
    for (int i = 0; i < 4; ++i) {
      const std::string b = std::string("model.inner.") + level + ".layers." + std::to_string(i) + ".";
      const auto shape = [&](const std::string& n) { return m.layout().find(b + n)->shape; };
      CHECK(shape("self_attn.qkv_proj.weight") == std::vector<index_t>{1536, 512});
      CHECK(shape("self_attn.o_proj.weight") == std::vector<index_t>{512, 512});
      CHECK(shape("mlp.gate_up_proj.weight") == std::vector<index_t>{3072, 512});
      CHECK(shape("mlp.down_proj.weight") == std::vector<index_t>{512, 1536});
    }
  CHECK(m.layout().find("model.inner.H_level.layers.4.mlp.down_proj.weight") == nullptr);
  CHECK(m.layout().find("model.inner.q_head.bias")->shape == std::vector<index_t>{2});
}

TEST_CASE("HRM configuration errors") {
  trm_config c = tiny::hrm_config(2, 2);
  c.H_layers = 0;
  CHECK_THROWS_WITH_AS((hrm_model<R, float>(ctx, c)), doctest::Contains("needs H_layers > 0"), std::invalid_argument);
  c.H_layers = 2;
  CHECK_THROWS_WITH_AS((hrm_model<R, float, hierarchical_recursion<2, 3>>(ctx, c)),
                       doctest::Contains("fixes L_cycles = 3 but the configuration says 2"), std::invalid_argument);
  CHECK_NOTHROW((hrm_model<R, float, hierarchical_recursion<2, 2>>(ctx, c)));
}

TEST_CASE("a steady-state training step allocates nothing") {
  const trm_config c = tiny::config(false, 2, 2);
  using model_t = trm_model<R, float, attention_mixer<R>>;
  model_t m(ctx, c);
  trainer<model_t> tr(ctx, m, 4, {});
  tr.train_step(tiny::batch(c, 4, 1));  // sizes the arena
  tr.train_step(tiny::batch(c, 4, 2));  // folds the first step's overflow into one block
  const std::size_t allocations = tr.arena().allocations();
  for (std::uint64_t s = 3; s < 6; ++s) tr.train_step(tiny::batch(c, 4, s));
  CHECK(tr.arena().allocations() == allocations);
  CHECK(tr.arena().high_water() <= tr.arena().capacity());
}

TEST_CASE("the ACT continue loss (no_ACT_continue = false) trains q_continue; the default does not") {
  using model_t = trm_model<R, float, attention_mixer<R>>;
  for (const bool use_continue : {false, true}) {
    trm_config c = tiny::config(false, 2, 2);
    c.no_ACT_continue = !use_continue;
    model_t m(ctx, c);
    trainer<model_t> tr(ctx, m, 4, {});
    // q_halt above q_continue: the continue target σ(max(next q_halt, next q_continue)) then
    // differs from σ(q_continue) (with equal logits both gradients would vanish).
    const auto* bias = m.layout().find("model.inner.q_head.bias");
    auto p = m.layout().initial_values<float>(0);
    p[bias->ref.offset] = 0.0f;
    tr.set_parameters(p);
    const step_metrics s = tr.train_step(tiny::batch(c, 4, 1));
    const float g_continue = tr.gradients().data()[bias->ref.offset + 1];
    CAPTURE(use_continue);
    CHECK(s.loss == doctest::Approx(s.lm_loss + 0.5 * (s.q_halt_loss + s.q_continue_loss)));
    if (use_continue) {
      CHECK(s.q_continue_loss > 0);
      CHECK(g_continue != 0.0f);
    } else {
      CHECK(s.q_continue_loss == 0);
      CHECK(g_continue == 0.0f);
    }
  }
}
