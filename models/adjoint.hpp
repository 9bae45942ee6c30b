#pragma once
// Exact adjoint of the costate model (mode = "adjoint"): the Pontryagin costate of
//     J = ∫_{t0}^{T} V(x(t)) dt   subject to   τ_x ẋ = −c x + σ(W x + b),   input clamped,
// integrated backward in time from λ(T) = 0, gives the exact gradient of J for every weight.
// With λ = −p (p the Pontryagin multiplier) and reversed time s = t0 + T − t:
//     dλ/ds = (−c λ + Wᵀ(σ'(a) ⊙ λ))/τ_x + e,          e = −∂V/∂x on the outputs
//     ∂J/∂W_q = −∫ (σ'(a_to) ⊙ λ_to) x_fromᵀ dt / τ_x,   ∂J/∂b_p = −∫ σ'(a_p) ⊙ λ_p dt / τ_x
// With a batch, V is the batch's mean loss: λ follows the equation per example and the gradients
// are the batch means of the products.
// — the diffusion form of the costates, run in reversed time, which is why it is stable.
// The forward pass keeps every accepted step (state and derivative) and the backward sweep
// reads x(t) back by cubic Hermite interpolation between them: 2·n doubles per step.
// Only λ is integrated under the stepper's error control. The gradient integrals are
// quadratures over each accepted step of the backward sweep (as CVODES integrates its
// quadratures outside the error test): 3-point Gauss–Legendre, λ inside the step from the
// stepper's dense output (steppers without one: the cubic Hermite interpolant of λ and dλ/ds at
// the step's ends), x from the forward trajectory's Hermite interpolant. The
// stepper then carries n·B values, not the n·B + P of the accumulators (P: every weight and
// bias), whose stage updates and error norm cost 16× the forward sweep on [512]*5 (issue 11).
#include <functional>
#include <vector>

#include "sim/core/model.hpp"
#include "models/neurons.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

namespace lf {

// The forward trajectory of the neurons, knot by knot within each input segment.
class TrajectoryStore {
 public:
  TrajectoryStore(std::size_t segments, Eigen::Index size);
  void add(std::size_t segment, double t, const double* x, const double* dxdt);
  // x(t) in original segment k, Hermite-interpolated between the knots around t.
  void interpolate(std::size_t segment, double t, Eigen::Ref<Eigen::VectorXd> out) const;
  std::size_t knots() const;
  std::size_t bytes() const;
  // The knots so far, for a checkpoint (under "adjoint/store/…"), and back.
  void save(Snapshot& out) const;
  void restore(const Snapshot& in);

 private:
  struct Segment {
    std::vector<double> t, x, f;  // x and f: `size` values per knot
  };
  std::vector<Segment> segments_;
  Eigen::Index size_;
};

// Forward pass: the neurons of the costate model with fixed weights, and the running integral
// of the loss in block "integral/loss".
class AdjointForwardModel final : public Model {
 public:
  AdjointForwardModel(const Network& network, const CostateParams& params, const Drive& drive);

  std::string_view type() const override { return "costate"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;
  std::vector<std::string> metric_names() const override { return {"loss"}; }
  void metrics(const State& s, double t, std::span<double> out) const override;

  const CostateParams& params() const noexcept { return params_; }
  const NeuronIndex& neurons() const noexcept { return x_; }
  BlockId integral_block() const noexcept { return integral_; }
  // Number of neuron values at the start of the state (the x blocks come first).
  Eigen::Index neuron_count() const noexcept { return neuron_count_; }

 private:
  double loss(const State& s) const;

  const Network* network_;
  CostateParams params_;
  const Drive* drive_;
  StateLayout layout_;
  NeuronIndex x_;
  BlockId integral_;
  Eigen::Index neuron_count_ = 0;
  mutable Eigen::MatrixXd preactivation_, output_x_;
  bool parallel_ = false;  // the RHS in parallel over row chunks (large networks)
};

// The gradient integrals of the backward sweep: −∂J/∂W_q in the layout of the weight values
// (dense row-major, or the CSR values), −∂J/∂b_p (empty for inputs).
struct AdjointGradients {
  std::vector<Eigen::VectorXd> weight, bias;
};

// Backward sweep in reversed time s, driven by the reversed input signal. State blocks:
// lambda/<pop>.
class AdjointBackwardModel final : public Model {
 public:
  AdjointBackwardModel(const Network& network, const CostateParams& params,
                       const Drive& reversed_drive, const TrajectoryStore& forward,
                       const NeuronIndex& forward_neurons, const StateLayout& forward_layout);

  std::string_view type() const override { return "costate-adjoint"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;

  const NeuronIndex& costates() const noexcept { return lambda_; }

  // Zero accumulators of the right sizes.
  AdjointGradients zero_gradients() const;
  // Adds the integrals over the accepted step [s0, s1] (in the segment whose drive is current)
  // of τ Ġ_q = δ_to x_fromᵀ and τ ġ_p = δ_p (batch means), δ = σ'(a(x)) ⊙ λ, with λ(s) given by
  // `lambda_at(s, out)` within the step.
  using LambdaAt = std::function<void(double, State&)>;
  void add_step_integrals(double s0, double s1, const LambdaAt& lambda_at, AdjointGradients& g) const;

 private:
  const Network* network_;
  CostateParams params_;
  const Drive* drive_;
  const TrajectoryStore* forward_;
  const NeuronIndex* fx_;           // the forward model's neurons (offsets into x_)
  const StateLayout* forward_layout_;
  StateLayout layout_;  // before lambda_, which adds its blocks to it
  NeuronIndex lambda_;
  double time_sum_;                 // t0 + T: t = time_sum − s
  mutable State x_;                 // x(t), in the forward layout
  mutable Eigen::MatrixXd derivative_, delta_, output_x_, output_e_;  // neurons (outputs) × B
  static constexpr std::size_t quadrature_nodes = 3;
  std::vector<std::pair<std::size_t, std::size_t>> gradient_chunks_;  // (projection, λ chunk)
  bool parallel_ = false;  // the RHS in parallel over row chunks (large networks)
  // δ = σ'(a(x)) ⊙ λ at time t (x, u of the forward pass there) into `delta` (neurons × B).
  void costate_delta(double sigma, const double* lambda, Eigen::Ref<Eigen::MatrixXd> delta) const;
  // The quadrature's scratch: per node, δ weighted by the node's weight (neurons × B each, side
  // by side), the activities x_from (every population, n × B each, side by side) and λ.
  mutable Eigen::MatrixXd node_delta_;
  mutable std::vector<Eigen::MatrixXd> node_activity_;  // per population
  mutable State node_lambda_;
};

}  // namespace lf
