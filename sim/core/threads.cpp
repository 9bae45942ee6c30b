#include "sim/core/threads.hpp"

#include <omp.h>
#include <sched.h>

#include <thread>

namespace lf {
namespace {

// 0: no scope is open on this thread.
thread_local int scoped_threads = 0;

}  // namespace

int thread_count() noexcept { return scoped_threads > 0 ? scoped_threads : omp_get_max_threads(); }

int available_cores() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 1;
}

ScopedThreadCount::ScopedThreadCount(int threads) noexcept : previous_(scoped_threads) {
  if (threads > 0) scoped_threads = threads;
}

ScopedThreadCount::~ScopedThreadCount() { scoped_threads = previous_; }

}  // namespace lf
