// SPDX-License-Identifier: Apache-2.0
// Every primitive of the CUDA backend against the reference backend (tests/common/op_checks.hpp),
// the double-precision instantiations of the main kernels, the reduced-precision GEMM modes,
// the device workspace and the error path.
#include "../common/op_checks.hpp"
#include "cuda_test_util.cuh"

#include <etrm/core/arena.hpp>

#include <cmath>
#include <vector>

using etrm::index_t;
using CD = etrm::cuda_device;
using KC = etrm::kernels<CD>;
using KR = etrm::kernels<etrm::reference_device>;

TEST_SUITE("ops cuda vs reference") {
  TEST_CASE("cuda gemm") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_gemm<CD>(cuda_test::ctx());
  }
  TEST_CASE("cuda elementwise") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_elementwise<CD>(cuda_test::ctx());
  }
  TEST_CASE("cuda row ops") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_rows<CD>(cuda_test::ctx());
  }
  TEST_CASE("cuda layout and rope") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_layout<CD>(cuda_test::ctx());
  }
  TEST_CASE("cuda embedding gather and scatter") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_embedding<CD>(cuda_test::ctx());
  }
  TEST_CASE("cuda losses") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_losses<CD>(cuda_test::ctx());
  }
  TEST_CASE("cuda act bookkeeping") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_act<CD>(cuda_test::ctx());
  }
  TEST_CASE("cuda optimizers") {
    CUDA_TEST_REQUIRE_GPU();
    op_checks::check_optimizers<CD>(cuda_test::ctx());
  }
}

namespace {

std::vector<double> random_d(index_t n, std::uint64_t stream, double lo = -1, double hi = 1) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * etrm::uniform01({17, stream}, std::uint64_t(i));
  return v;
}

}  // namespace

