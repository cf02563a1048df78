// SPDX-License-Identifier: Apache-2.0
// Data-parallel training on MPI, run by ctest as `mpirun -np 2 etrm_mpi_tests`: the
// communicator's collectives against a host computation, and training on N ranks against one
// process training on the whole global batch (which every rank also runs, with single_process):
// parameters after 20 steps, the puzzle table (TRM) and the metrics; a checkpoint written on N
// ranks resumes on one.
#define DOCTEST_CONFIG_IMPLEMENT
#include "../common/tiny_models.hpp"

#include <doctest/doctest.h>
#include <etrm/parallel/mpi_communicator.hpp>

#include <cmath>
#include <filesystem>
#include <numeric>

using namespace etrm;
using C = cpu_device;

namespace {

mpi_communicator* world = nullptr;

TEST_CASE("mpi_communicator: collectives equal a host computation") {
  mpi_communicator& comm = *world;
  const int N = comm.size(), me = comm.rank();
  // The value every rank r holds at index i, so any rank can compute the expected results.
  const auto value = [](int r, std::size_t i) { return double((r + 1) * 1000 + int(i % 97)) * 0.25; };
  const std::size_t n = 1031;

  std::vector<double> d(n);
  std::vector<float> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = float(d[i] = value(me, i));
  comm.all_reduce_sum(d.data(), n);
  comm.all_reduce_sum(f.data(), n);
  for (std::size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int r = 0; r < N; ++r) sum += value(r, i);
    REQUIRE(d[i] == sum);  // small multiples of 1/4: exact in either precision
    REQUIRE(double(f[i]) == sum);
  }

  std::vector<std::int32_t> mine(5), all(std::size_t(5 * N), -1);
  std::iota(mine.begin(), mine.end(), 10 * me);
  comm.all_gather(mine.data(), sizeof(std::int32_t) * mine.size(), all.data());
  for (int r = 0; r < N; ++r)
    for (int k = 0; k < 5; ++k) CHECK(all[std::size_t(5 * r + k)] == 10 * r + k);

  for (int root = 0; root < N; ++root) {
    std::vector<float> b(77, float(me));
    comm.broadcast(b.data(), sizeof(float) * b.size(), root);
    CHECK(std::all_of(b.begin(), b.end(), [&](float v) { return v == float(root); }));
  }
  comm.barrier();

  communicator_ref ref(comm);  // the type-erased reference the trainer holds
  CHECK(ref.rank() == me);
  CHECK(ref.size() == N);
  double x = me + 1;
  ref.all_reduce_sum(&x, 1);
  CHECK(x == double(N * (N + 1) / 2));
}

// Largest |a − b| over one tensor, relative to the RMS of its one-process values.
template <class Model>
double worst_relative_difference(const Model& m, const std::vector<float>& ranks, const std::vector<float>& one) {
  double worst = 0;
  for (const auto& e : m.layout().entries()) {
    double rms = 0, diff = 0;
    for (index_t i = 0; i < e.ref.size; ++i) {
      const double a = ranks[std::size_t(e.ref.offset + i)], b = one[std::size_t(e.ref.offset + i)];
      rms += b * b;
      diff = std::max(diff, std::abs(a - b));
    }
    rms = std::sqrt(rms / double(e.ref.size));
    if (rms > 0) worst = std::max(worst, diff / rms);
    INFO(e.name);
    CHECK(diff <= 1e-5 * rms);
  }
  return worst;
}

