#pragma once
// Model "holonomic" (Gori, NeurIPS 2019 talk, "Formulation of Learning", "Feedforward Networks
// (DAGs)", "Reduction to Backpropagation"; derivation and checks: ../shared/notes/holonomic.md):
// learning as the motion of particles under holonomic constraints, on a DAG.
//
// Coordinates q = (x, W, b): the outputs x_j of the non-input neurons (n×B, one column per
// pattern), the plastic weights and biases; the inputs are clamped to the schedule's u(t) and are
// not coordinates. Masses m_x (each neuron) and m_W (each weight, bias). Constraints, one per
// neuron and pattern:   G_jκ = x_jκ − σ(a_jκ),   a_jκ = Σ_k w_jk x_kκ + b_j   (inputs: x = u(t)).
// With ϖ(t) = e^{θt} and the reaction λ̃ = λ/ϖ (stored; λ itself grows like ϖ), the
// Euler–Lagrange equations (1)–(2) of the note divided by ϖ are
//     m_x ẍ = φ f_x − G_xᵀ λ̃ − θ m_x ẋ,        f_x = −s ∂V/∂x = s e on the outputs
//     m_W Ẅ = −G_Wᵀ λ̃ − θ m_W Ẇ = Σ_κ (σ'(a_κ) ⊙ λ̃_κ) x_κ,fromᵀ − θ m_W Ẇ   (biases: Σ_κ σ'⊙λ̃)
// with s = +1 for sign = "mechanics" (L = ϖT − V: the force −∇V; default) and s = −1 for
// "minimum" (the slides' minimised ∫ϖT + V: the force +∇V, unstable, §2.1), φ = e^{−θt} for
// dissipation = "kinetic" (ϖ on T only: the force anneals) and φ = 1 for "whole" (ϖ on the whole
// Lagrangian: friction θ only). V = Σ_κ V(x_κ,out, y_κ) sums the patterns; e = −∂V/∂x.
// G_x = I − D W̃ (D = diag σ'(a), W̃ the weights among non-inputs) is unit lower-triangular in
// topological order, G_W the derivatives by the parameters (row j: −σ'(a_j) x_pre, −σ'(a_j)).
// λ̃ keeps G̈ = 0 (differentiate G twice, substitute ẍ, Ẅ): the SPD system (4)
//     (G_x G_xᵀ/m_x + G_W G_Wᵀ/m_W) λ̃ = G_x φ f_x/m_x − θ (Ġ − G_t) + Q  [+ 2α Ġ + α² G]
//     Q = −σ''(a) ⊙ ȧ² − σ'(a) ⊙ (2 Ẇ ẋ_all + W_in ü),  ȧ = W ẋ_all + Ẇ x_all + ḃ,  G_t = −σ' ⊙ W_in u̇
// (ẋ_all: ẋ with u̇ on the input rows; the bracket only with stabilize = "baumgarte"). G_W G_Wᵀ is
// diagonal for one pattern (σ'(a_j)²(‖x_pre‖² + 1)) and has a B×B Gram block per neuron for B
// patterns. The matrix is assembled densely and factored by Eigen's LLT: O((nB)³) per RHS for n
// non-input neurons, fine up to nB ≈ 300 (a 2-2-1 XOR: 3×4 = 12); a block-tridiagonal or CG
// solve is the way to larger nets (not done).
// Sign convention: with s = +1, λ̃ → the project's backprop error −∂V/∂x (DESIGN §4) as m_x → 0:
// G_xᵀ λ̃ = φ e is back-substitution, and the weight force (σ'⊙λ̃) xᵀ = −φ ∂V/∂W (descent); the
// talk's chain writes it T δ = −V_x with T = G_xᵀ, δ = λ̃.
// m_x = 0 (the reduced mode, §1.6): x is the forward pass and ẋ its derivative along Ẇ (blocks
// kept for the output, recomputed, not integrated), λ̃ = G_x⁻ᵀ φ s e by one backward sweep
// (backprop), and W is the heavy ball m_W Ẅ = −φ s ∂V/∂W − θ m_W Ẇ.
// No waves (§1.5): on a DAG x = f(W, u(t)) on the constraint manifold; m_x only adds the metric
// m_x JᵀJ (J = ∂x/∂W) to the weights' mass: Ẅ = (m_W I + m_x JᵀJ)⁻¹ (−s∇V) at rest.
//
// Stabilisation (§2.4): the equations enforce only G̈ = 0. stabilize = "project" (default): after
// every accepted step (Model::project; the integration loop restarts the stepper) x becomes the
// forward pass of the current W (exactly G = 0, a sweep in topological order) and the velocities
// are projected, mass-weighted, onto Ġ = 0: [ẋ; Ẇ] −= M⁻¹ G_qᵀ μ, M_λ μ = Ġ (one more LLT).
// At every input switch (enter_segment) the same projection is an inelastic impact: x jumps to
// the new forward pass and the velocities lose their component off the new tangent space
// (input_switch = "impact"). input_switch = "ramp" instead moves the input from the previous
// segment's value to the new one along u_old + S(z)(u_new − u_old), z = (t − t_k)/ramp_width,
// S = z³(10 − 15z + 6z²), within the first ramp_width of the segment: u is C², x and ẋ are
// continuous at the switch, and the impact there changes nothing (up to round-off). The ramp is a
// function of the time and the schedule only (no event state).
// Energy (§4 H6): Ẽ = T + s φ V, T = ½ m_x |ẋ|² + ½ m_W |Ẇ|², obeys
//     dẼ/dt = −2θT − λ̃·(G_q q̇) + s φ̇ V = −2θT + λ̃·G_t + s φ̇ V on the manifold
// (φ̇ = −θφ for "kinetic", 0 for "whole"; targets are constant within a segment). The block
// energy/budget integrates it and books the jumps of Ẽ at projections, impacts and target
// switches, so /metrics/power_balance = Ẽ − budget stays at the integration error.
#include <optional>
#include <vector>

