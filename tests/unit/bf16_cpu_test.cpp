// SPDX-License-Identifier: Apache-2.0
// bf16 GEMMs on the CPU backend: the native AVX-512 BF16 kernel (through the context's
// precision) and its portable emulation against the reference GEMM of bf16-rounded operands
// (the same products, only the summation order differs), whole training steps in bf16 against
// fp32, and tf32 refused. The bf16 overfit test is in overfit_test.cpp.
#include "../common/op_checks.hpp"
#include "../common/tiny_models.hpp"

#include <etrm/backend/cpu/cpu.hpp>

#include <stdexcept>

namespace {

using namespace op_checks;
using C = etrm::cpu_device;

std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = etrm::round_to_bf16(x);
  return v;
}

// Shapes crossing every block edge of the kernel: m above its row block, n off its column
// panel, k odd, above its depth block and k = 1; and a wide single GEMM (n > m) that the
// backend splits by column panels.
struct shape {
  index_t m, n, k, batch;
};
constexpr shape shapes[] = {{37, 23, 51, 3}, {301, 97, 600, 1}, {5, 70, 1, 2}, {130, 33, 257, 1}, {45, 230, 67, 1}};

// gemm(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c, batch)
template <class Gemm>
void check_bf16_gemm(Gemm&& gemm) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const shape s : shapes)
        for (const float beta : {0.f, 0.3f}) {
          INFO("ta " << ta << " tb " << tb << " m " << s.m << " n " << s.n << " k " << s.k << " beta " << beta);
          const index_t sa = s.m * s.k, sb = s.k * s.n, sc = s.m * s.n;
          const index_t lda = ta ? s.m : s.k, ldb = tb ? s.k : s.n;
          const auto a = random_vec(s.batch * sa, 1), b = random_vec(s.batch * sb, 2), c = random_vec(s.batch * sc, 3);
          auto want = c, want_fp32 = c, got = c;
          const auto ar = rounded(a), br = rounded(b);
          ref_k::gemm(ref_ctx, ta, tb, s.m, s.n, s.k, 0.7f, ar.data(), lda, sa, br.data(), ldb, sb, beta, want.data(),
                      s.n, sc, s.batch);
          ref_k::gemm(ref_ctx, ta, tb, s.m, s.n, s.k, 0.7f, a.data(), lda, sa, b.data(), ldb, sb, beta,
                      want_fp32.data(), s.n, sc, s.batch);
          gemm(bool(ta), bool(tb), s.m, s.n, s.k, 0.7f, a.data(), lda, sa, b.data(), ldb, sb, beta, got.data(), s.n, sc,
               s.batch);
          expect_close(got, want, 1e-5, "bf16 gemm vs reference on rounded operands");
          // Against full fp32 only the operand rounding (2^-9 relative) remains.
          expect_close(got, want_fp32, 2e-2, "bf16 gemm vs fp32");
          const auto d = etrm::testing::compare(got, want_fp32, 1.0);
          if (s.k > 1) CHECK(d.max_abs > 0);  // the operands really were rounded
        }
}

}  // namespace

