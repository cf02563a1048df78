// SPDX-License-Identifier: Apache-2.0
// The NCCL communicator on the ranks it is started with (ctest: one rank without mpirun;
// `mpirun -np N` on N GPUs works the same): collectives on device buffers against a host
// computation, and a CUDA trainer on the ranks (its slice of each global batch) against one
// process training on the whole batch. Without a visible GPU it says so and passes.
#include <etrm/etrm_cuda.cuh>
#include <etrm/parallel/nccl_communicator.cuh>

#include <cmath>
#include <cstdio>
#include <numeric>

using namespace etrm;
using CD = cuda_device;

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  }
}

void collectives(context_t<CD>& ctx, nccl_communicator& comm) {
  const int N = comm.size(), me = comm.rank();
  const auto value = [](int r, int i) { return float((r + 1) * 100 + i % 13) * 0.5f; };
  std::vector<float> x(257);
  for (int i = 0; i < int(x.size()); ++i) x[std::size_t(i)] = value(me, i);
  buffer<float, CD> dx = make_buffer<float, CD>(ctx, x);
  comm.all_reduce_sum(dx.data(), x.size());
  const auto sum = to_host<CD>(ctx, dx.data(), dx.size());
  bool ok = true;
  for (int i = 0; i < int(x.size()); ++i) {
    float expected = 0;
    for (int r = 0; r < N; ++r) expected += value(r, i);
    ok = ok && sum[std::size_t(i)] == expected;
  }
  check(ok, "all-reduce equals the host sum");

  std::vector<std::int32_t> mine(3);
  std::iota(mine.begin(), mine.end(), 10 * me);
  buffer<std::int32_t, CD> dm = make_buffer<std::int32_t, CD>(ctx, mine), all(3 * N);
  comm.all_gather(dm.data(), sizeof(std::int32_t) * 3, all.data());
  const auto gathered = to_host<CD>(ctx, all.data(), all.size());
  ok = true;
  for (int r = 0; r < N; ++r)
    for (int k = 0; k < 3; ++k) ok = ok && gathered[std::size_t(3 * r + k)] == 10 * r + k;
  check(ok, "all-gather holds every rank's values in rank order");

  buffer<float, CD> db = make_buffer<float, CD>(ctx, std::vector<float>(9, float(me + 7)));
  comm.broadcast(db.data(), sizeof(float) * 9, 0);
  const auto b = to_host<CD>(ctx, db.data(), db.size());
  check(std::all_of(b.begin(), b.end(), [](float v) { return v == 7.f; }), "broadcast copies rank 0's values");
  comm.barrier();
}

void trainer_equals_one_process(context_t<CD>& ctx, nccl_communicator& comm) {
  trm_config c;
  c.hidden_size = 16;
  c.num_heads = 2;
  c.expansion = 2;
  c.L_layers = 2;
  c.seq_len = 6;
  c.vocab_size = 5;
  c.puzzle_emb_ndim = 16;
  c.puzzle_emb_len = 2;
  c.num_puzzle_identifiers = 4;
  c.halt_max_steps = 3;
  using model_t = trm_model<CD, float, attention_mixer<CD>>;
  const index_t global = 4 * comm.size(), local = 4;
  trainer<model_t>::options o;
  o.seed = 3;
  o.optimizer.lr = 1e-3;
  o.optimizer.warmup_steps = 1;
  model_t ma(ctx, c), mb(ctx, c);
  trainer<model_t> ranks(ctx, ma, local, o, comm), one(ctx, mb, global, o);
  for (std::uint64_t s = 0; s < 5; ++s) {
    token_batch b;
    b.batch = global;
    for (index_t i = 0; i < global * c.seq_len; ++i) {
      b.inputs.push_back(std::int32_t(uniform_index({s, 1}, std::uint64_t(i), std::uint64_t(c.vocab_size))));
      b.labels.push_back(std::int32_t(uniform_index({s, 2}, std::uint64_t(i), std::uint64_t(c.vocab_size))));
    }
    for (index_t i = 0; i < global; ++i) b.context.push_back(std::int32_t(i % c.num_puzzle_identifiers));
    const step_metrics a = ranks.train_step(batch_rows(b, ranks.first_row(), local)), r = one.train_step(b);
    check(std::abs(a.loss - r.loss) <= 1e-5 * std::abs(r.loss), "loss on the ranks equals one process");
  }
  const auto pa = to_host<CD>(ctx, ranks.parameters().data(), ranks.parameters().size());
  const auto pb = to_host<CD>(ctx, one.parameters().data(), one.parameters().size());
  double diff = 0, rms = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    diff = std::max(diff, double(std::abs(pa[i] - pb[i])));
    rms += double(pb[i]) * double(pb[i]);
  }
  rms = std::sqrt(rms / double(pa.size()));
  std::printf("rank %d: largest parameter difference %.3g (RMS %.3g) after 5 steps\n", comm.rank(), diff, rms);
  check(diff <= 1e-4 * rms, "parameters on the ranks equal one process");
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device visible: NCCL test skipped\n");
    return 0;
  }
  mpi_environment env(&argc, &argv);
  mpi_communicator boot;
  context_t<CD> ctx(boot.rank() % devices);
  nccl_communicator comm(ctx, boot, std::chrono::seconds(120));
  collectives(ctx, comm);
  trainer_equals_one_process(ctx, comm);
  double failed = failures;
  boot.all_reduce_sum(&failed, 1);
  std::printf("%s\n", failed > 0 ? "NCCL test FAILED" : "NCCL test passed");
  return failed > 0 ? 1 : 0;
}
