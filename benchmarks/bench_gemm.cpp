// SPDX-License-Identifier: Apache-2.0
// GEMM and primitive throughput of the CPU backend. FLOP/s are reported as the
// `FLOP/s` counter; arguments are the size, the thread count and the GEMM precision
// (bf16 = 1: operands rounded to bf16, fp32 accumulation).
#include <benchmark/benchmark.h>
#include <etrm/etrm.hpp>

#include <vector>

namespace {

etrm::gemm_precision precision_arg(std::int64_t bf16) {
  return bf16 ? etrm::gemm_precision::bf16 : etrm::gemm_precision::fp32;
}

void bm_gemm(benchmark::State& state) {
  const etrm::index_t n = state.range(0);
  etrm::context_t<etrm::cpu_device> ctx(int(state.range(1)), precision_arg(state.range(2)));
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  for (auto _ : state) {
    etrm::kernels<etrm::cpu_device>::gemm(ctx, false, false, n, n, n, 1.f, a.data(), n, 0, b.data(), n, 0, 0.f,
                                          c.data(), n, 0, 1);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_gemm)->ArgsProduct({{512, 1024}, {1, 2}, {0, 1}})->ArgNames({"n", "threads", "bf16"})->Unit(benchmark::kMillisecond)->UseRealTime();

// Attention-shaped batched GEMM: [B·H] × [S, d] · [d, S].
void bm_gemm_batched(benchmark::State& state) {
  const etrm::index_t batch = 64, s = 97, d = 64;
  etrm::context_t<etrm::cpu_device> ctx(int(state.range(0)), precision_arg(state.range(1)));
  std::vector<float> q(batch * s * d, 0.5f), k(batch * s * d, 0.25f), out(batch * s * s);
  for (auto _ : state) {
    etrm::kernels<etrm::cpu_device>::gemm(ctx, false, true, s, s, d, 1.f, q.data(), d, s * d, k.data(), d, s * d, 0.f,
                                          out.data(), s, s * s, batch);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * batch * s * s * d, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_gemm_batched)->ArgsProduct({{1, 2}, {0, 1}})->ArgNames({"threads", "bf16"})->UseRealTime();

template <class F>
void primitive(benchmark::State& state, F&& f, double bytes) {
  for (auto _ : state) f();
  state.SetBytesProcessed(int64_t(bytes * double(state.iterations())));
}

void bm_rms_norm(benchmark::State& state) {
  const etrm::index_t rows = 64 * 97, cols = 512;
  etrm::context_t<etrm::cpu_device> ctx(int(state.range(0)));
  std::vector<float> x(rows * cols, 1.f), y(x.size()), r(rows);
  primitive(state, [&] { etrm::kernels<etrm::cpu_device>::rms_norm(ctx, rows, cols, 1e-5f, x.data(), y.data(), r.data()); },
            2.0 * 4 * rows * cols);
}
BENCHMARK(bm_rms_norm)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();

void bm_row_softmax(benchmark::State& state) {
  const etrm::index_t rows = 64 * 8 * 97, cols = 97;
  etrm::context_t<etrm::cpu_device> ctx(int(state.range(0)));
  std::vector<float> x(rows * cols, 0.1f), y(x.size());
  primitive(state, [&] { etrm::kernels<etrm::cpu_device>::row_softmax(ctx, rows, cols, x.data(), y.data()); },
            2.0 * 4 * rows * cols);
}
BENCHMARK(bm_row_softmax)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();

}  // namespace
