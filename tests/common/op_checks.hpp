// SPDX-License-Identifier: Apache-2.0
// Every primitive of a backend D checked against the reference backend on odd shapes (not
// multiples of any tile size). Included by the CPU unit tests and the CUDA tests, so this
// header must not pull in Eigen: it knows only core, the reference backend and doctest.
#pragma once

#include <doctest/doctest.h>
#include <etrm/backend/reference/reference.hpp>
#include <etrm/core/rng.hpp>
#include <etrm/core/tensor.hpp>
#include <etrm/data/cell_neighbours.hpp>
#include <etrm/ops/functors.hpp>
#include <etrm/testing/compare.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace op_checks {

using etrm::index_t;
inline std::size_t sz(index_t n) { return static_cast<std::size_t>(n); }
using ref_k = etrm::kernels<etrm::reference_device>;
inline etrm::context_t<etrm::reference_device> ref_ctx;

inline std::vector<float> random_vec(index_t n, std::uint64_t stream, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(sz(n));
  for (index_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * float(etrm::uniform01({7, stream}, std::uint64_t(i)));
  return v;
}

template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, double tol, const char* what) {
  // Errors are relative to the oracle's typical magnitude, so near-zero entries of a sum
  // of many terms do not dominate.
  double ss = 0;
  for (const T& w : want) ss += double(w) * double(w);
  const double scale = want.empty() ? 1.0 : std::sqrt(ss / double(want.size()));
  const auto c = etrm::testing::compare(got, want, std::max(1e-3, scale));
  INFO(what << ": max_rel " << c.max_rel << " at " << c.worst << ", max_abs " << c.max_abs);
  CHECK(c.finite);
  CHECK(c.max_rel <= tol);
}

// Device copies of host vectors, and back.
template <class D>
struct on_device {
  etrm::context_t<D>& ctx;
  template <class T>
  etrm::buffer<T, D> put(const std::vector<T>& v) {
    return etrm::make_buffer<T, D>(ctx, v);
  }
  template <class T>
  std::vector<T> get(const etrm::buffer<T, D>& b) {
    return etrm::to_host<D>(ctx, b.data(), b.size());
  }
};

template <class D>
void check_gemm(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t m = 37, n = 23, k = 51, batch = 3;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      auto a = random_vec(batch * m * k, 1), b = random_vec(batch * k * n, 2), c = random_vec(batch * m * n, 3);
      const index_t lda = ta ? m : k, ldb = tb ? k : n;
      auto want = c;
      ref_k::gemm(ref_ctx, ta, tb, m, n, k, 0.7f, a.data(), lda, m * k, b.data(), ldb, k * n, 0.3f, want.data(), n,
                  m * n, batch);
      auto da = dev.put(a), db = dev.put(b), dc = dev.put(c);
      K::gemm(ctx, ta, tb, m, n, k, 0.7f, da.data(), lda, m * k, db.data(), ldb, k * n, 0.3f, dc.data(), n, m * n,
              batch);
      expect_close(dev.get(dc), want, 1e-4, "gemm batched");
      // A single matrix large enough for the backend's parallel split, beta = 0.
      const index_t M = 301, N = 97, Kk = 129;
      auto a1 = random_vec(M * Kk, 4), b1 = random_vec(Kk * N, 5);
      std::vector<float> want1(sz(M * N));
      ref_k::gemm(ref_ctx, ta, tb, M, N, Kk, 1.f, a1.data(), ta ? M : Kk, 0, b1.data(), tb ? Kk : N, 0, 0.f,
                  want1.data(), N, 0, 1);
      auto da1 = dev.put(a1), db1 = dev.put(b1);
      etrm::buffer<float, D> dc1(M * N);
      K::gemm(ctx, ta, tb, M, N, Kk, 1.f, da1.data(), ta ? M : Kk, 0, db1.data(), tb ? Kk : N, 0, 0.f, dc1.data(), N,
              0, 1);
      expect_close(dev.get(dc1), want1, 1e-4, "gemm single");
      // A wide one (n > m: the CPU backend splits it by column panels), beta ≠ 0.
      const index_t Mw = 45, Nw = 230, Kw = 67;
      auto a2 = random_vec(Mw * Kw, 6), b2 = random_vec(Kw * Nw, 7), c2 = random_vec(Mw * Nw, 8);
      auto want2 = c2;
      ref_k::gemm(ref_ctx, ta, tb, Mw, Nw, Kw, 1.f, a2.data(), ta ? Mw : Kw, 0, b2.data(), tb ? Kw : Nw, 0, 0.5f,
                  want2.data(), Nw, 0, 1);
      auto da2 = dev.put(a2), db2 = dev.put(b2), dc2 = dev.put(c2);
      K::gemm(ctx, ta, tb, Mw, Nw, Kw, 1.f, da2.data(), ta ? Mw : Kw, 0, db2.data(), tb ? Kw : Nw, 0, 0.5f, dc2.data(),
              Nw, 0, 1);
      expect_close(dev.get(dc2), want2, 1e-4, "gemm wide");
      // Batch stride 0: the same A for every matrix of the batch, beta = 1.
      auto want3 = c;
      ref_k::gemm(ref_ctx, ta, tb, m, n, k, 1.f, a.data(), lda, 0, b.data(), ldb, k * n, 1.f, want3.data(), n, m * n,
                  batch);
      auto dc3 = dev.put(c);
      K::gemm(ctx, ta, tb, m, n, k, 1.f, da.data(), lda, 0, db.data(), ldb, k * n, 1.f, dc3.data(), n, m * n, batch);
      expect_close(dev.get(dc3), want3, 1e-4, "gemm broadcast A");
    }
}

