// SPDX-License-Identifier: Apache-2.0
// CUDA benchmarks (Google Benchmark, timed with CUDA events, UseManualTime):
//   gemm/<fp32|tf32|bf16>/<N>        N×N×N float GEMM, counter FLOP/s
//   rms_norm/<rows>x<cols>, softmax/<rows>x<cols>   counter bytes/s (one read + one write)
//   block/<attention|mlp_t>/sudoku   one block forward + backward at B=64, S=97, D=512
//   train_step/<preset>/<batch>[/tf32|/bf16]   a whole trainer::train_step of the paper
//                                    presets; items_per_second = samples per second
// Runs that do not fit in GPU memory report SkipWithError. Without a GPU the program says so
// and exits 0.
#include <benchmark/benchmark.h>
#include <etrm/etrm_cuda.cuh>

#include <cuda_runtime.h>

#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <vector>

// A named namespace: `using namespace etrm` at global scope would make etrm::erfinv collide
// with CUDA's ::erfinv in the math headers nvcc appends to every translation unit.
namespace bench_cuda {

using namespace etrm;
using CD = cuda_device;
using K = kernels<CD>;
using backend::cuda::gemm_precision;

bool gpu_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
}

cuda_context& ctx() {
  static cuda_context c(0);
  return c;
}

struct precision_guard {
  gemm_precision saved;
  explicit precision_guard(gemm_precision p) : saved(ctx().precision()) { ctx().set_precision(p); }
  ~precision_guard() { ctx().set_precision(saved); }
};