TEST_SUITE("cpu bf16 gemm") {
  TEST_CASE("kernels<cpu_device>::gemm in a bf16 context, Eigen provider") {
    etrm::context_t<C> ctx(2, etrm::gemm_precision::bf16);
    ctx.set_gemm_provider(etrm::gemm_provider::eigen);
    MESSAGE("native AVX-512 BF16 kernel: "
            << std::string(etrm::backend::cpu::bf16::native_supported() ? "yes" : "no (emulated)"));
    check_bf16_gemm([&](auto... args) { etrm::kernels<C>::gemm(ctx, args...); });
  }
#if ETRM_WITH_DNNL
  TEST_CASE("kernels<cpu_device>::gemm in a bf16 context, oneDNN provider") {
    etrm::context_t<C> ctx(2, etrm::gemm_precision::bf16);
    ctx.set_gemm_provider(etrm::gemm_provider::onednn);
    using etrm::backend::cpu::onednn::operands;
    MESSAGE("oneDNN bf16 matmul at [301, 600]·[600, 97]: "
            << ctx.onednn->implementation(2, operands::bf16, {false, false, 301, 97, 600, 600, 97, 97, 0, 0, 0, 1, 0.7f, 0.f}));
    check_bf16_gemm([&](auto... args) { etrm::kernels<C>::gemm(ctx, args...); });
  }
  TEST_CASE("oneDNN with bf16 operands (its reference kernels where the processor lacks bf16)") {
    etrm::context_t<C> ctx(2, etrm::gemm_precision::bf16);
    ctx.set_gemm_provider(etrm::gemm_provider::onednn);
    ctx.onednn->accept_reference = true;  // so the bf16 copies reach oneDNN on every processor
    check_bf16_gemm([&](auto... args) { etrm::kernels<C>::gemm(ctx, args...); });
  }
#endif

  TEST_CASE("portable emulation") {
    check_bf16_gemm([](bool ta, bool tb, index_t m, index_t n, index_t k, float alpha, const float* a, index_t lda,
                       index_t sa, const float* b, index_t ldb, index_t sb, float beta, float* c, index_t ldc,
                       index_t sc, index_t batch) {
      for (index_t p = 0; p < batch; ++p)
        etrm::backend::cpu::bf16::gemm_rows_emulated(
            ta, tb, 0, m, n, k, alpha, a + p * sa, lda, b + p * sb, ldb, beta, c + p * sc, ldc,
            [](auto... args) { etrm::backend::cpu::gemm_rows<float>(args...); });
    });
  }

  TEST_CASE("tf32 is refused on the CPU; double GEMMs stay fp64 in a bf16 context") {
    CHECK_THROWS_AS(etrm::context_t<C>(1, etrm::gemm_precision::tf32), std::invalid_argument);
    etrm::context_t<C> ctx(1);
    CHECK_THROWS_AS(ctx.set_precision(etrm::gemm_precision::tf32), std::invalid_argument);
    CHECK(ctx.precision() == etrm::gemm_precision::fp32);
    ctx.set_precision(etrm::gemm_precision::bf16);
    std::vector<double> a{1 + 1e-9, 2}, b{3, 4 + 1e-9}, c(1);
    etrm::kernels<C>::gemm(ctx, false, false, 1, 1, 2, 1.0, a.data(), 2, 0, b.data(), 1, 0, 0.0, c.data(), 1, 0, 1);
    CHECK(c[0] == (1 + 1e-9) * 3 + 2 * (4 + 1e-9));
  }
}

TEST_SUITE("cpu bf16 training") {
  // Three training steps with bf16 GEMMs track the fp32 steps (losses within bf16 noise) and
  // are not the fp32 steps (the precision reaches the model's GEMMs).
  template <class Mixer>
  void check_bf16_steps(const etrm::trm_config& c) {
    using model_t = etrm::trm_model<C, float, Mixer, etrm::dynamic_recursion>;
    etrm::context_t<C> fp32(2), bf16(2, etrm::gemm_precision::bf16);
    model_t m32(fp32, c), m16(bf16, c);
    typename etrm::trainer<model_t>::options o;
    o.optimizer.warmup_steps = 1;
    o.optimizer.lr = 1e-3;
    etrm::trainer<model_t> t32(fp32, m32, 4, o), t16(bf16, m16, 4, o);
    for (std::uint64_t s = 0; s < 3; ++s) {
      const etrm::token_batch b = tiny::batch(c, 4, s);
      const auto a = t32.train_step(b), r = t16.train_step(b);
      CHECK(r.loss == doctest::Approx(a.loss).epsilon(2e-2));
      CHECK(r.loss != a.loss);
    }
  }
  TEST_CASE("attention") { check_bf16_steps<etrm::attention_mixer<C>>(tiny::config(false, 2, 2)); }
  TEST_CASE("mlp_t") { check_bf16_steps<etrm::token_mlp_mixer<C>>(tiny::config(true, 2, 2)); }
}
