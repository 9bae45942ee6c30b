#pragma once
// Model "gaitprop" (Ahmad, van Gerven & Ambrogioni, "GAIT-prop: a biologically plausible learning
// rule derived from backpropagation of error", NeurIPS 2020; DESIGN §4): target propagation with
// exact layer inverses on a layered network of square layers h_0 (input, clamped) … h_L (output)
// with invertible activations σ, D_l = diag σ'(a_l):
//   forward      a_l = W_l h_{l−1} + b_l,     τ_h ḣ_l = −h_l + σ(a_l)            (h_0 = u)
//   output       τ_L = h_L − γ ∂L/∂h_L                       (L from models/backprop.hpp)
//   incremental  τ_{l−1} = T_l(τ_l) = W_l⁻¹(σ⁻¹(h_l + γ σ'(a_l)² ⊙ (τ_l − h_l)) − b_l)
//   update       ΔW_l = η [γ^{−(L−l+1)} (σ'(a_l) ⊙ (τ_l − h_l)) h_{l−1}ᵀ − ∇R(W_l)]
//                Δb_l = η γ^{−(L−l+1)} σ'(a_l) ⊙ (τ_l − h_l)
//   regulariser  R(W) = λ Σ_{i≠j} (W Wᵀ)_ij²,   ∇R(W) = 4λ offdiag(W Wᵀ) W   (W Wᵀ symmetric)
//
// The scaling γ^{−(L−l+1)}: write e_l = τ_l − h_l and δ_l = −∂L/∂h_l (backprop: δ_{l−1} =
// W_lᵀ D_l δ_l and −∂L/∂W_l = (D_l δ_l) h_{l−1}ᵀ). As (σ⁻¹)'(h_l) = 1/σ'(a_l),
//   σ⁻¹(h_l + γ D_l² e_l) = a_l + γ D_l e_l + O((γ D_l² e_l)²),  so  e_{l−1} = γ W_l⁻¹ D_l e_l + …
// The output target gives e_L = γ δ_L exactly. For orthogonal W (W⁻¹ = Wᵀ) induction gives
// e_l = γ^{L−l+1} δ_l, hence γ^{−(L−l+1)} (D_l e_l) h_{l−1}ᵀ = (D_l δ_l) h_{l−1}ᵀ = −∂L/∂W_l: the
// update is gradient descent on L with rate η as γ → 0. (DESIGN's "error at layer l scaled by
// γ^{−(L−l)}" counts from the output error τ_L − h_L, which carries one γ already.) The neglected
// term of the inverse at layer l is relatively O(γ D² e_l) = O(γ^{L−l+2}): O(γ²) for the target
// of layer L−1, inherited by every layer below it, so ΔW_l/η = −∂L/∂W_l (1 + O(γ²)) for l < L;
// zero for a piecewise-linear σ away from its kinks. The output layer's update is exact for any
// W. For non-orthogonal W the lower layers follow W⁻¹ instead of Wᵀ: not the gradient. R only
// penalises W Wᵀ off its diagonal and also shrinks the rows (d(W Wᵀ)_ii/dt = −8ηλ Σ_{j≠i}
// (W Wᵀ)_ij²): it makes rows orthogonal, not unit, and does not by itself keep W from singular.
//
// Phases from the schedule: "forward" and "target" (both required, no others).
//   forward  h relaxes; the targets follow h (τ_l = h_l, τ_0 = u at the phase start); W, b
//            constant.
//   target   h is held. At the phase start the forward pass is frozen — ā_l = W̄_l h_{l−1} + b̄_l,
//            σ'(ā_l), b̄_l, h_0 = ū and the LU factors of W̄_l, the weights that produced h — and
//            τ_L is set. The targets are defined relative to this frozen pass: had they used
//            weights that flow during the phase, τ_{l−1} − h_{l−1} would pick up a term
//            W_l(t)⁻¹((W̄_l − W_l(t)) h_{l−1} + b̄_l − b_l(t)), amplified by γ^{−(L−l+1)} in the
//            update (a weight flow without any output error). It also keeps every factorisation
//            out of the RHS.
//   mode "continuous": the targets relax, all layers in parallel,
//              τ_r τ̇_{l−1} = T_l(τ_l) − τ_{l−1}      (l = L … 1; τ_L constant)
//            and the weights flow at the update's rate per unit time, Ẇ_l = ΔW_l, ḃ_l = Δb_l
//            (the regulariser at the current W: a gradient flow of R).
//   mode "discrete": the paper's algorithm: all targets algebraically, top-down, at the phase
//            start; ΔW, Δb applied once when the phase ends (the segment's exit event, also at
//            t_end, or apply_update()).
// Every layer learns: W/<proj> and b/<pop> of all layers are in the state whatever the
// projections' `plastic` flag (η = 0 freezes them all).
// With a batch of B examples (h_l, τ_l: n×B) the forward pass, the frozen pass and the targets are
// per example, and ΔW_l, Δb_l (and the flows) are the batch means of the per-example updates.
// Metrics: loss L(h_L, y); accuracy and dataset_loss (sequences with targets, as costate's: the
// settled network on every pair, at the current weights); alignment/cosine/<proj> and
// alignment/norm_ratio/<proj>
// of ΔW_l/η (regulariser excluded) with −∂L/∂W_l of the frozen pass (ExactBackprop: on this
// DAG it settles exactly the forward pass), NaN outside target phases and without a target;
// orthogonality/<proj> = ‖W Wᵀ − I‖_F; forward_residual = max_l ‖h_l − σ(W_l h_{l−1} + b_l)‖_∞
// with the weights h is settled with (frozen during a target phase).
// Numerics: the update divides the target error by γ^{L−l+1}, so an unsettled forward pass
// (h_l − σ(ā_l), see metric forward_residual) and the solver's error on the targets enter ΔW_l
// amplified by γ^{−(L−l+1)}: settle the forward phase and choose tolerances well below γ^L.
// W̄ must be invertible and the argument of σ⁻¹ within σ's range (tanh, logistic, softplus);
// otherwise the targets are not finite and the run stops with a non-finite state.
// The RHS allocates nothing: LU solves with the frozen factors, per-layer scratch, coefficient-
// based products for the regulariser; layers are evaluated in parallel for large networks.
#include <Eigen/Core>
#include <Eigen/LU>
#include <optional>
#include <vector>

