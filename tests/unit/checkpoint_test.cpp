// SPDX-License-Identifier: Apache-2.0
// Checkpoints: a training checkpoint resumes exactly (same metrics and parameters as an
// uninterrupted run), weights saved in BF16 or with torch.compile's `_orig_mod.` prefix load,
// and truncated or mismatched files fail with one clear line.
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace etrm;
using C = cpu_device;
using model_t = trm_model<C, float, attention_mixer<C>>;

namespace {

context_t<C> ctx(2);

std::filesystem::path temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("etrm_ckpt_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

typename trainer<model_t>::options opts() {
  typename trainer<model_t>::options o;
  o.optimizer.lr = 1e-3;
  o.optimizer.warmup_steps = 2;
  o.seed = 3;
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a training checkpoint resumes exactly") {
  const trm_config c = tiny::config(false, 2, 2);
  const auto path = temp_dir() / "run.safetensors";
  model_t ma(ctx, c), mb(ctx, c);
  trainer<model_t> straight(ctx, ma, 4, opts()), resumed(ctx, mb, 4, opts());
  std::vector<double> want;
  for (std::uint64_t s = 0; s < 6; ++s) {
    const double loss = straight.train_step(tiny::batch(c, 4, s)).loss;
    if (s == 2) save_training_checkpoint(path, straight, {{"task", "test"}});
    if (s > 2) want.push_back(loss);
  }
  const auto state = load_training_checkpoint(path, resumed);
  CHECK(state.at("task") == "test");
  CHECK(resumed.step() == 3);
  for (std::uint64_t s = 3; s < 6; ++s) CHECK(resumed.train_step(tiny::batch(c, 4, s)).loss == want[s - 3]);
  CHECK(to_host<C>(ctx, resumed.parameters().data(), resumed.parameters().size()) ==
        to_host<C>(ctx, straight.parameters().data(), straight.parameters().size()));
}

TEST_CASE("weights in BF16 and with the _orig_mod. prefix load") {
  const trm_config c = tiny::config(true, 2, 2);
  using mlp_model = trm_model<C, float, token_mlp_mixer<C>>;
  mlp_model m(ctx, c);
  const auto p = m.layout().initial_values<float>(4);
  io::safetensors_writer w;
  for (const auto& e : m.layout().entries())
    w.add_bf16_from_f32("_orig_mod." + e.name, {e.shape.begin(), e.shape.end()},
                        std::span<const float>(p.data() + e.ref.offset, std::size_t(e.ref.size)));
  const std::vector<float> init(std::size_t(c.hidden_size), 0.5f);
  w.add_f32("model.inner.H_init", {c.hidden_size}, init);
  w.add_f32("model.inner.L_init", {c.hidden_size}, init);
  w.add_f32("model.inner.puzzle_emb.weights", {c.num_puzzle_identifiers, c.puzzle_emb_ndim},
            std::vector<float>(std::size_t(c.num_puzzle_identifiers * c.puzzle_emb_ndim), 0.25f));
  w.set_metadata("config", nlohmann::json(c).dump());
  const auto path = temp_dir() / "bf16.safetensors";
  w.save(path);
  std::vector<float> loaded(std::size_t(m.layout().total()));
  load_model_checkpoint(path, ctx, m, loaded.data());
  for (const auto& e : m.layout().entries())
    for (index_t i = 0; i < e.ref.size; ++i)
      REQUIRE(loaded[e.ref.offset + i] == doctest::Approx(p[e.ref.offset + i]).epsilon(1e-2).scale(1e-3));
  CHECK(m.h_init()[0] == 0.5f);
  CHECK(m.prefix().table()[0] == 0.25f);
}

TEST_CASE("truncated and mismatched checkpoints give one clear line") {
  const trm_config c = tiny::config(false, 2, 2);
  model_t m(ctx, c);
  trainer<model_t> tr(ctx, m, 4, opts());
  const auto dir = temp_dir();
  save_training_checkpoint(dir / "good.safetensors", tr, {});
  // Truncated: the first half of the file.
  {
    std::ifstream in(dir / "good.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir / "cut.safetensors", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
  }
  std::vector<float> w(std::size_t(m.layout().total()));
  const std::string cut = error_of([&] { load_model_checkpoint(dir / "cut.safetensors", ctx, m, w.data()); });
  CHECK(cut.find("cut.safetensors") != std::string::npos);
  CHECK(cut.find("truncated") != std::string::npos);
  CHECK(cut.find('\n') == std::string::npos);
  // Another configuration.
  trm_config other = c;
  other.hidden_size = 32;
  model_t m2(ctx, other);
  std::vector<float> w2(std::size_t(m2.layout().total()));
  const std::string mismatch = error_of([&] { load_model_checkpoint(dir / "good.safetensors", ctx, m2, w2.data()); });
  CHECK(mismatch.find("good.safetensors") != std::string::npos);
  CHECK(mismatch.find("checkpoint of another configuration: hidden_size is 16 in the file but 32 here") !=
        std::string::npos);
  const std::string missing = error_of([&] { load_model_checkpoint(dir / "nope.safetensors", ctx, m, w.data()); });
  CHECK(missing.find("nope.safetensors") != std::string::npos);
  std::filesystem::remove_all(dir);
}
