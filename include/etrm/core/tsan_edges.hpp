// SPDX-License-Identifier: Apache-2.0
// ThreadSanitizer sees no synchronisation inside an uninstrumented libtbb, so it reports the
// fork and join of every parallel loop as races (a worker reading the caller's captured locals,
// the caller reusing that stack after the loop). Under -fsanitize=thread these declare the two
// edges oneTBB guarantees: the caller's work before the loop happens before each chunk (fork),
// and each chunk before the caller's work after it (join). The edges go through two fixed
// addresses, one only the callers release and one only the chunks release, so chunks get no
// edge between them and races between chunks are still reported. Without TSan they are empty.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define ETRM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ETRM_TSAN 1
#endif
#endif

#if defined(ETRM_TSAN)
#include <sanitizer/tsan_interface.h>
inline char etrm_tsan_fork = 0, etrm_tsan_join = 0;
#define ETRM_TSAN_LOOP_FORK() __tsan_release(&etrm_tsan_fork)  // the caller, before the loop
#define ETRM_TSAN_CHUNK_BEGIN() __tsan_acquire(&etrm_tsan_fork)
#define ETRM_TSAN_CHUNK_END() __tsan_release(&etrm_tsan_join)
#define ETRM_TSAN_LOOP_JOIN() __tsan_acquire(&etrm_tsan_join)  // the caller, after the loop
#else
#define ETRM_TSAN_LOOP_FORK() ((void)0)
#define ETRM_TSAN_CHUNK_BEGIN() ((void)0)
#define ETRM_TSAN_CHUNK_END() ((void)0)
#define ETRM_TSAN_LOOP_JOIN() ((void)0)
#endif
