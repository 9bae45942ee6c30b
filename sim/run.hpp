#pragma once
// The object that runs an Experiment: it owns the Simulation (network, input, model, sample
// times; sim/simulation.hpp) and the output file. Building it validates everything that can be
// checked before integrating (data files, network against model, output path), so bad input
// fails before any sample is written. The CLI, the Python module and the tests run experiments
// through it; an Experiment comes from a file, TOML text or a tree of values (sim/config.hpp).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "integrators/registry.hpp"
#include "sim/experiment.hpp"
#include "sim/simulation.hpp"

namespace lf {

struct SizeEstimate;  // sim/budget.hpp

struct RunOptions {
  std::string output_path;   // overrides output.file when not empty
  int threads = 0;           // OpenMP threads of this run (a scoped count, sim/core/threads.hpp);
                             // 0: the OpenMP default
  bool progress = false;     // draw the progress line on stderr
  bool log_evaluations = false;  // a line on stderr for every evaluation of a training run
  // An existing output file is refused unless `force` (then it is replaced, if it is an earlier
  // run file that no run is writing) or `resume` (then the interrupted run in it is continued
  // from its checkpoint, OUT.h5.checkpoint).
  bool force = false;
  bool resume = false;
  // The run file is kept in memory (HDF5's core driver) instead of being written: nothing is
  // created on disk, there are no checkpoints (no `resume`), and RunReport::image holds the
  // file's bytes at the end. `output_path` then only names the run in messages.
  bool in_memory = false;
};

struct RunReport {
  IntegrationResult result;
  std::optional<IntegrationResult> adjoint;  // the backward sweep of costate mode = "adjoint"
  std::string output_path;
  long samples = 0;
  int threads = 1;
  // Phases (input segments) whose relaxation diverged: how many, and the first one, described.
  std::size_t diverged_phases = 0;
  std::string first_divergence;
  // Where the run resumed (t of the checkpoint), and the checkpoint a run that stopped early
  // (interrupted, wall-time limit) leaves for --resume (empty: none left).
  std::optional<double> resumed_at;
  std::string checkpoint;
  // RunOptions::in_memory: the run file's bytes (also of a run that ended early).
  std::vector<unsigned char> image;
};

class Run {
 public:
  // Throws InputError (exit status 2) for anything wrong with the experiment or the output path.
  Run(Experiment experiment, RunOptions options);
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // Integrates and streams the trajectory. A numerical failure is reported in the result (the
  // file keeps every sample before it); it does not throw.
  RunReport execute();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Checks an experiment completely (data files, network against model) without writing anything;
// returns a description of the run: model, segments, samples, state blocks. `size`, when given,
// receives the run's estimated size (the sweep driver's budget).
std::string validate_experiment(const Experiment& experiment, SizeEstimate* size = nullptr);

}  // namespace lf
