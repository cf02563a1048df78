// SPDX-License-Identifier: Apache-2.0
// The communicator contract (parallel/communicator.hpp) over NCCL, for device buffers of the
// CUDA backend: one rank per GPU, collectives on the context's stream. The NCCL unique id is made
// by rank 0 and broadcast over MPI, as llm.c does, so the job is started by mpirun (or srun)
// like the CPU one. Link etrm::nccl. After each collective the stream is polled against a
// deadline; a failed or hung peer makes this rank abort NCCL and then the MPI job.
#pragma once

#include <etrm/backend/cuda/context.cuh>
#include <etrm/parallel/mpi_communicator.hpp>

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

ETRM_BEGIN_NAMESPACE

class nccl_communicator {
 public:
  // One rank per GPU: the context's device must be this rank's GPU (e.g. rank % GPUs per node).
  nccl_communicator(backend::cuda::context& ctx, mpi_communicator& bootstrap,
                    std::chrono::duration<double> timeout = std::chrono::minutes(10))
      : ctx_(ctx), bootstrap_(bootstrap), timeout_(timeout) {
    ncclUniqueId id;
    if (bootstrap_.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    bootstrap_.broadcast(&id, sizeof(id), 0);
    check(ncclCommInitRank(&comm_, bootstrap_.size(), id, bootstrap_.rank()), "ncclCommInitRank");
  }
  nccl_communicator(const nccl_communicator&) = delete;
  nccl_communicator& operator=(const nccl_communicator&) = delete;
  ~nccl_communicator() {
    if (comm_) (void)ncclCommDestroy(comm_);
  }

  int rank() const { return bootstrap_.rank(); }
  int size() const { return bootstrap_.size(); }

  void broadcast(void* data, std::size_t bytes, int root) {
    check(ncclBroadcast(data, data, bytes, ncclChar, root, comm_, ctx_.stream()), "broadcast");
    wait("broadcast");
  }
  void all_reduce_sum(float* x, std::size_t n) {
    check(ncclAllReduce(x, x, n, ncclFloat, ncclSum, comm_, ctx_.stream()), "all-reduce");
    wait("all-reduce");
  }
  void all_reduce_sum(double* x, std::size_t n) {
    check(ncclAllReduce(x, x, n, ncclDouble, ncclSum, comm_, ctx_.stream()), "all-reduce");
    wait("all-reduce");
  }
  void all_gather(const void* send, std::size_t bytes, void* recv) {
    check(ncclAllGather(send, recv, bytes, ncclChar, comm_, ctx_.stream()), "all-gather");
    wait("all-gather");
  }
  void barrier() { bootstrap_.barrier(); }
  [[noreturn]] void abort(int code) {
    if (comm_) (void)ncclCommAbort(comm_);
    comm_ = nullptr;
    bootstrap_.abort(code);
  }

 private:
  void check(ncclResult_t rc, const char* what) {
    if (rc != ncclSuccess && rc != ncclInProgress) fail(std::string(what) + ": " + ncclGetErrorString(rc));
  }
  // Waits for the stream, watching NCCL's asynchronous errors and the deadline.
  void wait(const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t s = cudaStreamQuery(ctx_.stream());
      if (s == cudaSuccess) return;
      if (s != cudaErrorNotReady) fail(std::string(what) + ": " + cudaGetErrorString(s));
      ncclResult_t async = ncclSuccess;
      (void)ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) fail(std::string(what) + ": " + ncclGetErrorString(async));
      if (std::chrono::steady_clock::now() - start > timeout_)
        fail(std::string(what) + " did not complete within " + std::to_string(int(timeout_.count())) +
             " s: another rank failed or hangs");
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  [[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "etrm: error: rank %d of %d (NCCL): %s\n", rank(), size(), message.c_str());
    abort(1);
  }

  backend::cuda::context& ctx_;
  mpi_communicator& bootstrap_;
  std::chrono::duration<double> timeout_;
  ncclComm_t comm_ = nullptr;
};
static_assert(communicator<nccl_communicator>);

ETRM_END_NAMESPACE
