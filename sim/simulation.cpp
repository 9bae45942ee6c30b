#include "sim/simulation.hpp"

#include <algorithm>
#include <cmath>

namespace lf {

std::vector<double> sample_times(double t0, double t_end, double sample_dt) {
  // Tolerance for "k·sample_dt is t0 (or t_end) up to rounding".
  const double slack = 1e-9 * sample_dt;
  std::vector<double> times;
  for (auto k = static_cast<long long>(std::ceil((t0 - slack) / sample_dt));; ++k) {
    double t = static_cast<double>(k) * sample_dt;
    if (t > t_end + slack) break;
    t = std::clamp(t, t0, t_end);
    if (times.empty() || t > times.back()) times.push_back(t);
  }
  return times;
}

Simulation::Simulation(Experiment ex)
    : experiment(std::move(ex)), network(build_network(experiment.network)),
      signal(experiment.input, experiment.integrator.t0, experiment.integrator.t_end),
      drive(signal), times(sample_times_of(experiment)) {
  BuiltModel built = build_model(experiment.model, network, drive);
  model = std::move(built.model);
  adjoint = built.adjoint;
}

std::vector<double> Simulation::sample_times_of(const Experiment& ex) {
  return sample_times(ex.integrator.t0, ex.integrator.t_end, ex.output.sample_dt);
}

IntegrationResult Simulation::run(const IntegratorSpec& spec, const std::vector<double>& sample_at,
                                  IntegrationObserver& observer, State& final_state) {
  final_state.assign(static_cast<std::size_t>(model->layout().size()), 0.0);
  model->initial_state(final_state);
  return integrate(*model, drive, final_state, spec, sample_at, observer);
}

}  // namespace lf