template <class D>
void check_elementwise(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t n = 10007;
  auto a = random_vec(n, 10), b = random_vec(n, 11), c = random_vec(n, 12);
  auto da = dev.put(a), db = dev.put(b), dc = dev.put(c);
  etrm::buffer<float, D> out(n);
  std::vector<float> want(a.size());
  ref_k::map(ref_ctx, n, etrm::ops::add3_fn<float>{}, want.data(), a.data(), b.data(), c.data());
  K::map(ctx, n, etrm::ops::add3_fn<float>{}, out.data(), da.data(), db.data(), dc.data());
  expect_close(dev.get(out), want, 1e-6, "map add3");
  ref_k::map(ref_ctx, n, etrm::ops::axpy_fn<float>{-0.25f}, want.data(), a.data(), b.data());
  K::map(ctx, n, etrm::ops::axpy_fn<float>{-0.25f}, out.data(), da.data(), db.data());
  expect_close(dev.get(out), want, 1e-6, "map axpy");
  K::fill(ctx, n, 2.5f, out.data());
  for (float v : dev.get(out)) REQUIRE(v == 2.5f);
  // for_each with an index functor: the encoder's neighbour ids of 37 random 7×7 canvases
  // (tokens 0..11, so black, PAD and EOS all occur), adjacent and along rays, as tokens and as
  // relations to the cell.
  const index_t N = 37, G = 7, ids = 8 * N * G * G;
  std::vector<std::int32_t> grids(sz(N * G * G));
  for (std::size_t i = 0; i < grids.size(); ++i) grids[i] = std::int32_t(etrm::uniform_index({5, 3}, i, 12));
  auto dgrids = dev.put(grids);
  etrm::buffer<std::int32_t, D> dids(ids);
  std::vector<std::int32_t> want_ids(sz(ids));
  for (const bool rays : {false, true})
    for (const bool relations : {false, true}) {
      INFO("rays " << rays << ", relations " << relations);
      const etrm::data::neighbour_kind kind{rays, relations};
      ref_k::for_each(ref_ctx, ids, etrm::data::neighbour_tokens{grids.data(), N, int(G), kind, want_ids.data()});
      K::for_each(ctx, ids, etrm::data::neighbour_tokens{dgrids.data(), N, int(G), kind, dids.data()});
      CHECK(dev.get(dids) == want_ids);
    }
}

