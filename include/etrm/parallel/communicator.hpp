// SPDX-License-Identifier: Apache-2.0
// The collectives data-parallel training needs, as a contract beside the device trait.
// A communicator joins `size()` processes (ranks); buffers live where its transport reads them
// (host memory for MPI, device memory for NCCL). Every collective is called by every rank in
// the same order with the same sizes.
//
//   rank(), size()                     this process's index in [0, size) and the process count
//   broadcast(data, bytes, root)       data [bytes] of `root` copied to every rank
//   all_reduce_sum(x, n)               x [n] (float or double) replaced by the sum over ranks
//   all_gather(send, bytes, recv)      recv [size · bytes] = every rank's send [bytes], rank order
//   barrier()                          returns once every rank has entered it
//   abort(code)                        ends every rank's process with `code` (does not return)
//
// `single_process` is the one-rank communicator; `mpi_communicator` (parallel/mpi_communicator.hpp,
// target etrm::mpi) and `nccl_communicator` (parallel/nccl_communicator.cuh, target etrm::nccl)
// join processes. `communicator_ref` holds any of them without a template parameter, so the
// trainer's type does not depend on the transport.
#pragma once

#include <etrm/core/config.hpp>

#include <concepts>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

template <class C>
concept communicator = requires(C& c, const C& cc, void* data, const void* send, float* f, double* d, std::size_t n) {
  { cc.rank() } -> std::convertible_to<int>;
  { cc.size() } -> std::convertible_to<int>;
  c.broadcast(data, n, 0);
  c.all_reduce_sum(f, n);
  c.all_reduce_sum(d, n);
  c.all_gather(send, n, data);
  c.barrier();
  c.abort(1);
};

// One process: collectives are identities on host memory.
struct single_process {
  int rank() const { return 0; }
  int size() const { return 1; }
  void broadcast(void*, std::size_t, int) {}
  void all_reduce_sum(float*, std::size_t) {}
  void all_reduce_sum(double*, std::size_t) {}
  void all_gather(const void* send, std::size_t bytes, void* recv) {
    if (send != recv && bytes) std::memmove(recv, send, bytes);
  }
  void barrier() {}
  [[noreturn]] void abort(int code) { std::exit(code); }
};
static_assert(communicator<single_process>);

// A non-owning reference to any communicator (the referenced one must outlive it); a
// default-constructed reference is a single process.
class communicator_ref {
 public:
  communicator_ref() : communicator_ref(one_process_) {}
  template <class C>
    requires(!std::same_as<std::remove_cv_t<C>, communicator_ref> && communicator<C>)
  communicator_ref(C& c) : self_(&c), ops_(&ops_of<C>) {}  // NOLINT: implicit, like a reference

  int rank() const { return ops_->rank(self_); }
  int size() const { return ops_->size(self_); }
  void broadcast(void* data, std::size_t bytes, int root) { ops_->broadcast(self_, data, bytes, root); }
  void all_reduce_sum(float* x, std::size_t n) { ops_->reduce_f(self_, x, n); }
  void all_reduce_sum(double* x, std::size_t n) { ops_->reduce_d(self_, x, n); }
  void all_gather(const void* send, std::size_t bytes, void* recv) { ops_->gather(self_, send, bytes, recv); }
  void barrier() { ops_->barrier(self_); }
  [[noreturn]] void abort(int code) {
    ops_->abort(self_, code);
    std::exit(code);  // a transport's abort that returned
  }

 private:
  struct table {
    int (*rank)(const void*);
    int (*size)(const void*);
    void (*broadcast)(void*, void*, std::size_t, int);
    void (*reduce_f)(void*, float*, std::size_t);
    void (*reduce_d)(void*, double*, std::size_t);
    void (*gather)(void*, const void*, std::size_t, void*);
    void (*barrier)(void*);
    void (*abort)(void*, int);
  };
  template <class C>
  static constexpr table ops_of{
      [](const void* s) { return int(static_cast<const C*>(s)->rank()); },
      [](const void* s) { return int(static_cast<const C*>(s)->size()); },
      [](void* s, void* d, std::size_t b, int r) { static_cast<C*>(s)->broadcast(d, b, r); },
      [](void* s, float* x, std::size_t n) { static_cast<C*>(s)->all_reduce_sum(x, n); },
      [](void* s, double* x, std::size_t n) { static_cast<C*>(s)->all_reduce_sum(x, n); },
      [](void* s, const void* in, std::size_t b, void* out) { static_cast<C*>(s)->all_gather(in, b, out); },
      [](void* s) { static_cast<C*>(s)->barrier(); },
      [](void* s, int code) { static_cast<C*>(s)->abort(code); },
  };
  static inline single_process one_process_;

  void* self_;
  const table* ops_;
};
static_assert(communicator<communicator_ref>);

ETRM_END_NAMESPACE
