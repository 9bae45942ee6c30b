#pragma once
// Model "costate" (Betti & Gori; DESIGN §4): neuron states x, Lagrange-multiplier costates λ that
// carry the output error backwards as a wave ("backprop diffusion"), and weights that flow while
// both relax, on any digraph:
//     τ_x ẋ_p = −c x_p + σ(a_p),                      a_p = b_p + Σ_{q→p} W_q x_from(q)
//     τ_λ λ̇_p = −c λ_p + Σ_{q: p→r} W_qᵀ(σ'(a_r) ⊙ λ_r) + e_p,   e = −∂V/∂x on outputs
//     γ Ẇ_q  = (σ'(a_to) ⊙ λ_to) x_fromᵀ − κ W_q     (plastic projections)
//     γ ḃ_p  = σ'(a_p) ⊙ λ_p − κ b_p                 (plastic biases)
// With a batch of B examples (x_p, λ_p: n_p×B), x and λ follow these equations per example and
// the flows are the batch means, γ Ẇ_q = (1/B) Σ_b (σ'(a_b) ⊙ λ_b) x_bᵀ − κ W_q (likewise ḃ).
// At the fixed point with c = 1, λ is the backprop error and γẆ = −∂V/∂W (backprop on a DAG,
// recurrent backprop on a cyclic graph).
//
// Inertia (issue 13; the masses of the talk's action ∫ ϖ(t) ((m_x/2)|ẋ|² + (m_W/2)|Ẇ|²) dt + ∫ F dt):
//     m_W Ẅ_q + γ Ẇ_q = (σ'(a_to) ⊙ λ_to) x_fromᵀ − κ W_q      (batch mean; biases likewise)
//     τ_λ λ̇_p = −c λ_p + Σ_{q: p→r} W_qᵀ(σ'(a_r) ⊙ λ_r) + e_p + m_x ẍ_p
//     ẍ_p = d/dt ẋ_p = (−c ẋ_p + σ'(a_p) ⊙ ȧ_p) / τ_x,   ȧ_p = ḃ_p + Σ_{q→p} (Ẇ_q x_from + W_q ẋ_from)
// with ẋ_from = u̇ for an input population. m_W > 0 adds the velocities Ẇ, ḃ as state blocks
// "Wdot/<projection>", "bdot/<population>" (Ẇ(0) = 0). m_W = m_x = 0 is the model above, bit for bit.
// Derivation, in the project's convention (λ is the multiplier of the Pontryagin/adjoint form,
// positive along −∂V/∂x at rest, DESIGN §4; G = τ_x ẋ + c x − σ(a) is the neuron constraint).
// Neurons: the Euler–Lagrange equation of x for ℒ_x = (m_x/2)|ẋ|² + V(x) + λᵀG,
// d/dt ∂ℒ_x/∂ẋ = ∂ℒ_x/∂x, is
//     m_x ẍ + τ_x λ̇ = −e + c λ − Wᵀ(σ'(a) ⊙ λ)   ⇔   −τ_x λ̇ = −c λ + Wᵀ(σ'(a) ⊙ λ) + e + m_x ẍ:
// the exact adjoint (backward in time from λ(T) = 0) plus the neurons' inertial force m_x ẍ. The
// diffusion form integrates this right-hand side forward in time (Betti & Gori's reversal,
// τ_x → τ_λ), which is the costate equation above; ẍ = 0 at rest, so the settled λ is still
// backprop's. Weights: the minimised action's own equation, d/dt(m_W Ẇ) = κW − (σ'⊙λ)xᵀ, climbs
// the loss (every minimum of ∫(T + V) is a saddle of the dynamics: ../shared/notes/holonomic.md
// §2), so the weights take the mechanical sign: ℒ_W = ϖ(t)[(m_W/2)|Ẇ|² − (κ/2)|W|² + λᵀσ(a)],
// a particle in the potential (κ/2)|W|² − λᵀσ(a), whose force (σ'⊙λ)xᵀ − κW is −∂V/∂W − κW at
// the fixed point. With the talk's dissipation ϖ(t) = e^{θt}, d/dt(ϖ m_W Ẇ) = ϖ((σ'⊙λ)xᵀ − κW)
// divided by ϖ is m_W Ẅ + m_W θ Ẇ = (σ'⊙λ)xᵀ − κW: the friction is γ = m_W θ. The limit m_W → 0
// at fixed γ (θ = γ/m_W → ∞, strong dissipation) is the overdamped flow γẆ = (σ'⊙λ)xᵀ − κW of
// the model without masses; the massive weights start at rest instead of at that flow's
// velocity, and the trajectories differ by O(m_W/γ) (the initial layer of width m_W/γ).
// Checked in tests/test_inertia.cpp: the damped particle's closed form, the O(m_W) limit, m_x ẍ
// against finite differences of ẋ along the flow, and the settled λ against backprop.
#include <optional>
#include <vector>