template <class D>
void check_rows(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t rows = 77, cols = 131;
  auto x = random_vec(rows * cols, 20, -3.f, 3.f), dy = random_vec(rows * cols, 21);
  auto dx_ = dev.put(x), ddy = dev.put(dy);
  etrm::buffer<float, D> y(rows * cols), dx(rows * cols), r(rows);
  std::vector<float> wy(x.size()), wdx(x.size()), wr(sz(rows));

  ref_k::row_softmax(ref_ctx, rows, cols, x.data(), wy.data());
  K::row_softmax(ctx, rows, cols, dx_.data(), y.data());
  expect_close(dev.get(y), wy, 1e-5, "row_softmax");
  ref_k::row_softmax_backward(ref_ctx, rows, cols, wy.data(), dy.data(), wdx.data());
  K::row_softmax_backward(ctx, rows, cols, y.data(), ddy.data(), dx.data());
  expect_close(dev.get(dx), wdx, 1e-4, "row_softmax_backward");

  // A mask bias per group of 7 rows (rows = 11 groups × 7).
  auto bias = random_vec((rows / 7) * cols, 23, -2.f, 0.f);
  auto dbias = dev.put(bias);
  auto xb = x;
  auto dxb = dev.put(x);
  ref_k::add_row_bias(ref_ctx, rows, cols, 7, bias.data(), xb.data());
  K::add_row_bias(ctx, rows, cols, 7, dbias.data(), dxb.data());
  expect_close(dev.get(dxb), xb, 1e-6, "add_row_bias");

  for (auto op : {etrm::ops::reduce_op::sum, etrm::ops::reduce_op::sum_squares, etrm::ops::reduce_op::max}) {
    ref_k::row_reduce(ref_ctx, rows, cols, op, x.data(), wr.data());
    K::row_reduce(ctx, rows, cols, op, dx_.data(), r.data());
    expect_close(dev.get(r), wr, 1e-4, "row_reduce");
  }
  std::vector<float> wc = random_vec(cols, 22);
  auto dcs = dev.put(wc);
  ref_k::column_sum_add(ref_ctx, rows, cols, x.data(), wc.data());
  K::column_sum_add(ctx, rows, cols, dx_.data(), dcs.data());
  expect_close(dev.get(dcs), wc, 1e-4, "column_sum_add");

  ref_k::rms_norm(ref_ctx, rows, cols, 1e-5f, x.data(), wy.data(), wr.data());
  K::rms_norm(ctx, rows, cols, 1e-5f, dx_.data(), y.data(), r.data());
  expect_close(dev.get(y), wy, 1e-5, "rms_norm");
  expect_close(dev.get(r), wr, 1e-5, "rms_norm rstd");
  ref_k::rms_norm_backward(ref_ctx, rows, cols, wy.data(), wr.data(), dy.data(), wdx.data());
  K::rms_norm_backward(ctx, rows, cols, y.data(), r.data(), ddy.data(), dx.data());
  expect_close(dev.get(dx), wdx, 1e-4, "rms_norm_backward");

  const index_t inter = cols;  // gu is [rows/..., 2·inter]: reuse x as [rows/2.., 2·cols]
  const index_t r2 = rows / 2;
  etrm::buffer<float, D> h(r2 * inter), dgu(r2 * 2 * inter);
  std::vector<float> wh(sz(r2 * inter)), wdgu(sz(r2 * 2 * inter));
  ref_k::swiglu(ref_ctx, r2, inter, x.data(), wh.data());
  K::swiglu(ctx, r2, inter, dx_.data(), h.data());
  expect_close(dev.get(h), wh, 1e-5, "swiglu");
  ref_k::swiglu_backward(ref_ctx, r2, inter, x.data(), dy.data(), wdgu.data());
  K::swiglu_backward(ctx, r2, inter, dx_.data(), ddy.data(), dgu.data());
  expect_close(dev.get(dgu), wdgu, 1e-5, "swiglu_backward");
}

