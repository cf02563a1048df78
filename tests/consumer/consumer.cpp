// A downstream program: one GEMM on the CPU backend, checked against the reference backend, on
// the GEMM provider that etrm's CMake package announced (ETRM_EXPECTED_GEMM_PROVIDER).
#include <etrm/etrm.hpp>

#include <cmath>
#include <cstdio>
#include <string_view>

int main() {
  etrm::context_t<etrm::cpu_device> cpu(1);
  if (std::string_view(etrm::to_string(cpu.provider())) != ETRM_EXPECTED_GEMM_PROVIDER) {
    std::printf("GEMM provider %s, the package announced %s\n", etrm::to_string(cpu.provider()),
                ETRM_EXPECTED_GEMM_PROVIDER);
    return 1;
  }
  etrm::context_t<etrm::reference_device> ref;
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4], r[4];
  etrm::kernels<etrm::cpu_device>::gemm(cpu, false, false, 2, 2, 3, 1.f, a, 3, 0, b, 2, 0, 0.f, c, 2, 0, 1);
  etrm::kernels<etrm::reference_device>::gemm(ref, false, false, 2, 2, 3, 1.f, a, 3, 0, b, 2, 0, 0.f, r, 2, 0, 1);
  for (int i = 0; i < 4; ++i)
    if (std::abs(c[i] - r[i]) > 1e-6f) return 1;
  std::printf("etrm %d.%d consumer ok, CPU GEMMs from %s\n", ETRM_VERSION_MAJOR, ETRM_VERSION_MINOR,
              etrm::to_string(cpu.provider()));
  return 0;
}