#include "models/backprop.hpp"
#include "sim/core/model.hpp"
#include "models/neurons.hpp"  // parallel_min_work, for_each_chunk
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

namespace lf {

class GaitpropModel final : public Model {
 public:
  // Holds `network` and `drive` by reference: both must outlive the model. Throws ConfigError
  // naming network.layers (not a chain of equal widths), network.activation (not invertible) or
  // input.phases (not exactly "forward" and "target").
  GaitpropModel(const Network& network, const GaitpropParams& params, const Drive& drive);

  std::string_view type() const override { return "gaitprop"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;
  void enter_segment(State& s, double t) const override;
  void leave_segment(State& s, double t) const override;
  void save_events(Snapshot& out) const override;
  void restore_events(const Snapshot& in) const override;
  std::vector<std::string> metric_names() const override;
  void metrics(const State& s, double t, std::span<double> out) const override;
  bool predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
               Eigen::Ref<Eigen::MatrixXd> outputs) const override;
  std::vector<ParameterArray> parameters(const State& s) const override;

  const GaitpropParams& params() const noexcept { return params_; }
  std::size_t depth() const noexcept { return depth_; }  // L
  // Views of layer l's blocks in state s (h: l >= 1, n×B; W, b: l >= 1; target: l >= 0, n×B).
  ConstBatchView h(const State& s, std::size_t l) const;
  ConstBatchView target(const State& s, std::size_t l) const;
  Eigen::Map<const RowMatrix> weights(const State& s, std::size_t l) const;
  Eigen::Map<const Eigen::VectorXd> bias(const State& s, std::size_t l) const;

