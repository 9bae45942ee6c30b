#include "sim/run.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "models/registry.hpp"
#include "outputs/progress.hpp"
#include "outputs/trajectory_writer.hpp"
#include "sim/input.hpp"
#include "sim/network.hpp"

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

namespace {

// The observer of a run: writes every sample (and the residual metric) and draws progress.
class RunObserver final : public IntegrationObserver {
 public:
  RunObserver(TrajectoryWriter& writer, const Model& model, bool residual,
              std::optional<ProgressLine>& progress)
      : writer_(writer), model_(model), residual_(residual), progress_(progress),
        derivative_(residual ? static_cast<std::size_t>(model.layout().size()) : 0) {}

  void sample(const State& s, double t) override {
    double metrics[1] = {0.0};
    if (residual_) {
      model_.rhs(s, derivative_, t);  // ‖ds/dt‖₂: how far from a fixed point
      double sum = 0.0;
      for (const double v : derivative_) sum += v * v;
      metrics[0] = std::sqrt(sum);
    }
    writer_.append(t, s, std::span<const double>(metrics, residual_ ? 1 : 0));
  }

  void step(double t, double dt, const SolverStats& stats) override {
    if (progress_) progress_->update(t, dt, stats);
  }

 private:
  TrajectoryWriter& writer_;
  const Model& model_;
  bool residual_;
  std::optional<ProgressLine>& progress_;
  State derivative_;
};

}  // namespace

struct Run::Impl {
  Experiment experiment;
  RunOptions options;
  Network network;
  InputSignal signal;
  Drive drive;
  std::unique_ptr<Model> model;
  std::vector<double> times;
  std::unique_ptr<TrajectoryWriter> writer;

  Impl(Experiment ex, RunOptions opt)
      : experiment(std::move(ex)), options(std::move(opt)), network(build_network(experiment.network)),
        signal(experiment.input, experiment.integrator.t0, experiment.integrator.t_end),
        drive(signal), model(make_model(experiment.model, network, drive)),
        times(sample_times(experiment.integrator.t0, experiment.integrator.t_end,
                           experiment.output.sample_dt)) {}
};

Run::Run(Experiment experiment, RunOptions options)
    : impl_(std::make_unique<Impl>(std::move(experiment), std::move(options))) {
  Impl& m = *impl_;
  if (m.options.threads > 0) omp_set_num_threads(m.options.threads);
  if (m.options.output_path.empty()) m.options.output_path = m.experiment.output.file;
  std::vector<std::string> metrics;
  if (m.experiment.output.residual) metrics.emplace_back("residual");
  m.writer = std::make_unique<TrajectoryWriter>(m.options.output_path, m.model->layout(),
                                                m.experiment.output, metrics);
  m.writer->write_metadata({model_type(m.experiment.model), m.experiment.integrator.stepper,
                            m.experiment.network.seed, omp_get_max_threads(),
                            m.experiment.config_text});
  m.writer->write_network(m.network);
  m.writer->write_schedule(m.signal.boundaries());
  m.writer->flush();
}

Run::~Run() = default;

RunReport Run::execute() {
  Impl& m = *impl_;
  const IntegratorSpec& spec = m.experiment.integrator;
  std::optional<ProgressLine> progress;
  if (m.options.progress) progress.emplace(stderr, spec.t0, spec.t_end);
  RunObserver observer(*m.writer, *m.model, m.experiment.output.residual, progress);

  State state(static_cast<std::size_t>(m.model->layout().size()));
  m.model->initial_state(state);
  RunReport report;
  report.result = integrate(*m.model, m.drive, state, spec, m.times, observer);
  if (progress) progress->finish();
  m.writer->write_solver(report.result);
  report.output_path = m.options.output_path;
  report.samples = m.writer->samples();
  report.threads = omp_get_max_threads();
  return report;
}

std::string validate_experiment(const Experiment& ex) {
  const Network network = build_network(ex.network);
  const InputSignal signal(ex.input, ex.integrator.t0, ex.integrator.t_end);
  const Drive drive(signal);
  const auto model = make_model(ex.model, network, drive);
  std::string text = fmt::format("model {}, stepper {}, t in [{}, {}], {} input segment(s), {} "
                                 "samples\nstate: {} values\n",
                                 model->type(), ex.integrator.stepper, ex.integrator.t0,
                                 ex.integrator.t_end, signal.segments(),
                                 sample_times(ex.integrator.t0, ex.integrator.t_end,
                                              ex.output.sample_dt).size(),
                                 model->layout().size());
  for (const Block& b : model->layout().blocks()) {
    std::string shape;
    for (const auto d : b.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    text += fmt::format("  {:<24} [{}]\n", b.name(), shape);
  }
  return text;
}

}  // namespace lf
