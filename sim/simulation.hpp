#pragma once
// What a run integrates, assembled from an Experiment: the network with its initial parameters,
// the input signal and the drive that follows it, the model (and, when the run sweeps backward
// after it, the adjoint forward model) and the sample times. The one assembly of the library:
// Run (sim/run.hpp) executes it with an output file, the tests integrate it with their own
// observers. Building it validates the network against the model (InputError).
#include <memory>
#include <vector>

#include "integrators/registry.hpp"
#include "models/registry.hpp"
#include "sim/experiment.hpp"

namespace lf {

// Sample times: the multiples k·sample_dt within [t0, t_end] (rounding at the ends snapped).
std::vector<double> sample_times(double t0, double t_end, double sample_dt);

class Simulation {
 public:
  explicit Simulation(Experiment ex);
  // The model holds the network and the drive by reference: the object stays where it is.
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Integrates from the model's initial state over `times` (the experiment's integrator and
  // sample times by default); the state at the end is left in `final_state`.
  IntegrationResult run(const IntegratorSpec& spec, const std::vector<double>& sample_at,
                        IntegrationObserver& observer, State& final_state);
  IntegrationResult run(IntegrationObserver& observer, State& final_state) {
    return run(experiment.integrator, times, observer, final_state);
  }
  static std::vector<double> sample_times_of(const Experiment& ex);

  Experiment experiment;
  Network network;
  InputSignal signal;
  Drive drive;
  std::unique_ptr<Model> model;
  // Costate mode "adjoint": the model, as the forward pass of the exact adjoint; else null.
  const AdjointForwardModel* adjoint = nullptr;
  std::vector<double> times;  // the sample times of the experiment
};

}  // namespace lf
