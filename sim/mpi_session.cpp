#include "sim/mpi_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <string>

#include "sim/core/errors.hpp"

#ifdef LEARNFLOW_MPI
// The C API only: the deprecated C++ bindings that mpi.h would pull in warn under -Wextra.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace lf {

int mpi_launcher_size() {
  // Open MPI's mpirun; PMI-1/PMI-2 (MPICH's hydra, srun --mpi=pmi2); PMIx (srun --mpi=pmix,
  // Open MPI 5), which names the rank only.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* value = std::getenv(name)) return std::max(1, std::atoi(value));
  }
  if (std::getenv("PMIX_RANK") != nullptr || std::getenv("PMI_RANK") != nullptr) return 1;
  return 0;
}

#ifdef LEARNFLOW_MPI

struct MpiSession::Window {
  MPI_Win window = MPI_WIN_NULL;
  long* counter = nullptr;
};

MpiSession::MpiSession() {
  if (mpi_launcher_size() == 0) return;
  MPI_Init(nullptr, nullptr);
  active_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  window_ = std::make_unique<Window>();
  // The counter lives at rank 0; the others expose nothing.
  MPI_Win_allocate(rank_ == 0 ? static_cast<MPI_Aint>(sizeof(long)) : 0, sizeof(long),
                   MPI_INFO_NULL, MPI_COMM_WORLD, &window_->counter, &window_->window);
  if (rank_ == 0) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, window_->window);
    *window_->counter = 0;
    MPI_Win_unlock(0, window_->window);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

MpiSession::~MpiSession() {
  if (!active_) return;
  if (std::uncaught_exceptions() > 0) {
    // This rank failed (an error it has printed) while the others may be running points or
    // waiting in a collective call that it will never make: end the whole job.
    MPI_Abort(MPI_COMM_WORLD, exit_bad_input);
  }
  MPI_Win_free(&window_->window);
  MPI_Finalize();
}

int MpiSession::broadcast(int value) const {
  if (active_) MPI_Bcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return value;
}

int MpiSession::max(int value) const {
  int result = value;
  if (active_) MPI_Allreduce(&value, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return result;
}

void MpiSession::barrier() const {
  if (active_) MPI_Barrier(MPI_COMM_WORLD);
}

std::size_t MpiSession::next_index() {
  if (!active_) return 0;
  const long one = 1;
  long previous = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, window_->window);
  MPI_Fetch_and_op(&one, &previous, MPI_LONG, 0, 0, MPI_SUM, window_->window);
  MPI_Win_unlock(0, window_->window);
  return static_cast<std::size_t>(previous);
}

void MpiSession::abort(int status) const {
  if (active_) MPI_Abort(MPI_COMM_WORLD, status);
}

void MpiSession::progress() const {
  if (!active_) return;
  int flag = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
}

#else

struct MpiSession::Window {};

MpiSession::MpiSession() {
  if (const int size = mpi_launcher_size(); size > 1) {
    throw InputError(fmt::format("started by an MPI launcher as {} processes, but this learnflow "
                                 "was built without MPI (cmake -DLEARNFLOW_MPI=ON, with "
                                 "libopenmpi-dev installed): each would run the whole sweep",
                                 size));
  }
}
MpiSession::~MpiSession() = default;
int MpiSession::broadcast(int value) const { return value; }
int MpiSession::max(int value) const { return value; }
void MpiSession::barrier() const {}
std::size_t MpiSession::next_index() { return 0; }
void MpiSession::abort(int) const {}
void MpiSession::progress() const {}

#endif

}  // namespace lf
