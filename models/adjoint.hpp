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

// Backward sweep in reversed time s, driven by the reversed input signal. State blocks:
// lambda/<pop>, gradW/<proj> (accumulating −∂J/∂W in the layout of the weight values),
// gradb/<pop> (−∂J/∂b).
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
  BlockId weight_gradient_block(std::size_t k) const { return grad_w_[k]; }
  BlockId bias_gradient_block(std::size_t p) const { return grad_b_[p]; }

 private:
  const Network* network_;
  CostateParams params_;
  const Drive* drive_;
  const TrajectoryStore* forward_;
  const NeuronIndex* fx_;           // the forward model's neurons (offsets into x_)
  const StateLayout* forward_layout_;
  StateLayout layout_;  // before lambda_, which adds its blocks to it
  NeuronIndex lambda_;
  std::vector<BlockId> grad_w_, grad_b_;
  double time_sum_;                 // t0 + T: t = time_sum − s
  mutable State x_;                 // x(t), in the forward layout
  mutable Eigen::MatrixXd derivative_, delta_, output_x_, output_e_;  // neurons (outputs) × B
  std::vector<std::pair<std::size_t, std::size_t>> gradient_chunks_;  // (projection, λ chunk)
  bool parallel_ = false;  // the RHS in parallel over row chunks (large networks)
};

}  // namespace lf