#include <Eigen/Cholesky>

#include "models/backprop.hpp"
#include "models/neurons.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/model.hpp"
#include "sim/core/network.hpp"

namespace lf {

class HolonomicModel final : public Model {
 public:
  // Holds `network` and `drive` by reference: both must outlive the model. Throws ConfigError for
  // a cyclic graph, an activation that is not C², or patterns = "batch" without a sequence.
  HolonomicModel(const Network& network, const HolonomicParams& params, const Drive& drive);

  std::string_view type() const override { return "holonomic"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;
  bool project(State& s, double t) const override;
  void enter_segment(State& s, double t) const override;
  void leave_segment(State& s, double t) const override;
  std::vector<std::string> metric_names() const override;
  void metrics(const State& s, double t, std::span<double> out) const override;
  bool predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
               Eigen::Ref<Eigen::MatrixXd> outputs) const override;
  std::vector<ParameterArray> parameters(const State& s) const override;

  const HolonomicParams& params() const noexcept { return params_; }
  const NeuronIndex& neurons() const noexcept { return x_; }
  const ExactBackprop& reference() const noexcept { return reference_; }
  std::vector<WeightView> weights(const State& s) const { return learned_.weights(layout_, s); }
  std::vector<Eigen::VectorXd> biases(const State& s) const { return learned_.biases(layout_, s); }
  Eigen::Index patterns() const noexcept { return x_.examples(); }

  // What one evaluation of the equations gives at (s, t), for tests and metrics (n×B matrices
  // indexed like neurons(): rows offset(p) … of population p).
  struct Evaluation {
    Eigen::MatrixXd x, xdot, a, lambda;          // x, ẋ (the forward pass in the reduced mode)
    Eigen::MatrixXd constraint, constraint_rate;  // G, Ġ
    Eigen::MatrixXd xddot;                        // ẍ (full mode; the reduced mode: empty)
    Eigen::MatrixXd lambda_matrix;                // M_λ (nB×nB; reduced mode: G_x G_xᵀ)
    std::vector<Eigen::VectorXd> weight_force;    // −G_Wᵀλ̃ per projection (values' layout; 0 if fixed)
    std::vector<Eigen::VectorXd> bias_force;      // per population (empty for inputs)
    double kinetic = 0.0, potential = 0.0;        // T and V (summed over the patterns)
    double energy = 0.0, power = 0.0;             // Ẽ and dẼ/dt
  };
  Evaluation evaluate(const State& s, double t) const;

