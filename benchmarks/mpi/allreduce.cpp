// SPDX-License-Identifier: Apache-2.0
// The cost of the gradient all-reduce on this machine (docs/SCALING.md): the median time of
// mpi_communicator::all_reduce_sum over n floats, for n up to the parameter counts of the
// paper's presets, with the algorithm bandwidth (bytes / time) and the bus bandwidth of a ring
// (2 (N − 1) / N · bytes / time, what each link carries).
//
//   mpirun -np 2 build/release/benchmarks/etrm_bench_allreduce [n ...]
#include <etrm/parallel/mpi_communicator.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  etrm::mpi_environment env(&argc, &argv);
  etrm::mpi_communicator comm;
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  if (sizes.empty()) sizes = {1000, 10000, 100000, 1000000, 5000000, 7000000};
  const int N = comm.size();
  if (comm.rank() == 0)
    std::printf("%d ranks\n%12s %12s %12s %14s %14s\n", N, "floats", "MB", "median ms", "algo GB/s", "bus GB/s");
  for (const std::size_t n : sizes) {
    std::vector<float> x(n, 1.0f);
    std::vector<double> ms;
    for (int rep = 0; rep < 23; ++rep) {
      comm.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      comm.all_reduce_sum(x.data(), n);
      const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (rep >= 3) ms.push_back(t);  // three warm-up calls
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    comm.all_reduce_sum(&median, 1);
    median /= N;  // the mean of the ranks' medians
    const double bytes = 4.0 * double(n);
    if (comm.rank() == 0)
      std::printf("%12zu %12.2f %12.3f %14.2f %14.2f\n", n, bytes / 1e6, median, bytes / median / 1e6,
                  2.0 * (N - 1) / N * bytes / median / 1e6);
  }
  return 0;
}