#include "models/backprop.hpp"
#include "sim/core/model.hpp"
#include "models/neurons.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

namespace lf {

class CostateModel final : public Model {
 public:
  // Holds `network` and `drive` by reference: both must outlive the model.
  CostateModel(const Network& network, const CostateParams& params, const Drive& drive);

  std::string_view type() const override { return "costate"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;
  std::vector<std::string> metric_names() const override;
  void metrics(const State& s, double t, std::span<double> out) const override;
  bool predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
               Eigen::Ref<Eigen::MatrixXd> outputs) const override;
  std::vector<ParameterArray> parameters(const State& s) const override;

  const CostateParams& params() const noexcept { return params_; }
  const NeuronIndex& neurons() const noexcept { return x_; }
  const NeuronIndex& costates() const noexcept { return lambda_; }
  // Current weights of every projection and biases of every population in state s.
  std::vector<WeightView> weights(const State& s) const;
  std::vector<Eigen::VectorXd> biases(const State& s) const;
  // The weight flow dW_q/dt of every projection in state s (whether plastic or not), in the
  // layout of the weight values: the quantity compared with −(1/γ)∂V/∂W.
  std::vector<Eigen::VectorXd> weight_flow(const State& s, double t) const;
  const ExactBackprop& reference() const noexcept { return reference_; }

 private:
  struct WeightChunk {
    std::size_t projection;
    Eigen::Index row_begin, row_end;
  };

  WeightView weight_view(const State& s, std::size_t k) const;
  Eigen::Map<const Eigen::VectorXd> bias_view(const State& s, std::size_t p) const;
  // e = −∂V/∂x of the output neurons into error_ (zero without a target).
  void output_error(const State& s) const;

  const Network* network_;
  CostateParams params_;
  const Drive* drive_;
  StateLayout layout_;
  NeuronIndex x_;        // blocks x/<pop>
  NeuronIndex lambda_;   // blocks lambda/<pop>
  PlasticParameters learned_;  // blocks W/<proj>, b/<pop>
  std::vector<WeightChunk> weight_chunks_;
  std::vector<NeuronIndex::RowChunk> bias_chunks_;
  // m_W > 0: the velocities Ẇ_q, ḃ_p (blocks Wdot/<proj>, bdot/<pop>), indexed like learned_'s.
  std::vector<std::optional<BlockId>> weight_velocity_, bias_velocity_;
  ExactBackprop reference_;
  std::optional<std::size_t> accuracy_patterns_;  // number of (input, target) pairs, if any
  bool batch_accuracy_ = false;                    // training runs: accuracy of the minibatch
  bool parallel_ = false;
  // Scratch indexed like the neurons (neurons × B), and the outputs (outputs × B).
  mutable Eigen::MatrixXd activation_, derivative_, delta_, error_, output_x_, output_e_;
  mutable Eigen::MatrixXd activation_rate_;  // m_x > 0: ȧ (neurons × B)
  mutable State metric_ds_;
};

}  // namespace lf