 private:
  // The scratch of one evaluation (sized once; the RHS allocates nothing).
  void compute(const State& s, double t, bool derived) const;
  void gather(const State& s, double t) const;
  void forward_pass() const;          // x_ ← σ(a) in topological order, from W and u
  void forward_rates() const;         // ẋ ← σ'(a) ⊙ ȧ in topological order, from Ẇ, u̇
  void activations() const;           // a, σ(a), σ'(a), σ''(a) from the gathered x
  void assemble_lambda_matrix() const;
  void backward_sweep() const;        // λ̃ ← G_x⁻ᵀ (φ f) (reduced mode)
  void project_velocities() const;    // [ẋ; Ẇ] −= M⁻¹G_qᵀμ, M_λ μ = Ġ (uses the factor of M_λ)
  void write_coordinates(State& s) const;  // x, ẋ, Ẇ, ḃ scratch → state
  // T, V (Σ over the patterns) and Ẽ = T + s φ V of the gathered state.
  double kinetic_now() const;
  double potential_now() const;
  double energy_now() const;
  bool targets(Eigen::MatrixXd& y) const;

  const Network* network_;
  HolonomicParams params_;
  const Drive* drive_;
  StateLayout layout_;
  NeuronIndex x_, xdot_, lambda_;   // blocks x/<pop>, xdot/<pop>, lambda/<pop>
  PlasticParameters learned_;       // blocks W/<proj>, b/<pop>
  std::vector<std::optional<BlockId>> weight_velocity_, bias_velocity_;  // Wdot/<proj>, bdot/<pop>
  BlockId budget_;                  // energy/budget: ∫ dẼ/dt dt plus the booked jumps
  ExactBackprop reference_;
  std::vector<std::size_t> order_;  // non-input populations in topological order
  std::vector<Eigen::Index> input_offset_;  // rows of input population p in u (−1: not input)
  Eigen::Index n_ = 0, n_in_ = 0, patterns_ = 1;
  Eigen::MatrixXd batch_inputs_, batch_targets_;  // patterns = "batch": the sequence, n×K
  bool has_batch_targets_ = false;
  double sign_ = 1.0;             // s
  Eigen::MatrixXd plastic_mask_;  // n × (n + n_in): 1 where w_jk is a coordinate
  Eigen::VectorXd bias_mask_;     // n: 1 where b_j is a coordinate

  // Scratch: the state gathered into dense matrices over all non-input (rows) and all neurons
  // (columns: non-inputs, then inputs), and the quantities of the equations.
  mutable Eigen::MatrixXd w_, wdot_;                 // n × (n + n_in)
  mutable Eigen::VectorXd b_, bdot_;                 // n
  mutable Eigen::MatrixXd x_all_, xdot_all_;         // (n + n_in) × B
  mutable Eigen::MatrixXd u_acc_;                    // ü, n_in × B
  mutable Eigen::MatrixXd ramp_from_;                // input_switch = "ramp": the previous input
  mutable Eigen::MatrixXd a_, sigma_, d1_, d2_, adot_, g_, gdot_, gt_, q_, force_, rhs_, lambda_x_,
      xddot_, tmp_, y_, e_out_, x_out_;
  mutable Eigen::MatrixXd weight_force_;             // n × (n + n_in)
  mutable Eigen::MatrixXd m_lambda_, g_x_, gram_;    // nB × nB, n × n, B × B
  mutable Eigen::VectorXd solve_;                    // nB
  mutable Eigen::LLT<Eigen::MatrixXd> llt_;
  mutable double phi_ = 1.0;
  mutable bool has_target_ = false;
  mutable State scratch_ds_;
};

}  // namespace lf
