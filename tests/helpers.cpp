#include "tests/helpers.hpp"

#include <unistd.h>

#include <Eigen/LU>

#include <algorithm>
#include <atomic>

#include "sim/core/threads.hpp"

namespace lf::test {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("learnflow_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(const std::string& name, const std::string& content) const {
  const auto p = path_ / name;
  std::ofstream(p) << content;
  return p.string();
}

Experiment experiment_from_toml(const std::string& toml, const std::vector<std::string>& overrides) {
  static TempDir dir;
  static int n = 0;
  return load_experiment(dir.file("experiment" + std::to_string(n++) + ".toml", toml), overrides);
}

std::size_t MetricRecorder::index(const std::string& name) const {
  const auto names = model.metric_names();
  const auto it = std::find(names.begin(), names.end(), name);
  REQUIRE(it != names.end());
  return static_cast<std::size_t>(it - names.begin());
}

std::vector<State> sample_states_with_threads(const Experiment& ex, int threads) {
  const ScopedThreadCount scope(threads);
  Simulation sim(ex);
  Recorder rec;
  State final_state;
  const Outcome outcome = sim.run(rec, final_state).outcome;
  REQUIRE(outcome == Outcome::success);
  return rec.states;
}

LinearChain::LinearChain(const Simulation& sim) {
  const StateLayout& layout = sim.model->layout();
  const Eigen::Index n = layout.size();
  const auto& pops = sim.network.populations;
  c = std::get<LeakyParams>(sim.experiment.model).c;
  depth = static_cast<Eigen::Index>(pops.size()) - 1;
  M = Eigen::MatrixXd::Zero(n, n);
  drive = Eigen::VectorXd::Zero(n);
  const Eigen::Map<const Eigen::VectorXd> u(sim.experiment.input.value.data(),
                                            static_cast<Eigen::Index>(sim.experiment.input.value.size()));
  for (std::size_t l = 1; l < pops.size(); ++l) {
    const Block& target = layout.block(layout.find("x", pops[l].name));
    const Projection& proj = sim.network.projections[l - 1];
    drive.segment(target.offset, target.size) += sim.network.bias[l];
    if (l == 1) {
      drive.segment(target.offset, target.size) += proj.dense * u;
    } else {
      const Block& source = layout.block(layout.find("x", pops[l - 1].name));
      M.block(target.offset, source.offset, target.size, source.size) = proj.dense;
    }
  }
  x_star = (c * Eigen::MatrixXd::Identity(n, n) - M).partialPivLu().solve(drive);
}

Eigen::VectorXd LinearChain::at(double t) const {
  Eigen::VectorXd series = Eigen::VectorXd::Zero(x_star.size()), term = -x_star;
  for (Eigen::Index k = 0; k < depth; ++k) {
    series += term;
    term = (t / static_cast<double>(k + 1)) * (M * term);
  }
  return x_star + std::exp(-c * t) * series;
}

Eigen::VectorXd LinearChain::truncation(double t) const {
  Eigen::VectorXd term = -x_star;
  for (Eigen::Index k = 0; k < depth; ++k) term = (t / static_cast<double>(k + 1)) * (M * term);
  return term;
}

}  // namespace lf::test
