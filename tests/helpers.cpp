#include "tests/helpers.hpp"

#include <unistd.h>

#include <omp.h>

#include <algorithm>
#include <atomic>

#include "sim/run.hpp"

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

Simulation::Simulation(const Experiment& ex)
    : experiment(ex), network(build_network(ex.network)),
      signal(ex.input, ex.integrator.t0, ex.integrator.t_end), drive(signal),
      model(make_model(ex.model, network, drive)) {}

std::vector<double> Simulation::sample_times_of(const Experiment& ex) {
  return sample_times(ex.integrator.t0, ex.integrator.t_end, ex.output.sample_dt);
}

IntegrationResult Simulation::run(const IntegratorSpec& spec, const std::vector<double>& times,
                                  IntegrationObserver& observer, State& final_state) {
  final_state.assign(static_cast<std::size_t>(model->layout().size()), 0.0);
  model->initial_state(final_state);
  return integrate(*model, drive, final_state, spec, times, observer);
}

std::size_t MetricRecorder::index(const std::string& name) const {
  const auto names = model.metric_names();
  const auto it = std::find(names.begin(), names.end(), name);
  REQUIRE(it != names.end());
  return static_cast<std::size_t>(it - names.begin());
}

std::vector<State> sample_states_with_threads(const Experiment& ex, int threads) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  Simulation sim(ex);
  Recorder rec;
  State final_state;
  const Outcome outcome = sim.run(rec, final_state).outcome;
  omp_set_num_threads(saved);
  REQUIRE(outcome == Outcome::success);
  return rec.states;
}

}  // namespace lf::test
