// SPDX-License-Identifier: Apache-2.0
// The data loaders' parallel loop: f(i) for i in [0, n) on oneTBB, with the loop's fork and join
// declared to ThreadSanitizer (core/tsan_edges.hpp; nothing without it).
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/core/tsan_edges.hpp>

#include <tbb/parallel_for.h>

ETRM_BEGIN_NAMESPACE
namespace data {

template <class Index, class F>
void parallel_for(Index n, F&& f) {
  const auto item = [&](Index i) {
    ETRM_TSAN_CHUNK_BEGIN();
    f(i);
    ETRM_TSAN_CHUNK_END();
  };
  ETRM_TSAN_LOOP_FORK();  // after the closure is built: the workers read it
  tbb::parallel_for(Index(0), n, item);
  ETRM_TSAN_LOOP_JOIN();
}

}  // namespace data
ETRM_END_NAMESPACE