  // Freezes the forward pass of state s with the input in force at t (what a target phase
  // starting at t does): ā_l, σ'(ā_l), b̄_l, h̄_{l−1} and the LU factors of W̄_l.
  void freeze_forward_pass(const State& s, double t) const;
  // T_l(τ_l) with the frozen pass and the held h_l of state s, into `out` (n×B).
  void incremental_target(const State& s, std::size_t l, const Eigen::Ref<const Eigen::MatrixXd>& tau,
                          Eigen::Ref<Eigen::MatrixXd> out) const;
  // The GAIT-prop estimate of −∂L/∂W_l and −∂L/∂b_l from the targets in s and the frozen pass
  // (ΔW_l/η and Δb_l/η without the regulariser; batch means).
  RowMatrix update_direction(const State& s, std::size_t l) const;
  Eigen::VectorXd bias_direction(const State& s, std::size_t l) const;
  // The discrete update: W_l += ΔW_l, b_l += Δb_l for every layer (needs a frozen pass).
  void apply_update(State& s) const;

  // Σ_{i≠j} (W Wᵀ)_ij² and its gradient 4 offdiag(W Wᵀ) W (R and ∇R for λ = 1).
  static double orthogonality_penalty(const Eigen::Ref<const RowMatrix>& w);
  static RowMatrix orthogonality_gradient(const Eigen::Ref<const RowMatrix>& w);

 private:
  BatchView target_mut(State& s, std::size_t l) const;
  // Current weights (one view per projection) and biases (per population) of state s.
  std::vector<WeightView> weight_views(const State& s) const;
  std::vector<Eigen::VectorXd> biases(const State& s) const;
  bool in_target_phase() const { return drive_->phase() == target_phase_; }
  // Sets τ_L = h_L − γ ∂L/∂h_L from the target in force (τ_L = h_L without one); discrete mode:
  // every τ_{l−1} below, algebraically.
  void set_targets(State& s) const;
  void forward_layer(const State& s, State& ds, const Eigen::MatrixXd& u, std::size_t l) const;
  void target_layer(const State& s, State& ds, std::size_t l) const;

  const Network* network_;
  GaitpropParams params_;
  const Drive* drive_;
  std::size_t depth_ = 0;
  Eigen::Index width_ = 0;
  Eigen::Index examples_ = 1;  // B
  std::size_t forward_phase_ = 0, target_phase_ = 0;
  StateLayout layout_;
  std::vector<BlockId> h_, target_, w_, b_;  // per layer (h_, w_, b_ at index 0 unused)
  std::vector<double> error_scale_;          // γ^{−(L−l+1)}
  ExactBackprop reference_;
  std::optional<std::size_t> patterns_;      // (input, target) pairs of a sequence, if any
  bool batch_accuracy_ = false;              // training runs: accuracy of the minibatch
  bool parallel_ = false;

  // The frozen forward pass of the current target phase, per layer l = 1 … L (per example: n×B).
  mutable bool frozen_ = false;
  mutable std::vector<Eigen::PartialPivLU<Eigen::MatrixXd>> lu_;
  mutable std::vector<RowMatrix> frozen_w_;
  mutable std::vector<Eigen::VectorXd> frozen_b_;      // per population (index 0: zeros)
  mutable std::vector<Eigen::MatrixXd> frozen_below_;  // h̄_{l−1} (ū for l = 1)
  mutable std::vector<Eigen::MatrixXd> frozen_d_;      // σ'(ā_l)
  mutable std::vector<Eigen::MatrixXd> frozen_gd2_;    // γ σ'(ā_l)²
  // RHS scratch, per layer (each layer touches only its own), n×B.
  mutable std::vector<Eigen::MatrixXd> pre_, arg_, delta_;
  mutable std::vector<RowMatrix> gram_, reg_;
};

}  // namespace lf
