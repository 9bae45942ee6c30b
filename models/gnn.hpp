#pragma once
// Model "gnn" (Gori, Monfardini & Scarselli 2005; Scarselli et al., "The graph neural network
// model", IEEE TNN 2009), written as a diffusion learned by costates (Betti & Gori; DESIGN §4).
// Graph G = (V, E), directed edges u → v (an undirected edge is both), features l_v ∈ ℝ^p, node
// states x_v ∈ ℝ^s, ne(v) = {u : u → v}, α_v = 1/|ne(v)| (aggregate = "mean") or 1 ("sum"):
//   τ_x ẋ_v = −c x_v + F_v(x),   F_v(x) = α_v Σ_{u∈ne(v)} σ(a_vu),   a_vu = A x_u + B l_v + C l_u + b
//   o_v = σ_out(z_v),  z_v = W_out x_v + b_out            (read out at every node)
//   V = Σ_{v∈S} ℓ(o_v, y_v)                              (S: the train mask; ℓ: squared
//                                                         ½‖y − o‖² or cross_entropy −log softmax(o)_y)
//   e_u = −∂V/∂x_u = W_outᵀ (σ_out'(z_u) ⊙ ε_u),   ε_u = −∂ℓ/∂o_u (0 off S)
//   τ_λ λ̇_u = −c λ_u + Σ_{v: u∈ne(v)} α_v Aᵀ(σ'(a_vu) ⊙ λ_v) + e_u
//   γ Ȧ = Σ_v Σ_{u∈ne(v)} g_vu x_uᵀ − κA,   g_vu = α_v σ'(a_vu) ⊙ λ_v
//   γ Ḃ = Σ_v Σ_{u∈ne(v)} g_vu l_vᵀ − κB,   γ Ċ = Σ g_vu l_uᵀ − κC,   γ ḃ = Σ g_vu − κb
//   γ Ẇ_out = Σ_{v∈S} δ_v x_vᵀ − κW_out,   γ ḃ_out = Σ_{v∈S} δ_v − κ b_out,   δ_v = σ_out'(z_v) ⊙ ε_v
// Sign convention (the contract): λ is positive along −∂V/∂x. At a fixed point, c x = F(x) and
// (cI − Jᵀ) λ = e with J = ∂F/∂x, so λ is the Almeida–Pineda solution for any c > 0 and every flow
// above is −(1/γ)∂V/∂θ − (κ/γ)θ exactly: dV/dθ = −λᵀ ∂F/∂θ (implicit differentiation of c x = F).
// (With c = 1 the fixed point is Scarselli's x = F(x).)
//
// Contraction (Scarselli 2009, §III): the fixed point exists and is unique when x ↦ F(x)/c is a
// contraction. Row (v, r) of J = ∂F/∂x has the absolute sum
//   R_vr = α_v Σ_{u∈ne(v)} |σ'(a_vu)_r| Σ_k |A_rk|      (≤ max|σ'| ‖A‖_∞ for aggregate = "mean"),
// so max_vr R_vr / c (the metric `contraction_factor`) is the ℓ∞ operator norm of J/c: below 1,
// the map contracts in ℓ∞. With contraction = μ > 0 the weight flows also descend β P,
// P = Σ_vr max(0, R_vr − μ)² (β = contraction_weight), Scarselli's penalty on ‖∂F/∂x‖ above μ,
// by its total derivative at the fixed point (Scarselli et al. 2009 include P's dependence on x
// through the costate): the costate's source becomes e_u − β ∂P/∂x_u, with
//   ∂P/∂x_u = Σ_{v: u∈ne(v)} Aᵀ q_vu,   q_vu = α_v sign(σ'(a_vu)) ⊙ σ''(a_vu) ⊙ ‖A_r‖₁ ⊙ 2 max(0, R_v − μ)
// (= ∂P/∂a_vu), and the flows subtract β ∂P/∂θ (the partial gradient at fixed x). At the fixed
// point, (cI − Jᵀ)λ = e − β∂P/∂x and every flow is −(1/γ) d(V + βP)/dθ − (κ/γ)θ, x*(θ) included.
// learn = false: the weights are frozen (their blocks stay in the state with zero rate); at the
// end of a successful run the exact gradient d(V + βP)/dθ (dV/dθ without the penalty) at the
// fixed point of the final weights
// (Jacobi from the final x to max-norm change 1e-13, then (cI − Jᵀ)λ = e solved by sparse LU, or by
// the same fixed-point iteration when the system exceeds 4·10⁶ nonzeros) is written to
// /gradient/<param>. learn = true: metrics alignment/cosine/<param> compare the current flow
// γθ̇ with −d(V + κ|θ|²/2 + βP)/dθ at the fixed point of the current weights.
//
// mode = "discrete" (the reference: the original GNN training loop of Scarselli et al. 2009, in the
// same program and file format): nothing flows (the RHS is zero); at every unit of time after t0
// the model takes one gradient step, as an event of project() (called after every accepted step
// and idempotent at a given t: the count of steps taken is the state block steps/taken):
// x ← the Jacobi fixed point of the current weights (from the current x, to max-norm change
// 1e-13), λ ← the exact costate, θ ← θ − η (d(V + βP)/dθ + κθ). The x/nodes and lambda/nodes
// blocks hold the fixed point and costate of the current weights, so every sample shows the
// discrete model's state after floor(t − t0) steps.
//
// State (nodes are the batch axis, DESIGN §3): x/nodes and lambda/nodes [N × s] (one column per
// node), W/A [s, s], W/B [s, p], W/C [s, p], b/transition [s], W/readout [k, s], b/readout [k].
// The RHS: per-node GEMMs over fixed chunks of nodes and per-edge work by destination (forward)
// and by source (costate), each a disjoint output, in parallel with OpenMP; sums over nodes (the
// weight flows) on one thread. Bits do not depend on the thread count.
#include <Eigen/Core>
#include <memory>
#include <optional>
#include <vector>