template <class D>
void check_layout(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t B = 3, S = 19, H = 5, d = 14;
  auto qkv = random_vec(B * S * 3 * H * d, 30);
  std::vector<float> cos(sz(S * d)), sin(sz(S * d));
  for (index_t s = 0; s < S; ++s)
    for (index_t i = 0; i < d; ++i) {
      const double f = s * std::pow(10000.0, -2.0 * double(i % (d / 2)) / double(d));
      cos[s * d + i] = float(std::cos(f));
      sin[s * d + i] = float(std::sin(f));
    }
  const index_t n = B * H * S * d;
  std::vector<float> q(n), k(n), v(n), back(qkv.size());
  auto dqkv = dev.put(qkv), dcos = dev.put(cos), dsin = dev.put(sin);
  etrm::buffer<float, D> gq(n), gk(n), gv(n), gback(index_t(qkv.size()));
  for (bool rope : {false, true}) {
    const float* c = rope ? cos.data() : nullptr;
    const float* sn = rope ? sin.data() : nullptr;
    ref_k::split_heads_rope(ref_ctx, B, S, H, d, qkv.data(), c, sn, q.data(), k.data(), v.data());
    K::split_heads_rope(ctx, B, S, H, d, dqkv.data(), rope ? dcos.data() : nullptr, rope ? dsin.data() : nullptr,
                        gq.data(), gk.data(), gv.data());
    expect_close(dev.get(gq), q, 1e-5, "split q");
    expect_close(dev.get(gk), k, 1e-5, "split k");
    expect_close(dev.get(gv), v, 1e-6, "split v");
    // The inverse rotation undoes the forward one: merging the split heads returns qkv.
    ref_k::merge_heads_rope_backward(ref_ctx, B, S, H, d, q.data(), k.data(), v.data(), c, sn, back.data());
    expect_close(back, qkv, 1e-5, "rope round trip");
    K::merge_heads_rope_backward(ctx, B, S, H, d, gq.data(), gk.data(), gv.data(), rope ? dcos.data() : nullptr,
                                 rope ? dsin.data() : nullptr, gback.data());
    expect_close(dev.get(gback), qkv, 1e-5, "merge");
  }
  std::vector<float> t(qkv.size());
  etrm::buffer<float, D> gt(index_t(qkv.size()));
  ref_k::transpose(ref_ctx, B, S, 3 * H * d, qkv.data(), t.data());
  K::transpose(ctx, B, S, 3 * H * d, dqkv.data(), gt.data());
  expect_close(dev.get(gt), t, 0, "transpose");
  // A strided window: rows of 3·H·d − 5 values out of rows of 3·H·d, into rows of 3·H·d + 2.
  const index_t rows = B * S, w = 3 * H * d;
  std::vector<float> win(sz(rows * (w + 2)), 0.f);
  etrm::buffer<float, D> gwin(rows * (w + 2));
  K::fill(ctx, rows * (w + 2), 0.f, gwin.data());
  ref_k::copy_2d(ref_ctx, rows, w - 5, qkv.data(), w, win.data(), w + 2, -2.f);
  K::copy_2d(ctx, rows, w - 5, dqkv.data(), w, gwin.data(), w + 2, -2.f);
  expect_close(dev.get(gwin), win, 0, "copy_2d");
  ref_k::permute_0213(ref_ctx, B, S, 3 * H, d, qkv.data(), t.data());
  K::permute_0213(ctx, B, S, 3 * H, d, dqkv.data(), gt.data());
  expect_close(dev.get(gt), t, 0, "permute_0213");
}

template <class D>
void check_embedding(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t rows = 13, dim = 37, batch = 4, n = 9, stride = 11 * dim;
  auto table = random_vec(rows * dim, 40);
  std::vector<std::int32_t> ids(sz(batch * n));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int32_t((i * 5) % 7);  // duplicates on purpose
  std::vector<float> out(sz(batch * stride), 0.f);
  auto dtable = dev.put(table), dout = dev.put(out);
  auto dids = dev.put(ids);
  ref_k::gather_rows(ref_ctx, batch, n, dim, ids.data(), table.data(), 1.5f, out.data(), stride);
  K::gather_rows(ctx, batch, n, dim, dids.data(), dtable.data(), 1.5f, dout.data(), stride);
  expect_close(dev.get(dout), out, 1e-6, "gather_rows");
  auto grad = random_vec(rows * dim, 41);
  auto dgrad = dev.put(grad);
  ref_k::scatter_add_rows(ref_ctx, batch, n, dim, ids.data(), out.data(), stride, 0.5f, grad.data());
  K::scatter_add_rows(ctx, batch, n, dim, dids.data(), dout.data(), stride, 0.5f, dgrad.data());
  expect_close(dev.get(dgrad), grad, 1e-5, "scatter_add_rows");
}