TEST_SUITE("ops cuda double") {
  TEST_CASE("cuda double kernels against the reference") {
    CUDA_TEST_REQUIRE_GPU();
    auto& ctx = cuda_test::ctx();
    op_checks::on_device<CD> dev{ctx};
    etrm::context_t<etrm::reference_device> rc;

    // gemm, all transpose combinations, batched, beta != 0
    const index_t m = 29, n = 31, k = 45, batch = 2;
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        auto a = random_d(batch * m * k, 1), b = random_d(batch * k * n, 2), c = random_d(batch * m * n, 3);
        auto want = c;
        KR::gemm(rc, ta, tb, m, n, k, 0.5, a.data(), ta ? m : k, m * k, b.data(), tb ? k : n, k * n, -1.5, want.data(),
                 n, m * n, batch);
        auto da = dev.put(a), db = dev.put(b), dc = dev.put(c);
        KC::gemm(ctx, ta, tb, m, n, k, 0.5, da.data(), ta ? m : k, m * k, db.data(), tb ? k : n, k * n, -1.5, dc.data(),
                 n, m * n, batch);
        op_checks::expect_close(dev.get(dc), want, 1e-12, "double gemm");
      }

    const index_t rows = 23, cols = 301;
    auto x = random_d(rows * cols, 4, -3, 3), dy = random_d(rows * cols, 5);
    auto dx_ = dev.put(x), ddy = dev.put(dy);
    etrm::buffer<double, CD> y(rows * cols), g(rows * cols), r(rows);
    std::vector<double> wy(x.size()), wg(x.size()), wr(static_cast<std::size_t>(rows));
    KR::row_softmax(rc, rows, cols, x.data(), wy.data());
    KC::row_softmax(ctx, rows, cols, dx_.data(), y.data());
    op_checks::expect_close(dev.get(y), wy, 1e-12, "double softmax");
    KR::row_softmax_backward(rc, rows, cols, wy.data(), dy.data(), wg.data());
    KC::row_softmax_backward(ctx, rows, cols, y.data(), ddy.data(), g.data());
    op_checks::expect_close(dev.get(g), wg, 1e-11, "double softmax backward");
    KR::rms_norm(rc, rows, cols, 1e-5, x.data(), wy.data(), wr.data());
    KC::rms_norm(ctx, rows, cols, 1e-5, dx_.data(), y.data(), r.data());
    op_checks::expect_close(dev.get(y), wy, 1e-12, "double rms_norm");
    KR::rms_norm_backward(rc, rows, cols, wy.data(), wr.data(), dy.data(), wg.data());
    KC::rms_norm_backward(ctx, rows, cols, y.data(), r.data(), ddy.data(), g.data());
    op_checks::expect_close(dev.get(g), wg, 1e-11, "double rms_norm backward");
    // In place, as residual_norm_forward runs it.
    KC::copy_2d(ctx, rows, cols, dx_.data(), cols, y.data(), cols, 1.0);
    KC::rms_norm(ctx, rows, cols, 1e-5, y.data(), y.data(), r.data());
    KR::rms_norm(rc, rows, cols, 1e-5, x.data(), wy.data(), wr.data());
    op_checks::expect_close(dev.get(y), wy, 1e-12, "double rms_norm in place");

    // scatter-add with duplicates (double atomics)
    const index_t trows = 7, dim = 19, B = 3, L = 11;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(B * L));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int32_t((i * 3) % trows);
    auto src = random_d(B * L * dim, 6), table = random_d(trows * dim, 7);
    auto dids = dev.put(ids);
    auto dsrc = dev.put(src), dtable = dev.put(table);
    KR::scatter_add_rows(rc, B, L, dim, ids.data(), src.data(), L * dim, 0.75, table.data());
    KC::scatter_add_rows(ctx, B, L, dim, dids.data(), dsrc.data(), L * dim, 0.75, dtable.data());
    op_checks::expect_close(dev.get(dtable), table, 1e-12, "double scatter_add_rows");

    // cross-entropy (stablemax) in double
    const index_t V = 9;
    auto logits = random_d(B * L * V, 8, -4, 4);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(B * L));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = i % 5 == 2 ? -100 : std::int32_t(i % V);
    std::vector<double> loss(B), grad(logits.size());
    std::vector<std::int32_t> cnt(B), cor(B);
    KR::cross_entropy(rc, B, L, V, L * V, etrm::ops::loss_kind::stablemax, logits.data(), labels.data(), 0.5,
                      loss.data(), cnt.data(), cor.data(), grad.data(), nullptr);
    auto dlog = dev.put(logits);
    auto dlab = dev.put(labels);
    etrm::buffer<double, CD> gl(B), gg(B * L * V);
    etrm::buffer<std::int32_t, CD> gc(B), gk(B);
    KC::cross_entropy(ctx, B, L, V, L * V, etrm::ops::loss_kind::stablemax, dlog.data(), dlab.data(), 0.5, gl.data(),
                      gc.data(), gk.data(), gg.data(), nullptr);
    op_checks::expect_close(dev.get(gl), loss, 1e-12, "double cross_entropy");
    op_checks::expect_close(dev.get(gg), grad, 1e-12, "double cross_entropy grad");
    CHECK(dev.get(gc) == cnt);
    CHECK(dev.get(gk) == cor);

    // adam_atan2 in double
    const index_t np = 1001;
    auto p = random_d(np, 9), gr = random_d(np, 10), m1 = random_d(np, 11, -0.1, 0.1), v1 = random_d(np, 12, 0, 0.1);
    auto dp = dev.put(p), dgr = dev.put(gr), dm = dev.put(m1), dv = dev.put(v1);
    KR::adam_atan2(rc, np, p.data(), gr.data(), m1.data(), v1.data(), 1e-2, 0.1, 0.9, 0.95, 0.19, 0.0975);
    KC::adam_atan2(ctx, np, dp.data(), dgr.data(), dm.data(), dv.data(), 1e-2, 0.1, 0.9, 0.95, 0.19, 0.0975);
    op_checks::expect_close(dev.get(dp), p, 1e-12, "double adam_atan2");

    // mlp_t layout: transpose in double, odd sizes
    const index_t tb = 3, tr = 37, tc = 70;
    auto tx = random_d(tb * tr * tc, 13);
    std::vector<double> ty(tx.size());
    KR::transpose(rc, tb, tr, tc, tx.data(), ty.data());
    auto dtx = dev.put(tx);
    etrm::buffer<double, CD> dty(tb * tr * tc);
    KC::transpose(ctx, tb, tr, tc, dtx.data(), dty.data());
    op_checks::expect_close(dev.get(dty), ty, 0, "double transpose");
  }
}