// `steps` steps of a trainer on N ranks (its slice of each global batch) and of one process on
// the whole global batch; parameters, puzzle table and metrics must agree.
template <class Model, class Batches, class... Args>
void check_ranks_equal_one_process(const trm_config& c, index_t global_batch, Batches&& batch_of_step,
                                   const Args&... args) {
  mpi_communicator& comm = *world;
  const index_t local = global_batch / comm.size();
  context_t<C> ctx(1);
  typename trainer<Model>::options o;
  o.optimizer.lr = 1e-3;
  o.optimizer.warmup_steps = 2;
  o.optimizer.puzzle_emb_lr = 1e-2;
  o.seed = 7;
  Model m_ranks(ctx, c, args...), m_one(ctx, c, args...);
  trainer<Model> ranks(ctx, m_ranks, local, o, comm);
  trainer<Model> one(ctx, m_one, global_batch, o);
  const std::filesystem::path ckpt = std::filesystem::temp_directory_path() / "etrm_mpi_test_ckpt.safetensors";
  for (std::uint64_t s = 0; s < 20; ++s) {
    const token_batch b = batch_of_step(global_batch, s);
    const step_metrics a = ranks.train_step(batch_rows(b, ranks.first_row(), local));
    const step_metrics r = one.train_step(b);
    CHECK(a.count == r.count);
    CHECK(a.loss == doctest::Approx(r.loss).epsilon(1e-5));
    CHECK(a.exact_accuracy == doctest::Approx(r.exact_accuracy));
    CHECK(a.steps == doctest::Approx(r.steps));
    if (s == 9) save_training_checkpoint(ckpt, ranks, {});
  }
  const auto pa = to_host<C>(ctx, ranks.parameters().data(), ranks.parameters().size());
  const auto pb = to_host<C>(ctx, one.parameters().data(), one.parameters().size());
  MESSAGE("largest difference over a tensor's RMS after 20 steps: " << worst_relative_difference(m_one, pa, pb));
  if constexpr (requires { m_one.prefix().table(); }) {
    const index_t n = m_one.prefix().rows() * m_one.prefix().ndim();
    const auto ta = to_host<C>(ctx, m_ranks.prefix().table(), n), tb = to_host<C>(ctx, m_one.prefix().table(), n);
    double diff = 0, rms = 0;
    for (index_t i = 0; i < n; ++i) {
      diff = std::max(diff, double(std::abs(ta[std::size_t(i)] - tb[std::size_t(i)])));
      rms += double(tb[std::size_t(i)]) * double(tb[std::size_t(i)]);
    }
    CHECK(rms > 0);  // the table was trained
    CHECK(diff <= 1e-5 * std::sqrt(rms / double(n)));
  }

  // Resume the N-rank checkpoint of step 10 in one process: the same last 10 steps.
  comm.barrier();
  Model m_resumed(ctx, c, args...);
  trainer<Model> resumed(ctx, m_resumed, global_batch, o);
  load_training_checkpoint(ckpt, resumed);
  CHECK(resumed.step() == 10);
  for (std::uint64_t s = 10; s < 20; ++s) resumed.train_step(batch_of_step(global_batch, s));
  const auto pr = to_host<C>(ctx, resumed.parameters().data(), resumed.parameters().size());
  MESSAGE("resumed on one process: largest difference over a tensor's RMS: " << worst_relative_difference(m_one, pr, pb));
  comm.barrier();
  if (comm.rank() == 0) std::filesystem::remove(ckpt);
}

TEST_CASE("data parallel: TRM with puzzle ids on N ranks equals one process") {
  trm_config c = tiny::config(false, 2, 2);
  c.num_puzzle_identifiers = 6;
  c.halt_max_steps = 4;
  c.halt_exploration_prob = 0.3;  // exploration draws must follow the global row
  using model_t = trm_model<C, float, attention_mixer<C>>;
  check_ranks_equal_one_process<model_t>(c, 8, [&](index_t B, std::uint64_t s) { return tiny::batch(c, B, s); });
}

TEST_CASE("data parallel: ETRM on N ranks equals one process") {
  const data::episode_shape shape{4, 2};
  trm_config c = tiny::config(false, 1, 2);
  c.seq_len = shape.seq_len();
  c.vocab_size = 12;
  c.num_puzzle_identifiers = 1;
  c.puzzle_emb_ndim = 0;
  c.halt_max_steps = 3;
  encoder_config e{shape.side, shape.max_demos, 1, 1};
  e.readout_weight = 1;
  data::generator_config g;
  g.min_side = 2;
  g.max_side = 3;
  using model_t = trm_model<C, float, attention_mixer<C>, dynamic_recursion, demo_encoder_policy<>::template type>;
  check_ranks_equal_one_process<model_t>(
      c, 8, [&](index_t B, std::uint64_t s) { return data::episode_source(data::rule_split::train, 17, shape, g).batch(B, s); },
      e);
}

}  // namespace

int main(int argc, char** argv) {
  mpi_environment env(&argc, &argv);
  mpi_communicator comm(MPI_COMM_WORLD, std::chrono::seconds(120));
  world = &comm;
  doctest::Context run(argc, argv);
  const int failed = run.run();
  // A failure on any rank fails every rank.
  double failures = failed ? 1 : 0;
  comm.all_reduce_sum(&failures, 1);
  return failures > 0 ? 1 : 0;
}