template <class D>
void check_losses(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t B = 5, L = 23, V = 11;
  auto logits = random_vec(B * L * V, 50, -4.f, 4.f);
  std::vector<std::int32_t> labels(sz(B * L));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = (i % 7 == 3) ? -100 : std::int32_t((i * 3) % V);
  for (index_t l = 0; l < L; ++l) labels[sz(4 * L + l)] = -100;  // a sequence with no valid token
  auto dlog = dev.put(logits);
  auto dlab = dev.put(labels);
  for (auto kind : {etrm::ops::loss_kind::stablemax, etrm::ops::loss_kind::softmax}) {
    std::vector<float> loss(B), grad(logits.size());
    std::vector<std::int32_t> count(B), correct(B), pred(sz(B * L));
    ref_k::cross_entropy(ref_ctx, B, L, V, L * V, kind, logits.data(), labels.data(), 0.25f, loss.data(), count.data(),
                         correct.data(), grad.data(), pred.data());
    etrm::buffer<float, D> gl(B), gg(index_t(logits.size()));
    etrm::buffer<std::int32_t, D> gc(B), gk(B), gp(B * L);
    K::cross_entropy(ctx, B, L, V, L * V, kind, dlog.data(), dlab.data(), 0.25f, gl.data(), gc.data(), gk.data(), gg.data(),
                     gp.data());
    expect_close(dev.get(gl), loss, 1e-5, "cross_entropy loss");
    expect_close(dev.get(gg), grad, 1e-4, "cross_entropy grad");
    CHECK(dev.get(gc) == count);
    CHECK(dev.get(gk) == correct);
    CHECK(dev.get(gp) == pred);
    CHECK(count[4] == 0);
  }
  auto q = random_vec(2 * B, 51, -3.f, 3.f);
  std::vector<std::int32_t> target = {1, 0, 1, 1, 0};
  std::vector<float> loss(B), dq(2 * B);
  ref_k::halt_loss(ref_ctx, B, q.data(), target.data(), 0.5f, loss.data(), dq.data());
  auto dqd = dev.put(q);
  auto dt = dev.put(target);
  etrm::buffer<float, D> gl(B), gdq(2 * B);
  K::halt_loss(ctx, B, dqd.data(), dt.data(), 0.5f, gl.data(), gdq.data());
  expect_close(dev.get(gl), loss, 1e-5, "halt_loss");
  expect_close(dev.get(gdq), dq, 1e-5, "halt_loss grad");
}