TEST_SUITE("ops cuda gemm precision") {
  TEST_CASE("cuda gemm tf32 and bf16 modes stay close to fp32") {
    CUDA_TEST_REQUIRE_GPU();
    using etrm::backend::cuda::gemm_precision;
    auto& ctx = cuda_test::ctx();
    op_checks::on_device<CD> dev{ctx};
    const index_t m = 67, n = 45, k = 129, batch = 3;
    for (auto mode : {gemm_precision::tf32, gemm_precision::bf16}) {
      cuda_test::precision_guard guard(mode);
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
          auto a = op_checks::random_vec(batch * m * k, 80), b = op_checks::random_vec(batch * k * n, 81),
               c = op_checks::random_vec(batch * m * n, 82);
          auto want = c;
          KR::gemm(op_checks::ref_ctx, ta, tb, m, n, k, 0.7f, a.data(), ta ? m : k, m * k, b.data(), tb ? k : n, k * n,
                   0.3f, want.data(), n, m * n, batch);
          auto da = dev.put(a), db = dev.put(b), dc = dev.put(c);
          KC::gemm(ctx, ta, tb, m, n, k, 0.7f, da.data(), ta ? m : k, m * k, db.data(), tb ? k : n, k * n, 0.3f,
                   dc.data(), n, m * n, batch);
          INFO("mode " << etrm::to_string(mode) << " ta " << ta << " tb " << tb);
          op_checks::expect_close(dev.get(dc), want, mode == gemm_precision::tf32 ? 5e-3 : 2e-2, "reduced gemm");
          // A shared (stride 0) right operand and beta = 0 into uninitialised memory.
          std::vector<float> want1(static_cast<std::size_t>(batch * m * n));
          KR::gemm(op_checks::ref_ctx, ta, tb, m, n, k, 1.f, a.data(), ta ? m : k, m * k, b.data(), tb ? k : n, 0, 0.f,
                   want1.data(), n, m * n, batch);
          etrm::buffer<float, CD> dc1(batch * m * n);
          KC::fill(ctx, batch * m * n, std::nanf(""), dc1.data());
          KC::gemm(ctx, ta, tb, m, n, k, 1.f, da.data(), ta ? m : k, m * k, db.data(), tb ? k : n, 0, 0.f, dc1.data(), n,
                   m * n, batch);
          op_checks::expect_close(dev.get(dc1), want1, mode == gemm_precision::tf32 ? 5e-3 : 2e-2, "reduced gemm beta 0");
        }
    }
    CHECK(ctx.precision() == gemm_precision::fp32);
  }

  TEST_CASE("cuda gemm beta 0 ignores NaN in C, k = 0 scales C") {
    CUDA_TEST_REQUIRE_GPU();
    auto& ctx = cuda_test::ctx();
    op_checks::on_device<CD> dev{ctx};
    const index_t m = 5, n = 7, k = 3;
    auto a = op_checks::random_vec(m * k, 90), b = op_checks::random_vec(k * n, 91);
    std::vector<float> want(static_cast<std::size_t>(m * n));
    KR::gemm(op_checks::ref_ctx, false, false, m, n, k, 1.f, a.data(), k, 0, b.data(), n, 0, 0.f, want.data(), n, 0, 1);
    auto da = dev.put(a), db = dev.put(b);
    etrm::buffer<float, CD> dc(m * n);
    KC::fill(ctx, m * n, std::nanf(""), dc.data());
    KC::gemm(ctx, false, false, m, n, k, 1.f, da.data(), k, 0, db.data(), n, 0, 0.f, dc.data(), n, 0, 1);
    op_checks::expect_close(dev.get(dc), want, 1e-5, "gemm beta 0");
    KC::gemm(ctx, false, false, m, n, 0, 1.f, da.data(), 1, 0, db.data(), n, 0, 2.f, dc.data(), n, 0, 1);
    for (auto& w : want) w *= 2.f;
    op_checks::expect_close(dev.get(dc), want, 1e-6, "gemm k = 0");
  }
}

TEST_SUITE("cuda memory and errors") {
  TEST_CASE("cuda workspace hands out device memory and folds overflow") {
    CUDA_TEST_REQUIRE_GPU();
    auto& ctx = cuda_test::ctx();
    etrm::workspace<CD> ws;
    for (int step = 0; step < 3; ++step) {
      ws.reset();
      float* a = ws.take<float>(1000);
      std::int32_t* b = ws.take<std::int32_t>(77);
      KC::fill(ctx, 1000, 1.5f, a);
      KC::fill(ctx, 77, std::int32_t(3), b);
      const auto ha = etrm::to_host<CD>(ctx, a, 1000);
      const auto hb = etrm::to_host<CD>(ctx, b, 77);
      CHECK(ha[999] == 1.5f);
      CHECK(hb[76] == 3);
      CHECK(reinterpret_cast<std::uintptr_t>(b) % 256 == 0);
    }
    CHECK(ws.allocations() == 3);  // two overflow blocks in step 0, one folded block after
  }

  TEST_CASE("cuda errors become cuda_error with the call site") {
    CUDA_TEST_REQUIRE_GPU();
    // An impossible allocation.
    CHECK_THROWS_AS(etrm::device_traits<CD>::allocate(std::size_t(1) << 60), etrm::cuda_error);
    // The error was cleared: the context still works.
    auto& ctx = cuda_test::ctx();
    etrm::buffer<float, CD> x(10);
    KC::fill(ctx, 10, 2.f, x.data());
    CHECK(etrm::to_host<CD>(ctx, x.data(), 10)[9] == 2.f);
    try {
      ETRM_CUDA_CHECK(cudaSetDevice(1 << 20));
      FAIL("no exception");
    } catch (const etrm::cuda_error& e) {
      const std::string what = e.what();
      CHECK(what.find("cudaSetDevice(1 << 20)") != std::string::npos);
      CHECK(what.find("ops_cuda_test.cu") != std::string::npos);
    }
  }
}
