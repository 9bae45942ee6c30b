#pragma once
// The OpenMP team size of learnflow's parallel regions. A run sets it for its own duration
// (ScopedThreadCount) and every parallel region takes it in a num_threads clause, so that a run
// never changes the process-wide OpenMP settings: two runs in one process (the Python module,
// a sweep) each keep their own count, and a library user's own OpenMP code is left alone.
// The count belongs to the thread that starts the run, the one that opens every region.

namespace lf {

// The count in force on this thread: the innermost ScopedThreadCount's, else OpenMP's default
// (omp_get_max_threads: OMP_NUM_THREADS or all cores).
int thread_count() noexcept;

// Sets this thread's count for the lifetime of the object (threads <= 0: OpenMP's default);
// the previous one is restored at the end. Not copyable: scopes nest.
// The cores this process may run on (its CPU affinity mask: taskset, cgroups, a batch
// scheduler's allocation), at least 1.
int available_cores() noexcept;

class ScopedThreadCount {
 public:
  explicit ScopedThreadCount(int threads) noexcept;
  ~ScopedThreadCount();
  ScopedThreadCount(const ScopedThreadCount&) = delete;
  ScopedThreadCount& operator=(const ScopedThreadCount&) = delete;

 private:
  int previous_;
};

}  // namespace lf