template <class D>
void check_act(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t B = 64, S = 5, Dm = 7;
  auto zh = random_vec(B * S * Dm, 60), zl = random_vec(B * S * Dm, 61), hi = random_vec(Dm, 62),
       li = random_vec(Dm, 63);
  std::vector<std::uint8_t> flag(B);
  for (index_t b = 0; b < B; ++b) flag[b] = std::uint8_t(b % 3 == 0);
  auto dzh = dev.put(zh), dzl = dev.put(zl), dhi = dev.put(hi), dli = dev.put(li);
  auto dflag = dev.put(flag);
  ref_k::reset_rows(ref_ctx, B, S, Dm, flag.data(), hi.data(), li.data(), zh.data(), zl.data());
  K::reset_rows(ctx, B, S, Dm, dflag.data(), dhi.data(), dli.data(), dzh.data(), dzl.data());
  expect_close(dev.get(dzh), zh, 0, "reset_rows h");
  expect_close(dev.get(dzl), zl, 0, "reset_rows l");

  std::vector<std::int32_t> cur(sz(B * 3), 1), fresh(sz(B * 3), 2);
  auto dcur = dev.put(cur);
  auto dfresh = dev.put(fresh);
  ref_k::select_rows(ref_ctx, B, 3, flag.data(), fresh.data(), cur.data());
  K::select_rows(ctx, B, 3, dflag.data(), dfresh.data(), dcur.data());
  CHECK(dev.get(dcur) == cur);

  auto q = random_vec(2 * B, 64, -1.f, 1.f);
  std::vector<std::int32_t> steps(B);
  for (index_t b = 0; b < B; ++b) steps[b] = std::int32_t(b % 16);
  std::vector<std::uint8_t> halted(B, 0);
  auto dq = dev.put(q);
  auto dsteps = dev.put(steps);
  auto dhalted = dev.put(halted);
  for (std::uint64_t draw = 0; draw < 3; ++draw) {
    ref_k::act_update(ref_ctx, B, 16, true, false, 0.5, {9, 1}, draw, q.data(), steps.data(), halted.data());
    K::act_update(ctx, B, 16, true, false, 0.5, {9, 1}, draw, dq.data(), dsteps.data(), dhalted.data());
    CHECK(dev.get(dsteps) == steps);
    CHECK(dev.get(dhalted) == halted);
  }
}

template <class D>
void check_optimizers(etrm::context_t<D>& ctx) {
  using K = etrm::kernels<D>;
  on_device<D> dev{ctx};
  const index_t n = 5003;
  auto p = random_vec(n, 70), g = random_vec(n, 71), m = random_vec(n, 72, -0.1f, 0.1f),
       v = random_vec(n, 73, 0.f, 0.1f);
  auto dp = dev.put(p), dg = dev.put(g), dm = dev.put(m), dv = dev.put(v);
  ref_k::adam_atan2(ref_ctx, n, p.data(), g.data(), m.data(), v.data(), 1e-2f, 0.1f, 0.9f, 0.95f, 0.19f, 0.0975f);
  K::adam_atan2(ctx, n, dp.data(), dg.data(), dm.data(), dv.data(), 1e-2f, 0.1f, 0.9f, 0.95f, 0.19f, 0.0975f);
  expect_close(dev.get(dp), p, 1e-5, "adam_atan2 p");
  expect_close(dev.get(dm), m, 1e-5, "adam_atan2 m");
  expect_close(dev.get(dv), v, 1e-5, "adam_atan2 v");
  ref_k::adamw(ref_ctx, n, p.data(), g.data(), m.data(), v.data(), 1e-2f, 0.1f, 0.9f, 0.95f, 0.19f, 0.0975f, 1e-8f);
  K::adamw(ctx, n, dp.data(), dg.data(), dm.data(), dv.data(), 1e-2f, 0.1f, 0.9f, 0.95f, 0.19f, 0.0975f, 1e-8f);
  expect_close(dev.get(dp), p, 1e-4, "adamw p");
  auto shadow = random_vec(n, 74);
  auto ds = dev.put(shadow);
  ref_k::ema(ref_ctx, n, p.data(), shadow.data(), 0.999f);
  K::ema(ctx, n, dp.data(), ds.data(), 0.999f);
  expect_close(dev.get(ds), shadow, 1e-5, "ema");

  const index_t rows = 9, dim = 33, B = 6;
  auto table = random_vec(rows * dim, 75), grad = random_vec(B * dim, 76);
  std::vector<std::int32_t> ids = {2, 5, 2, 8, 0, 5};
  auto dt = dev.put(table), dgr = dev.put(grad);
  auto di = dev.put(ids);
  ref_k::sign_sgd_rows(ref_ctx, B, dim, ids.data(), grad.data(), table.data(), 0.01f, 0.1f);
  K::sign_sgd_rows(ctx, B, dim, di.data(), dgr.data(), dt.data(), 0.01f, 0.1f);
  expect_close(dev.get(dt), table, 1e-6, "sign_sgd_rows");
}

}  // namespace op_checks
