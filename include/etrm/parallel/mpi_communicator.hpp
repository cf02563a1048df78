// SPDX-License-Identifier: Apache-2.0
// The communicator contract (parallel/communicator.hpp) over MPI, for host buffers (the CPU and
// reference backends). Link etrm::mpi. Every collective is started non-blocking and polled
// against a deadline: a rank whose peer died or hangs prints one line naming the collective and
// calls MPI_Abort, so every rank of the job ends with a non-zero status instead of waiting
// forever.
#pragma once

#include <etrm/parallel/communicator.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

ETRM_BEGIN_NAMESPACE

// MPI for the lifetime of the object: MPI_Init_thread unless MPI is initialised already, and
// MPI_Finalize at the end when this object initialised it. Only the thread that constructed it
// calls MPI (MPI_THREAD_FUNNELED).
class mpi_environment {
 public:
  mpi_environment(int* argc = nullptr, char*** argv = nullptr) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised) return;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw std::runtime_error("MPI_Init_thread failed");
    owner_ = true;
  }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;
  ~mpi_environment() {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owner_ && !finalised) MPI_Finalize();
  }

  // Whether this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx).
  static bool launched() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
      if (std::getenv(v)) return true;
    return false;
  }

 private:
  bool owner_ = false;
};

class mpi_communicator {
 public:
  // `timeout`: the longest any collective may wait for the other ranks before the job aborts.
  explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD, std::chrono::duration<double> timeout = std::chrono::minutes(10))
      : comm_(comm), timeout_(timeout) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  void set_timeout(std::chrono::duration<double> t) { timeout_ = t; }

  void broadcast(void* data, std::size_t bytes, int root) {
    for_chunks(bytes, [&](std::size_t at, int n) {
      MPI_Request r;
      check(MPI_Ibcast(static_cast<char*>(data) + at, n, MPI_BYTE, root, comm_, &r), "broadcast");
      wait(r, "broadcast");
    });
  }
  void all_reduce_sum(float* x, std::size_t n) { reduce(x, n, MPI_FLOAT); }
  void all_reduce_sum(double* x, std::size_t n) { reduce(x, n, MPI_DOUBLE); }
  void all_gather(const void* send, std::size_t bytes, void* recv) {
    if (bytes > std::size_t(INT_MAX)) throw std::invalid_argument("etrm mpi_communicator: all_gather of more than 2 GiB per rank");
    MPI_Request r;
    check(MPI_Iallgather(send, int(bytes), MPI_BYTE, recv, int(bytes), MPI_BYTE, comm_, &r), "all-gather");
    wait(r, "all-gather");
  }
  void barrier() {
    MPI_Request r;
    check(MPI_Ibarrier(comm_, &r), "barrier");
    wait(r, "barrier");
  }
  [[noreturn]] void abort(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(comm_, code);
    std::exit(code);
  }

 private:
  template <class T>
  void reduce(T* x, std::size_t n, MPI_Datatype type) {
    for_chunks(n, [&](std::size_t at, int count) {
      MPI_Request r;
      check(MPI_Iallreduce(MPI_IN_PLACE, x + at, count, type, MPI_SUM, comm_, &r), "all-reduce");
      wait(r, "all-reduce");
    });
  }
  // MPI counts are int: f(offset, count) over pieces of at most INT_MAX elements.
  template <class F>
  static void for_chunks(std::size_t n, F&& f) {
    for (std::size_t at = 0; at < n; at += std::size_t(INT_MAX)) f(at, int(std::min<std::size_t>(n - at, INT_MAX)));
  }
  void check(int rc, const char* what) {
    if (rc != MPI_SUCCESS) fail(std::string(what) + " failed (MPI error " + std::to_string(rc) + ")");
  }
  // Polls `r` until it completes or the deadline passes (then the whole job aborts). MPI moves
  // the data only inside its calls, so the poll spins for the first second, as MPI_Wait would;
  // a longer wait is a peer still busy (an evaluation, a checkpoint) and polls once a millisecond.
  void wait(MPI_Request& r, const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (unsigned polls = 0;; ++polls) {
      int done = 0;
      MPI_Test(&r, &done, MPI_STATUS_IGNORE);
      if (done) return;
      if ((polls & 255) != 0) continue;
      const auto waited = std::chrono::steady_clock::now() - start;
      if (waited > timeout_)
        fail(std::string(what) + " did not complete within " + std::to_string(int(timeout_.count())) +
             " s: another rank failed or hangs");
      if (waited > std::chrono::seconds(1)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  [[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "etrm: error: rank %d of %d: %s\n", rank_, size_, message.c_str());
    abort(1);
  }

  MPI_Comm comm_;
  std::chrono::duration<double> timeout_;
  int rank_ = 0, size_ = 1;
};
static_assert(communicator<mpi_communicator>);

ETRM_END_NAMESPACE
