// SPDX-License-Identifier: Apache-2.0
// The cost of the gradient all-reduce on this machine (docs/SCALING.md): the median time of
// mpi_communicator::all_reduce_sum over n floats, for n up to the parameter counts of the
// paper's presets, with the algorithm bandwidth (bytes / time) and the bus bandwidth of a ring
// (2 (N − 1) / N · bytes / time, what each link carries), and the same for a blocking
// MPI_Allreduce (the communicator starts MPI_Iallreduce and polls it against its deadline).
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
    std::printf("%d ranks\n%12s %10s %12s %10s %10s %16s\n", N, "floats", "MB", "median ms", "algo GB/s", "bus GB/s",
                "MPI_Allreduce ms");
  // The mean over ranks of the median of 20 calls (after 3 warm-up calls) of `reduce`.
  const auto time_ms = [&](auto&& reduce) {
    std::vector<double> ms;
    for (int rep = 0; rep < 23; ++rep) {
      comm.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      reduce();
      const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (rep >= 3) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    comm.all_reduce_sum(&median, 1);
    return median / N;
  };
  for (const std::size_t n : sizes) {
    std::vector<float> x(n, 1.0f);
    const double ours = time_ms([&] { comm.all_reduce_sum(x.data(), n); });
    const double plain =
        time_ms([&] { MPI_Allreduce(MPI_IN_PLACE, x.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); });
    const double bytes = 4.0 * double(n);
    if (comm.rank() == 0)
      std::printf("%12zu %10.2f %12.3f %10.2f %10.2f %16.3f\n", n, bytes / 1e6, ours, bytes / ours / 1e6,
                  2.0 * (N - 1) / N * bytes / ours / 1e6, plain);
  }
  return 0;
}
