// SPDX-License-Identifier: Apache-2.0
// Built against single_include/ only (no include/ on the path): the generated header must be
// self-contained and behave like the split headers.
#include <doctest/doctest.h>
#include <etrm/etrm.hpp>

#include <vector>

TEST_CASE("single header: CPU GEMM matches the reference backend") {
  etrm::context_t<etrm::cpu_device> cpu(2);
  etrm::context_t<etrm::reference_device> ref;
  const int m = 37, n = 29, k = 41;
  std::vector<float> a(m * k), b(k * n), c(m * n), r(m * n);
  for (int i = 0; i < m * k; ++i) a[i] = float((i * 7919) % 13) / 13.f - 0.5f;
  for (int i = 0; i < k * n; ++i) b[i] = float((i * 104729) % 17) / 17.f - 0.5f;
  etrm::kernels<etrm::cpu_device>::gemm(cpu, false, false, m, n, k, 1.f, a.data(), k, 0, b.data(), n, 0, 0.f,
                                        c.data(), n, 0, 1);
  etrm::kernels<etrm::reference_device>::gemm(ref, false, false, m, n, k, 1.f, a.data(), k, 0, b.data(), n, 0, 0.f,
                                              r.data(), n, 0, 1);
  for (int i = 0; i < m * n; ++i) CHECK(c[i] == doctest::Approx(r[i]).epsilon(1e-5));
}
