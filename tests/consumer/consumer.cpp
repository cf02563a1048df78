// A downstream program: one GEMM on the CPU backend, checked against the reference backend.
#include <etrm/etrm.hpp>

#include <cmath>
#include <cstdio>

int main() {
  etrm::context_t<etrm::cpu_device> cpu(1);
  etrm::context_t<etrm::reference_device> ref;
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4], r[4];
  etrm::kernels<etrm::cpu_device>::gemm(cpu, false, false, 2, 2, 3, 1.f, a, 3, 0, b, 2, 0, 0.f, c, 2, 0, 1);
  etrm::kernels<etrm::reference_device>::gemm(ref, false, false, 2, 2, 3, 1.f, a, 3, 0, b, 2, 0, 0.f, r, 2, 0, 1);
  for (int i = 0; i < 4; ++i)
    if (std::abs(c[i] - r[i]) > 1e-6f) return 1;
  std::printf("etrm %d.%d consumer ok\n", ETRM_VERSION_MAJOR, ETRM_VERSION_MINOR);
  return 0;
}
