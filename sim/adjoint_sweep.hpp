#pragma once
// The backward half of a costate run in mode = "adjoint": the forward pass is recorded knot by
// knot while it runs (ForwardRecorder), then the Pontryagin costate is integrated backward from
// λ(T) = 0 and the exact gradient of ∫V dt is written under /adjoint (DESIGN §4, §6).
#include "integrators/registry.hpp"
#include "models/adjoint.hpp"
#include "outputs/trajectory_writer.hpp"

namespace lf {

// Passes everything to `inner` and keeps the forward trajectory (state and derivative at every
// accepted step and segment start) in `store`.
class ForwardRecorder final : public IntegrationObserver {
 public:
  ForwardRecorder(IntegrationObserver& inner, const AdjointForwardModel& model, TrajectoryStore& store);
  void sample(const State& s, double t) override { inner_.sample(s, t); }
  void step(const State& s, double t, double dt, const SolverStats& stats) override;
  void segment_start(const State& s, double t) override;
  void segment_end(const State& s, double t) override { inner_.segment_end(s, t); }
  void phase_end(const PhaseReport& report) override { inner_.phase_end(report); }
  // The recorder's position and the store's knots, for a checkpoint.
  void save(Snapshot& out) const;
  void restore(const Snapshot& in);

 private:
  void record(const State& s, double t);
  IntegrationObserver& inner_;
  const AdjointForwardModel& model_;
  TrajectoryStore& store_;
  std::size_t segment_ = 0;
  bool started_ = false;
  State derivative_;
};

// The result of a backward sweep: J = ∫V dt, its gradient, and λ at the sample times.
struct AdjointSweep {
  IntegrationResult result;
  double loss_integral = 0.0;
  std::vector<Eigen::VectorXd> weight_gradient;  // ∂J/∂W_q, in the layout of the weight values
  std::vector<Eigen::VectorXd> bias_gradient;    // ∂J/∂b_p (empty for inputs)
  std::vector<double> times;                     // increasing
  std::vector<std::string> populations;          // of the λ blocks below
  std::vector<std::vector<double>> lambda;       // per λ block: times.size() rows of its size
  std::size_t knots = 0, bytes = 0;              // the stored forward trajectory
  // Steps whose gradient integrals were taken (each: one RHS evaluation at its end and δ at the
  // 3 quadrature nodes, besides the stepper's own RHS evaluations in `result`).
  std::size_t quadrature_steps = 0;
};

// Integrates the costates backward over [t0, T] from λ(T) = 0, sampling at `sample_times`.
AdjointSweep sweep_backward(const AdjointForwardModel& forward, const Network& network,
                            const InputSignal& signal, const IntegratorSpec& spec,
                            const std::vector<double>& sample_times, const TrajectoryStore& store,
                            const State& forward_final);

// Writes /adjoint: time, state/lambda/<pop>, grad/W/<proj>, grad/b/<pop>, and attributes
// (loss_integral, solver statistics, quadrature steps, forward trajectory knots and bytes).
void write_adjoint(const AdjointSweep& sweep, const Network& network, TrajectoryWriter& writer);

}  // namespace lf
