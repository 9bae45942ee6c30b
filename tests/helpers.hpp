#pragma once
// Shared test fixtures: experiments from inline TOML, and observers that record what a
// Simulation (sim/simulation.hpp, the library's assembly of an experiment) integrates.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "integrators/registry.hpp"
#include "models/registry.hpp"
#include "sim/config.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"
#include "sim/simulation.hpp"

namespace lf::test {

// A fresh empty directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  std::filesystem::path path() const { return path_; }
  std::string file(const std::string& name, const std::string& content = {}) const;

 private:
  std::filesystem::path path_;
};

// Loads an experiment from TOML text (written to a temp file, so relative paths resolve there).
Experiment experiment_from_toml(const std::string& toml, const std::vector<std::string>& overrides = {});

// Records every sample and every accepted step.
struct Recorder final : IntegrationObserver {
  std::vector<double> times;
  std::vector<State> states;
  std::vector<double> step_ends;
  void sample(const State& s, double t) override {
    times.push_back(t);
    states.push_back(s);
  }
  void step(const State&, double t, double, const SolverStats&) override { step_ends.push_back(t); }
};

// Records the model's metrics (and the state) at every sample, while the drive is in the
// sample's segment.
struct MetricRecorder final : IntegrationObserver {
  explicit MetricRecorder(const Model& m) : model(m) {}
  const Model& model;
  std::vector<double> times;
  std::vector<State> states;
  std::vector<std::vector<double>> values;
  void sample(const State& s, double t) override {
    std::vector<double> v(model.metric_names().size());
    model.metrics(s, t, v);
    times.push_back(t);
    states.push_back(s);
    values.push_back(v);
  }
  // Position of metric `name` in each row of `values` (fails the test if there is none).
  std::size_t index(const std::string& name) const;
};

// The states at the sample times of `ex`, integrated with `threads` OpenMP threads (a scoped
// count, as a run sets it), for tests that 1 and N threads give the same bits.
std::vector<State> sample_states_with_threads(const Experiment& ex, int threads);

// The closed form of a leaky layered network with linear activations under a constant input
// (layer 0 the input), from x(0) = 0: ẋ = −c x + M x + drive with M strictly block-lower
// (nilpotent, M^L = 0 for L state layers), so x(t) = x* − e^{−ct} Σ_{k<L} (t^k/k!) M^k x*,
// x* = (cI − M)⁻¹ drive.
struct LinearChain {
  explicit LinearChain(const Simulation& sim);
  Eigen::VectorXd at(double t) const;
  // M^L x* · t^L/L!, the first term the finite series leaves out: exactly zero.
  Eigen::VectorXd truncation(double t) const;
  double c = 1.0;
  Eigen::Index depth = 0;
  Eigen::MatrixXd M;
  Eigen::VectorXd drive, x_star;
};

inline double max_abs_diff(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  return (a - b).cwiseAbs().maxCoeff();
}

}  // namespace lf::test
