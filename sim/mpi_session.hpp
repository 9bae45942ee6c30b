#pragma once
// MPI for `learnflow sweep` (issue 10): under mpirun or srun the ranks share the sweep's points,
// each taking the next index from a counter at rank 0 (dynamic load balancing). MPI is
// initialised only when the process was started by an MPI launcher (its environment says so),
// so that no other command, and no sweep started without one, ever touches MPI. Built without
// MPI (LEARNFLOW_MPI off), a session is always rank 0 of 1.
#include <cstddef>
#include <memory>

namespace lf {

// The number of processes an MPI launcher started (OMPI_COMM_WORLD_SIZE, PMI_SIZE, …); 0 when
// this process was not started by one.
int mpi_launcher_size();

class MpiSession {
 public:
  // Throws InputError when a launcher started several processes but learnflow was built
  // without MPI (each would run the whole sweep into the same directory).
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  bool active() const noexcept { return active_; }
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  // Rank 0's value, on every rank.
  int broadcast(int value) const;
  // The largest of the ranks' values, on every rank.
  int max(int value) const;
  void barrier() const;
  // The next value of a counter shared by all ranks, starting at 0 (fetch-and-add at rank 0).
  std::size_t next_index();
  // Ends every rank of the job with `status` (MPI_Abort) when MPI is active; else returns.
  void abort(int status) const;
  // Lets MPI make progress on requests from other ranks while this one waits for its points.
  void progress() const;

 private:
  bool active_ = false;
  int rank_ = 0;
  int size_ = 1;
  struct Window;
  std::unique_ptr<Window> window_;
};

}  // namespace lf
