// SPDX-License-Identifier: Apache-2.0
// GEMM and primitive throughput of the CPU backend. FLOP/s are reported as the
// `FLOP/s` counter; arguments are the size, the thread count and the GEMM precision
// (bf16 = 1: operands rounded to bf16, fp32 accumulation). bm_gemm_step times the training
// step's shapes on each provider, bm_onednn_matmul a bare oneDNN primitive on the same shapes.
#include <benchmark/benchmark.h>
#include <etrm/etrm.hpp>

#include <algorithm>
#include <string>
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

// The training step's GEMM shapes, C[m, n] = op(A)·op(B) (× batch).
struct step_gemm {
  const char* what;
  bool ta, tb;
  etrm::index_t m, n, k, batch;
};
constexpr step_gemm step_gemms[] = {
    {"sudoku_mlp/16 SwiGLU in", false, true, 1552, 3072, 512, 1},
    {"sudoku_mlp/16 SwiGLU out", false, true, 1552, 512, 1536, 1},
    {"sudoku_mlp/16 token SwiGLU in", false, true, 8192, 1024, 97, 1},
    {"sudoku_mlp/16 token SwiGLU out", false, true, 8192, 97, 512, 1},
    {"sudoku_mlp/16 SwiGLU in, weight gradient", true, false, 3072, 512, 1552, 1},
    {"small_att/8 QKV", false, true, 808, 384, 128, 1},
    {"small_att/8 scores", false, true, 101, 101, 32, 32},
};
double step_flops(const step_gemm& g) { return 2.0 * double(g.m * g.n * g.k * g.batch); }

// bm_gemm_step/<shape>/<provider 0 Eigen, 1 oneDNN>/<bf16>: the backend's GEMM at the step's shapes.
void bm_gemm_step(benchmark::State& state) {
  const step_gemm g = step_gemms[state.range(0)];
  etrm::context_t<etrm::cpu_device> ctx(0, precision_arg(state.range(2)));
  if (state.range(1) == 1 && !ETRM_WITH_DNNL) return state.SkipWithError("built without oneDNN");
  ctx.set_gemm_provider(state.range(1) ? etrm::gemm_provider::onednn : etrm::gemm_provider::eigen);
  const etrm::index_t sa = g.m * g.k, sb = g.k * g.n, sc = g.m * g.n;
  std::vector<float> a(sa * g.batch, 0.5f), b(sb * g.batch, 0.25f), c(sc * g.batch);
  for (auto _ : state) {
    etrm::kernels<etrm::cpu_device>::gemm(ctx, g.ta, g.tb, g.m, g.n, g.k, 1.f, a.data(), g.ta ? g.m : g.k, sa, b.data(),
                                          g.tb ? g.k : g.n, sb, 0.f, c.data(), g.n, sc, g.batch);
    benchmark::DoNotOptimize(c.data());
  }
  state.SetLabel(g.what);
  state.counters["FLOP/s"] = benchmark::Counter(step_flops(g), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_gemm_step)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {0, 1}, {0, 1}})
    ->ArgNames({"shape", "onednn", "bf16"})
    ->UseRealTime();

#if ETRM_WITH_DNNL
// bm_onednn_matmul/<shape>/<bf16>: a bare oneDNN matmul primitive on the same shapes, operands
// already in its type, only execute() timed: oneDNN's own figure, the yardstick of bm_gemm_step.
void bm_onednn_matmul(benchmark::State& state) {
  const step_gemm g = step_gemms[state.range(0)];
  using dt = dnnl::memory::data_type;
  const dt type = state.range(1) ? dt::bf16 : dt::f32;
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  omp_set_num_threads(etrm::context_t<etrm::cpu_device>().threads());
#endif
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  auto desc = [&](bool t, etrm::index_t rows, etrm::index_t cols, dt d) {
    return dnnl::memory::desc({g.batch, rows, cols}, d,
                              t ? dnnl::memory::dims{rows * cols, 1, rows} : dnnl::memory::dims{rows * cols, cols, 1});
  };
  const auto a_desc = desc(g.ta, g.m, g.k, type), b_desc = desc(g.tb, g.k, g.n, type),
             c_desc = desc(false, g.m, g.n, dt::f32);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_desc, b_desc, c_desc), engine, /*allow_empty=*/true);
  if (!pd || std::string(pd.impl_info_str()).rfind("ref", 0) == 0)
    return state.SkipWithError("oneDNN has no optimised kernel for this type here");
  dnnl::memory a(a_desc, engine), b(b_desc, engine), c(c_desc, engine);
  std::fill_n(static_cast<char*>(a.get_data_handle()), a_desc.get_size(), 0x3f);
  std::fill_n(static_cast<char*>(b.get_data_handle()), b_desc.get_size(), 0x3e);
  dnnl::matmul matmul(pd);
  for (auto _ : state) {
    matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream.wait();
  }
  state.SetLabel(std::string(g.what) + ", " + pd.impl_info_str());
  state.counters["FLOP/s"] = benchmark::Counter(step_flops(g), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_onednn_matmul)->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {0, 1}})->ArgNames({"shape", "bf16"})->UseRealTime();
#endif

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