#include "models/params.hpp"
#include "sim/core/graph.hpp"
#include "sim/core/input.hpp"
#include "sim/core/model.hpp"

namespace lf {

class GnnModel final : public Model {
 public:
  // The shared weights θ (A, B, C, b, W_out, b_out), also used for gradients and flows.
  struct Weights {
    RowMatrix A, B, C, W_out;
    Eigen::VectorXd b, b_out;
    // Every array flattened (row-major) in the order A, B, C, b, W_out, b_out.
    Eigen::VectorXd flat() const;
    void set_flat(const Eigen::Ref<const Eigen::VectorXd>& values);
  };
  // Parameter names in the file, in the order of Weights::flat.
  static const std::vector<std::string>& parameter_names();

  // Throws ConfigError when the graph is missing or the activations do not suit the model.
  // `seed` (network.seed) draws the initial weights, one stream per parameter array.
  GnnModel(const GnnParams& params, std::uint64_t seed, const Drive& drive);
  ~GnnModel() override;

  std::string_view type() const override { return "gnn"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;
  std::vector<std::string> metric_names() const override;
  void metrics(const State& s, double t, std::span<double> out) const override;
  std::vector<ParameterArray> parameters(const State& s) const override;
  std::vector<ParameterArray> description(const State& s) const override;
  std::vector<ParameterArray> results(const State& s) const override;
  bool project(State& s, double t) const override;
  // The backward wave on the graph (mode = "flow"): the run measures the arrival of λ at every
  // node in the first measured segment; node_waves writes it with the hop distances and the
  // fitted front speed (/waves/graph/...).
  std::vector<BlockId> node_wave_blocks() const override;
  NodeWaves node_waves(BlockId block, double segment_start, std::span<const double> arrivals) const override;
  // Hops from every node to the nearest supervised node along the direction errors travel (λ_u is
  // fed by λ_v for every edge u → v: breadth-first from S against the edges); −1 when none is
  // reachable.
  std::vector<Eigen::Index> hop_distance() const;

  const GnnParams& params() const noexcept { return params_; }
  const Graph& graph() const noexcept { return *params_.graph; }
  Eigen::Index nodes() const noexcept { return nodes_; }
  Eigen::Index state_size() const noexcept { return s_; }

  Weights weights(const State& s) const;
  void set_weights(State& s, const Weights& w) const;
  Eigen::MatrixXd node_states(const State& s) const;       // x, s × N
  Eigen::MatrixXd node_costates(const State& s) const;     // λ, s × N
  void set_node_states(State& s, const Eigen::Ref<const Eigen::MatrixXd>& x) const;

  // F(x) (s × N): the transition map.
  Eigen::MatrixXd transition(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  // The fixed point of x ↦ F(x)/c by Jacobi iteration from x0, to max-norm change < tolerance;
  // nullopt when it has not converged within max_iterations.
  std::optional<Eigen::MatrixXd> fixed_point(const Weights& w, Eigen::MatrixXd x0,
                                             double tolerance, long max_iterations) const;
  // V(x) (the loss over the train mask), the readout o (k × N), and node accuracy over a mask.
  double loss(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  Eigen::MatrixXd readout(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  double accuracy(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x,
                  const std::vector<std::uint8_t>& mask) const;
  // The costates λ solving (cI − Jᵀ)λ = e − β ∂P/∂x at x (exact; see the header comment for the
  // method; β = 0 without the penalty).
  Eigen::MatrixXd exact_costate(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  // The λ-terms of the flows at (x, λ): what γθ̇ + κθ is without the penalty. At the fixed
  // point with λ = exact_costate it is −dV/dθ (with the penalty: −d(V + βP)/dθ + β ∂P/∂θ).
  Weights costate_flow(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x,
                       const Eigen::Ref<const Eigen::MatrixXd>& lambda) const;
  // d(V + βP)/dθ at the fixed point x of weights w, the total derivative (x*(θ) included):
  // −costate_flow with the exact costate, plus β ∂P/∂θ (β = 0 without the penalty).
  Weights exact_gradient(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  // The row sums R_vr of |J| (s × N), the penalty P at x and its partial gradient ∂P/∂θ.
  Eigen::MatrixXd jacobian_row_sums(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  double penalty(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  Weights penalty_gradient(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const;
  // The total flow γθ̇ of the state s (what the RHS integrates when learn = true).
  Weights weight_flow(const State& s) const;

  struct Workspace;  // the RHS's scratch (models/gnn.cpp)

 private:
  void forward(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x, Workspace& ws) const;
  void readout_error(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x, Workspace& ws) const;
  // From per-edge vectors g (s × E, edges in incoming order): M (sums by source), K (sums by
  // destination).
  void gather(const Eigen::MatrixXd& g, Eigen::MatrixXd& by_source, Eigen::MatrixXd& by_destination) const;
  // Outer products of the flows from (M, K, Δ): into `out` (A, B, C, b, W_out, b_out), replacing.
  void outer_flows(const Eigen::MatrixXd& by_source, const Eigen::MatrixXd& by_destination,
                   const Eigen::MatrixXd* delta, const Eigen::Ref<const Eigen::MatrixXd>& x,
                   Weights& out) const;
  void penalty_terms(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x, Workspace& ws,
                     bool gradient) const;
  // e ← e − β ∂P/∂x (after penalty_terms with the gradient).
  void penalty_source(const Weights& w, Workspace& ws) const;
  void weights_into(const State& s, Weights& w) const;
  // Discrete mode: x, λ of state s ← the fixed point and exact costate of its weights; false
  // when Jacobi does not converge (x, λ are then NaN, which stops the run as non-finite).
  bool settle(State& s) const;

  GnnParams params_;
  const Drive* drive_;  // unused: a gnn run has no input signal (kept for the common signature)
  std::uint64_t seed_ = 1;
  Eigen::Index nodes_ = 0, s_ = 0, p_ = 0, k_ = 0, edges_ = 0;
  EdgeIndex incoming_, outgoing_;
  std::vector<Eigen::Index> in_position_;  // edge e → its column in the incoming order
  std::vector<Eigen::Index> in_source_;    // incoming position j → the source u of its edge
  std::vector<Eigen::Index> in_target_;    // incoming position j → the destination v
  Eigen::VectorXd alpha_;                  // α_v
  Eigen::MatrixXd features_;               // L, p × N
  Eigen::MatrixXd targets_;                // one-hot labels, k × N
  std::vector<Eigen::Index> supervised_;   // S, increasing
  StateLayout layout_;
  std::optional<BlockId> steps_;           // discrete mode: steps/taken [1]
  BlockId x_ = 0, lambda_ = 0, A_ = 0, B_ = 0, C_ = 0, b_ = 0, W_out_ = 0, b_out_ = 0;
  std::unique_ptr<Workspace> rhs_workspace_;  // scratch only: no result carried between calls
};

}  // namespace lf
