#pragma once
// Checkpoints of a running experiment (README, "Output files, signals, checkpoints and resume"):
// what the integration loop, the model and the observers need to continue a run bit for bit,
// gathered into a Snapshot and written beside the run file (outputs/checkpoint_file.hpp).
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "integrators/registry.hpp"
#include "outputs/trajectory_writer.hpp"
#include "sim/core/snapshot.hpp"

namespace lf {

// The loop's position in a checkpoint ("loop/…"), and back.
void put_position(Snapshot& out, const LoopPosition& at);
LoopPosition position_from(const Snapshot& in);

// The outermost observer of a run: passes everything on to `inner`, and writes a checkpoint
// every `interval` seconds of wall time (0: never on its own), at `final_t` when asked to (the
// end of an adjoint run's forward sweep, so that a signal in the backward sweep does not cost
// the forward sweep again), and whenever the loop stops on a signal or the wall-time limit. A
// checkpoint holds the config it belongs to, the loop's position, the state, the model's event
// state, what each of `parts` saves (the observers' own state), and the rows the file holds.
class Checkpointer final : public IntegrationObserver {
 public:
  using Part = std::function<void(Snapshot&)>;
  Checkpointer(IntegrationObserver& inner, const Model& model, TrajectoryWriter& writer,
               std::vector<Part> parts, std::string path, std::string config, double interval,
               double final_t);

  void sample(const State& s, double t) override { inner_.sample(s, t); }
  void step(const State& s, double t, double dt, const SolverStats& stats) override {
    inner_.step(s, t, dt, stats);
  }
  void segment_start(const State& s, double t) override { inner_.segment_start(s, t); }
  void segment_end(const State& s, double t) override { inner_.segment_end(s, t); }
  void phase_end(const PhaseReport& report) override { inner_.phase_end(report); }
  bool checkpoint_due(double t) override;
  // Writes the checkpoint; a failure to write it (a full disk) is reported once on stderr and the
  // run goes on: a resume would start from the previous checkpoint.
  void checkpoint(const State& s, const LoopPosition& at) override;

 private:
  IntegrationObserver& inner_;
  const Model& model_;
  TrajectoryWriter& writer_;
  std::vector<Part> parts_;
  std::string path_, config_;
  double interval_, final_t_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  bool warned_ = false;
};

}  // namespace lf
