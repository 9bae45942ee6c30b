#include "sim/core/threads.hpp"

#include <omp.h>

namespace lf {
namespace {

// 0: no scope is open on this thread.
thread_local int scoped_threads = 0;

}  // namespace

int thread_count() noexcept { return scoped_threads > 0 ? scoped_threads : omp_get_max_threads(); }

ScopedThreadCount::ScopedThreadCount(int threads) noexcept : previous_(scoped_threads) {
  if (threads > 0) scoped_threads = threads;
}

ScopedThreadCount::~ScopedThreadCount() { scoped_threads = previous_; }

}  // namespace lf