// Times stream work between begin() and end() with CUDA events.
class event_timer {
 public:
  event_timer() {
    ETRM_CUDA_CHECK(cudaEventCreate(&start_));
    ETRM_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~event_timer() {
    (void)cudaEventDestroy(start_);
    (void)cudaEventDestroy(stop_);
  }
  event_timer(const event_timer&) = delete;
  event_timer& operator=(const event_timer&) = delete;
  void begin() { ETRM_CUDA_CHECK(cudaEventRecord(start_, ctx().stream())); }
  double end() {  // seconds
    ETRM_CUDA_CHECK(cudaEventRecord(stop_, ctx().stream()));
    ETRM_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    ETRM_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return double(ms) * 1e-3;
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// Runs body() under the benchmark loop, timing each iteration with events; returns the total
// seconds. Exceptions (out of memory above all) turn into SkipWithError.
template <class Setup>
void run_timed(benchmark::State& state, Setup&& setup) {
  try {
    auto body = setup();  // allocations and a warm-up happen here, untimed
    event_timer timer;
    double total = 0;
    for (auto _ : state) {
      timer.begin();
      body();
      const double s = timer.end();
      state.SetIterationTime(s);
      total += s;
    }
    state.counters["seconds_total"] = total;
  } catch (const std::exception& e) {
    (void)cudaGetLastError();
    state.SkipWithError(e.what());
  }
}

double total_seconds(const benchmark::State& state) {
  const auto it = state.counters.find("seconds_total");
  return it == state.counters.end() ? 0.0 : double(it->second.value);
}

void set_rate(benchmark::State& state, const char* name, double per_iteration) {
  const double t = total_seconds(state);
  if (t > 0) state.counters[name] = benchmark::Counter(per_iteration * double(state.iterations()) / t);
}

void bm_gemm(benchmark::State& state, gemm_precision mode, index_t N) {
  precision_guard guard(mode);
  run_timed(state, [&] {
    auto a = std::make_shared<buffer<float, CD>>(N * N);
    auto b = std::make_shared<buffer<float, CD>>(N * N);
    auto c = std::make_shared<buffer<float, CD>>(N * N);
    K::fill(ctx(), N * N, 0.01f, a->data());
    K::fill(ctx(), N * N, 0.02f, b->data());
    auto body = [=] {
      K::gemm(ctx(), false, false, N, N, N, 1.f, a->data(), N, 0, b->data(), N, 0, 0.f, c->data(), N, 0, 1);
    };
    body();
    ctx().synchronize();
    return body;
  });
  set_rate(state, "FLOP/s", 2.0 * double(N) * double(N) * double(N));
}

std::vector<float> random_host(index_t n, std::uint64_t stream) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) v[i] = float(2 * uniform01({5, stream}, std::uint64_t(i)) - 1);
  return v;
}

void bm_rms_norm(benchmark::State& state, index_t rows, index_t cols) {
  run_timed(state, [&] {
    auto x = std::make_shared<buffer<float, CD>>(make_buffer<float, CD>(ctx(), random_host(rows * cols, 1)));
    auto y = std::make_shared<buffer<float, CD>>(rows * cols);
    auto r = std::make_shared<buffer<float, CD>>(rows);
    auto body = [=] { K::rms_norm(ctx(), rows, cols, 1e-5f, x->data(), y->data(), r->data()); };
    body();
    ctx().synchronize();
    return body;
  });
  set_rate(state, "bytes/s", 2.0 * double(rows) * double(cols) * sizeof(float));
}

void bm_softmax(benchmark::State& state, index_t rows, index_t cols) {
  run_timed(state, [&] {
    auto x = std::make_shared<buffer<float, CD>>(make_buffer<float, CD>(ctx(), random_host(rows * cols, 2)));
    auto y = std::make_shared<buffer<float, CD>>(rows * cols);
    auto body = [=] { K::row_softmax(ctx(), rows, cols, x->data(), y->data()); };
    body();
    ctx().synchronize();
    return body;
  });
  set_rate(state, "bytes/s", 2.0 * double(rows) * double(cols) * sizeof(float));
}

// One block (mixer + SwiGLU MLP) forward with saved activations, then backward.
template <class Mixer>
void bm_block(benchmark::State& state, bool rope_on) {
  const index_t B = 64, S = 97, Dm = 512, H = 8;
  run_timed(state, [&] {
    struct state_t {
      param_layout layout;
      block<CD, Mixer> blk;
      layer_dims dims;
      buffer<float, CD> p, g, x, y, dy, dx;
      rope_table<float, CD> rope;
      workspace<CD> ws;
    };
    auto st = std::make_shared<state_t>();
    st->blk = block<CD, Mixer>::declare(st->layout, "b.", Dm, S, 4.0);
    st->dims = layer_dims{B, S, Dm, H, 1e-5};
    st->p = make_buffer<float, CD>(ctx(), st->layout.template initial_values<float>(1));
    st->g = buffer<float, CD>(st->layout.total());
    const index_t n = B * S * Dm;
    st->x = make_buffer<float, CD>(ctx(), random_host(n, 3));
    st->dy = make_buffer<float, CD>(ctx(), random_host(n, 4));
    st->y = buffer<float, CD>(n);
    st->dx = buffer<float, CD>(n);
    if (rope_on) st->rope = rope_table<float, CD>(ctx(), S, Dm / H, 10000.0);
    device_traits<CD>::zero(ctx(), st->g.data(), sizeof(float) * std::size_t(st->g.size()));
    auto body = [st, rope_on] {
      st->ws.reset();
      const seq_shape<float> sh{st->dims, rope_on ? st->rope.view() : rope_view<float>{}};
      typename block<CD, Mixer>::template saved<float> s;
      st->blk.take(s, st->ws, sh);
      st->blk.forward(ctx(), st->p.data(), sh, {st->x.data()}, st->y.data(), &s, st->ws);
      st->blk.backward(ctx(), st->p.data(), sh, {st->x.data()}, st->y.data(), s, st->dy.data(), {st->dx.data()},
                       st->g.data(), st->ws);
    };
    body();
    body();  // the second run uses the folded arena
    ctx().synchronize();
    return body;
  });
  set_rate(state, "items_per_second", double(B));
}

struct preset {
  std::string name;
  trm_config cfg;
};

std::vector<preset> presets() {
  trm_config base;
  base.hidden_size = 512;
  base.num_heads = 8;
  base.expansion = 4;
  base.L_layers = 2;
  base.H_cycles = 3;
  base.puzzle_emb_ndim = 512;
  base.puzzle_emb_len = 16;
  base.num_puzzle_identifiers = 1;
  trm_config sudoku_mlp = base;
  sudoku_mlp.L_cycles = 6;
  sudoku_mlp.seq_len = 81;
  sudoku_mlp.vocab_size = 11;
  sudoku_mlp.mlp_t = true;
  sudoku_mlp.pos_encodings = pos_encoding::none;
  trm_config sudoku_att = sudoku_mlp;
  sudoku_att.mlp_t = false;
  sudoku_att.pos_encodings = pos_encoding::rope;
  trm_config maze = base;
  maze.L_cycles = 4;
  maze.seq_len = 900;
  maze.vocab_size = 6;
  maze.pos_encodings = pos_encoding::rope;
  trm_config arc = maze;
  arc.vocab_size = 12;
  arc.num_puzzle_identifiers = 1000;
  return {{"sudoku_mlp", sudoku_mlp}, {"sudoku_att", sudoku_att}, {"maze", maze}, {"arc", arc},
          {"hrm_sudoku", etrm::preset("hrm_sudoku")}, {"hrm_maze", etrm::preset("hrm_maze")},
          {"hrm_arc", etrm::preset("hrm_arc")}};
}

token_batch random_batch(const trm_config& c, index_t B, std::uint64_t seed) {
  token_batch b;
  b.batch = B;
  b.inputs.resize(std::size_t(B * c.seq_len));
  b.labels.resize(b.inputs.size());
  for (index_t i = 0; i < B * c.seq_len; ++i) {
    b.inputs[i] = std::int32_t(uniform_index({seed, 1}, std::uint64_t(i), std::uint64_t(c.vocab_size)));
    b.labels[i] = std::int32_t(uniform_index({seed, 2}, std::uint64_t(i), std::uint64_t(c.vocab_size)));
  }
  for (index_t i = 0; i < B; ++i)
    b.context.push_back(std::int32_t(uniform_index({seed, 3}, std::uint64_t(i), std::uint64_t(c.num_puzzle_identifiers))));
  return b;
}

template <class Mixer, class Recursion = dynamic_recursion>
void bm_train_step(benchmark::State& state, trm_config cfg, index_t B, gemm_precision mode) {
  precision_guard guard(mode);
  using model_t = trm_model<CD, float, Mixer, Recursion>;
  double arena_bytes = 0;
  run_timed(state, [&] {
    struct state_t {
      std::unique_ptr<model_t> model;
      std::unique_ptr<trainer<model_t>> tr;
      std::vector<token_batch> batches;
      std::size_t next = 0;
    };
    auto st = std::make_shared<state_t>();
    st->model = std::make_unique<model_t>(ctx(), cfg);
    typename trainer<model_t>::options opt;
    opt.optimizer.warmup_steps = 1;
    if (cfg.H_layers > 0) opt.optimizer.ema_rate = 0;  // HRM trains without EMA
    st->tr = std::make_unique<trainer<model_t>>(ctx(), *st->model, B, opt);
    // The arena's first step overflows into one block per take and cannot rewind them, so
    // its footprint would be the sum of all takes rather than the peak; reserving up front
    // keeps the first step at the true peak (which becomes the high-water mark).
    if (B >= 64) {
      std::size_t free_bytes = 0, total_bytes = 0;
      ETRM_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      st->tr->arena().reserve(std::size_t(double(free_bytes) * 0.9));
    }
    for (std::uint64_t s = 0; s < 4; ++s) st->batches.push_back(random_batch(cfg, B, 10 + s));
    auto body = [st, &arena_bytes] {
      st->tr->train_step(st->batches[st->next]);
      st->next = (st->next + 1) % st->batches.size();
      arena_bytes = double(st->tr->arena().high_water());
    };
    body();  // first step: the arena grows; the second runs at steady state
    body();
    ctx().synchronize();
    return body;
  });
  set_rate(state, "items_per_second", double(B));
  if (arena_bytes > 0) state.counters["arena_bytes"] = arena_bytes;
}

void register_all() {
  for (auto mode : {gemm_precision::fp32, gemm_precision::tf32, gemm_precision::bf16})
    for (index_t N : {index_t(1024), index_t(4096)}) {
      const std::string name = std::string("gemm/") + etrm::to_string(mode) + "/" + std::to_string(N);
      benchmark::RegisterBenchmark(name.c_str(), [mode, N](benchmark::State& s) { bm_gemm(s, mode, N); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  // [B·S, D] of sudoku at B = 768, and the attention-probability rows [B·H·S, S].
  const std::vector<std::pair<index_t, index_t>> norm_shapes = {{768 * 97, 512}, {64 * 916, 512}};
  for (auto [r, c] : norm_shapes)
    benchmark::RegisterBenchmark(("rms_norm/" + std::to_string(r) + "x" + std::to_string(c)).c_str(),
                                 [r = r, c = c](benchmark::State& s) { bm_rms_norm(s, r, c); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  const std::vector<std::pair<index_t, index_t>> softmax_shapes = {{768 * 8 * 97, 97}, {16 * 8 * 916, 916}};
  for (auto [r, c] : softmax_shapes)
    benchmark::RegisterBenchmark(("softmax/" + std::to_string(r) + "x" + std::to_string(c)).c_str(),
                                 [r = r, c = c](benchmark::State& s) { bm_softmax(s, r, c); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("block/attention/sudoku",
                               [](benchmark::State& s) { bm_block<attention_mixer<CD>>(s, true); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("block/mlp_t/sudoku", [](benchmark::State& s) { bm_block<token_mlp_mixer<CD>>(s, false); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);

  for (const auto& p : presets()) {
    for (index_t B : {index_t(16), index_t(64), index_t(768)}) {
      for (auto mode : {gemm_precision::fp32, gemm_precision::tf32, gemm_precision::bf16}) {
        if (mode != gemm_precision::fp32 && B != 768 && B != 64) continue;
        std::string name = "train_step/" + p.name + "/" + std::to_string(B);
        if (mode != gemm_precision::fp32) name += std::string("/") + etrm::to_string(mode);
        const trm_config cfg = p.cfg;
        auto fn = [cfg, B, mode](benchmark::State& s) {
          if (cfg.H_layers > 0)
            bm_train_step<attention_mixer<CD>, dynamic_hierarchical_recursion>(s, cfg, B, mode);
          else if (cfg.mlp_t)
            bm_train_step<token_mlp_mixer<CD>>(s, cfg, B, mode);
          else
            bm_train_step<attention_mixer<CD>>(s, cfg, B, mode);
        };
        // Fixed iteration counts: each run repeats the whole setup (model, trainer, two
        // warm-up steps), so the library's iteration search would multiply it.
        const bool big = cfg.seq_len > 100;
        const int iterations = B >= 768 ? (big ? 2 : 3) : B >= 64 ? (big ? 3 : 10) : (big ? 5 : 20);
        benchmark::RegisterBenchmark(name.c_str(), fn)
            ->UseManualTime()
            ->Iterations(iterations)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

}  // namespace bench_cuda

int main(int argc, char** argv) {
  using namespace bench_cuda;
  if (!gpu_available()) {
    std::printf("no CUDA device visible: CUDA benchmarks skipped\n");
    return 0;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) benchmark::AddCustomContext("cuda_device", prop.name);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
