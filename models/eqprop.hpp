#pragma once
// Model "eqprop" (Scellier & Bengio, "Equilibrium propagation: bridging the gap between
// energy-based models and backpropagation", Front. Comput. Neurosci. 2017; DESIGN §4): neurons on
// an undirected graph with symmetric weights (W_ij = W_ji, W_ii = 0), input neurons clamped to x,
// states u of the other ("free") neurons, activation ρ per population:
//   energy     E(u) = ½ Σ_i u_i² − ½ Σ_{i≠j} W_ij ρ(u_i) ρ(u_j) − Σ_i b_i ρ(u_i)
//              (sums over free neurons; a clamped input j enters as ρ(u_j) = x_j, its raw value,
//              as in every learnflow model)
//   cost       C(u) = ½ ‖y − u_out‖²,     total energy F = E + β C
//   relaxation τ u̇ = −∂F/∂u = ρ'(u) ⊙ (W ρ(u) + b) − u + β (y − u_out) on the outputs
//   update     ΔW_ij = (η/β) (ρ(u_i^β) ρ(u_j^β) − ρ(u_i^0) ρ(u_j^0)),  Δb_i = (η/β) (ρ(u_i^β) − ρ(u_i^0))
// EP theorem: −dC(u⁰(θ))/dθ = lim_{β→0} (1/β)(∂F/∂θ(u⁰) − ∂F/∂θ(u^β)), and ∂F/∂W_ij = −ρ_i ρ_j,
// ∂F/∂b_i = −ρ_i: ΔW/η is −dC/dW at the free fixed point up to O(β) (one-sided) or O(β²)
// (symmetric: (ρρ(u^{+β}) − ρρ(u^{−β}))/(2β)).
//
// hard_sigmoid (ρ = clip(u, 0, 1), the paper's choice). Its ρ' jumps at 0 and 1, and the literal
// flow above has a sliding mode at u_i = 1 (above 1: u̇ = −u ≈ −1; below: u̇ = a_i − u > 0 when
// a_i = (Wρ + b)_i > 1) that makes an adaptive solver chatter with steps of the tolerance's size.
// So a hard_sigmoid population relaxes by the projected form (Xia & Wang's projection network)
//   τ u̇ = clip(u − ∂F/∂u, 0, 1) − u = clip(a, 0, 1) − u,   a = W ρ(u) + b (+ β (y − u) on outputs)
// which keeps u in [0, 1] (where ρ(u) = u, as the paper clips its states), equals −∂F/∂u wherever
// the clip is inactive, is Lipschitz, and has the same fixed points (u = clip(a): the KKT points of
// F on the box). F is non-increasing along it: with c = clip(a_i) and g_i = ∂F/∂u_i = u_i − a_i,
//   g_i u̇_i τ = (u_i − a_i)(c − u_i) = −(u_i − c)² + (a_i − c)(u_i − c) ≤ −(u_i − c)² ≤ 0,
// since (a_i − c)(u_i − c) ≤ 0 for u_i in [0, 1] (c is the projection of a_i onto [0, 1]).
// The linearisation at a fixed point is −H on the active neurons (0 < a_i < 1) and −1 on the
// saturated ones, which stay put: the EP theorem and the transient below hold with H restricted
// to the active set, and the exact gradient treats saturated neurons as ρ' = 0.
// Allowed activations: hard_sigmoid, logistic, tanh (bounded ρ, so E is bounded below and every
// relaxation converges); others are rejected (relu, leaky_relu are not C¹; unbounded ρ lets E
// fall without bound).
//
// Graph. One weight array per undirected connection, used in both directions (W and Wᵀ):
//   layered shorthand (layers = [n0, n1, …]): each consecutive pair of layers, named after the
//     upper layer (W/layer1 …), as every model names them;
//   a general graph ([[network.projection]]): every projection between free populations must be
//     `symmetric = true` with its reverse (also symmetric): the pair is one connection, stored
//     under the name of the projection declared first (the reverse is its transpose), and a
//     symmetric self-projection is a symmetric W with a zero diagonal (intra-population lateral
//     connections). Projections from input populations are one-way (inputs are clamped).
//   Dense projections only (no edge lists). Every connection and every free bias learns (the
//   `plastic` flag is ignored, as for gaitprop; η = 0 freezes them).
//
// Phases from the schedule: "free" and "nudged" (both required, no others).
//   free    β = 0: u relaxes to u⁰ (weights constant).
//   nudged  β > 0: u continues from u⁰ (no reset) and relaxes to u^β. At the phase start the
//           free state (u⁰ and the parameters it was settled with) is stored as event state.
//           symmetric = true: the state carries a second copy of the free neurons, u_minus/<pop>,
//           set to u⁰ at the phase start and relaxing with −β side by side with u at +β (the two
//           relaxations of the symmetric estimate start from the same u⁰ and are independent,
//           so running them together equals running −β then +β); it is held in the free phase.
//   update "discrete": at the end of the nudged phase (the segment's exit event, also at t_end)
//           ΔW, Δb as above (symmetric: (η/2β)(ρρ(u^{+β}) − ρρ(u^{−β}))), batch means; nothing
//           without a target in force.
//   update "flow" (continual EP, Ernoult et al. 2020): during the nudged phase the parameters
//           flow, Ẇ_ij = (η/β) d/dt[ρ(u_i) ρ(u_j)] = (η/β)(ρ'_i u̇_i ρ_j + ρ_i ρ'_j u̇_j),
//           ḃ_i = (η/β) ρ'_i u̇_i (symmetric: the ± difference over 2β), batch means. Integrated
//           over the phase, W(T) − W(t₀) = (η/β)(ρρ(u(T)) − ρρ(u⁰)) exactly: as η → 0 (u no
//           longer feels the moving weights) the flow's total is the discrete update.
// With a batch of B examples u is n×B (one column per example) and updates are batch means.
//
// Metrics (every sample): energy E and total_energy F (with the β in force on u: 0 in the free
// phase), loss C, batch means; alignment/cosine/<connection> and alignment/norm_ratio/<connection>
// of the EP estimate (ΔW/η if the nudged phase ended now, from u and the stored u⁰) with −dC/dW at
// the stored free state, by recurrent backprop (implicit differentiation):
//   H = ∂²E/∂u² = diag(1 − ρ''(u) ⊙ a) − diag(ρ'(u)) W diag(ρ'(u))     (a = Wρ + b, free neurons)
//   λ = H⁻¹ ∂C/∂u,   dC/dW_ij = ρ'_i λ_i ρ_j + ρ_i ρ'_j λ_j,   dC/db_i = ρ'_i λ_i
// (a dense solve over all free neurons: NaN above 2000 of them; NaN in the free phase and without
// a target); accuracy and dataset_loss (sequences with targets: every pair settled at the current
// weights) or accuracy of the minibatch (data sets).
// predict settles the free phase (dopri5 at tolerance 1e-5 to max |τu̇| < 1e-4, at most 200 τ) from u = 0:
// enough for the argmax and the loss to ~1e-4; one example at a time (each with its own step size:
// 7× faster than chunks of 1000 on the digits).
// The RHS allocates nothing and runs on one thread (OpenMP-free): its bits do not depend on the
// thread count. Eigen's products are single-threaded (EIGEN_DONT_PARALLELIZE).
#include <Eigen/Core>
#include <optional>
#include <vector>

#include "models/neurons.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/model.hpp"
#include "sim/core/network.hpp"

namespace lf {

class EqpropModel final : public Model {
 public:
  // One undirected connection: projection `projection` (from → to), its weights W (to × from)
  // acting as W on `to` and Wᵀ on `from` (unless `from` is an input or the connection is a
  // self-connection).
  struct Connection {
    std::size_t projection;
    std::size_t from, to;
    bool self = false;
    bool input_source = false;
    BlockId w = 0;
  };
  // Pointers to a parameter set's values: W of each connection (row-major) and b of each
  // population (nullptr for inputs).
  struct Parameters {
    std::vector<const double*> w;
    std::vector<const double*> b;
  };

  // Holds `network` and `drive` by reference: both must outlive the model. Throws ConfigError
  // naming the key of an asymmetric, self-connected or sparse projection, of an activation that
  // is not hard_sigmoid, logistic or tanh, or input.phases / train.phases (not exactly "free"
  // and "nudged").
  EqpropModel(const Network& network, const EqpropParams& params, const Drive& drive);

  std::string_view type() const override { return "eqprop"; }
  // Every state stays bounded (u ∈ [0, 1] for hard_sigmoid; |u| ≤ sup|ρ'|(‖W‖ sup|ρ| + |b|) + β
  // otherwise) and each phase at fixed parameters is a gradient flow of F, bounded below: no
  // relaxation runs away. A nudged phase's residual rises while the nudge spreads from the
  // outputs, which the generic divergence check would flag.
  bool relaxations_bounded() const override { return true; }
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

  const EqpropParams& params() const noexcept { return params_; }
  const std::vector<Connection>& connections() const noexcept { return connections_; }
  Eigen::Index neurons() const noexcept { return index_.neurons(); }  // free neurons N
  Parameters parameters_of(const State& s) const;
  // The free neurons of state s (N×B, populations stacked in declaration order): u, or u_minus.
  Eigen::MatrixXd free_state(const State& s, bool minus = false) const;
  void set_free_state(State& s, const Eigen::Ref<const Eigen::MatrixXd>& u, bool minus = false) const;

  // τ u̇ for the free neurons u (N×B) at parameters p, input x (n_in×B) and nudging β toward y
  // (outputs×B; ignored when nullptr or β = 0), into du (N×B) — without the 1/τ.
  void flow(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
            const Eigen::Ref<const Eigen::MatrixXd>& u, double beta, const Eigen::MatrixXd* y,
            Eigen::Ref<Eigen::MatrixXd> du) const;
  // E(u) per example (1×B) and C(u) per example.
  Eigen::RowVectorXd energy(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                            const Eigen::Ref<const Eigen::MatrixXd>& u) const;
  Eigen::RowVectorXd cost(const Eigen::Ref<const Eigen::MatrixXd>& u, const Eigen::MatrixXd& y) const;
  // Relaxes u (N×B) under flow(p, x, β, y) with dopri5 at tolerance `tol` until max |τ u̇| < `residual`
  // or for at most t_max; returns the state reached.
  Eigen::MatrixXd relax(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                        Eigen::MatrixXd u, double beta, const Eigen::MatrixXd* y, double tol,
                        double residual, double t_max) const;
  // ρ(u) of the free neurons (N×B).
  Eigen::MatrixXd rho(const Eigen::Ref<const Eigen::MatrixXd>& u) const;
  // The EP estimate of −dC/dW per connection (row-major, flattened) and −dC/db per free neuron,
  // batch means: (ρρ(u⁺) − ρρ(u⁻))/(β⁺ − β⁻) with u⁻ = u⁰ and β⁻ = 0 for the one-sided estimate.
  struct Direction {
    std::vector<Eigen::VectorXd> weights;  // per connection
    Eigen::VectorXd biases;                // N
  };
  Direction ep_direction(const Eigen::Ref<const Eigen::MatrixXd>& x,
                         const Eigen::Ref<const Eigen::MatrixXd>& u_plus,
                         const Eigen::Ref<const Eigen::MatrixXd>& u_minus, double beta_span) const;
  // −dC/dθ at the free fixed point u (N×B) by recurrent backprop, batch means (NaN above 2000
  // free neurons).
  Direction exact_direction(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                            const Eigen::Ref<const Eigen::MatrixXd>& u, const Eigen::MatrixXd& y) const;
  // H = ∂²E/∂u² of example b at u (N×N), as used by exact_direction.
  Eigen::MatrixXd hessian(const Parameters& p, const Eigen::Ref<const Eigen::VectorXd>& x,
                          const Eigen::Ref<const Eigen::VectorXd>& u) const;

 private:
  bool in_nudged() const { return drive_->phase() == nudged_phase_; }
  bool hard(std::size_t p) const { return network_->populations[p].activation == Activation::hard_sigmoid; }
  // The rows of input population p within the input vector.
  Eigen::Index input_offset(std::size_t p) const { return input_offset_[p]; }
  // flow() with the scratch given (r, dr, a: N×B), allocation-free.
  void flow_into(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                 const Eigen::Ref<const Eigen::MatrixXd>& u, double beta, const Eigen::MatrixXd* y,
                 Eigen::Ref<Eigen::MatrixXd> r, Eigen::Ref<Eigen::MatrixXd> dr,
                 Eigen::Ref<Eigen::MatrixXd> a, Eigen::Ref<Eigen::MatrixXd> du) const;
  // Points p (sized by the constructor) at the parameters of state s: no allocation.
  void point_at(const State& s, Parameters& p) const;
  // a = W ρ + b of the free neurons (N×B) into `a`, with ρ of the free neurons given.
  void drive_of(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                const Eigen::Ref<const Eigen::MatrixXd>& r, Eigen::Ref<Eigen::MatrixXd> a) const;
  void rho_and_derivative(const Eigen::Ref<const Eigen::MatrixXd>& u, Eigen::Ref<Eigen::MatrixXd> r,
                          Eigen::Ref<Eigen::MatrixXd> dr) const;
  // The discrete update at the end of a nudged phase.
  void apply_update(State& s, double t) const;
  // Continual EP: Ẇ, ḃ into ds from ρ, ρ' and τu̇ of u (and of u_minus, symmetric).
  void flow_parameters(State& ds, const Eigen::MatrixXd& x) const;

  const Network* network_;
  EqpropParams params_;
  const Drive* drive_;
  Eigen::Index examples_ = 1;
  std::size_t free_phase_ = 0, nudged_phase_ = 0;
  StateLayout layout_;
  NeuronIndex index_;                   // u/<pop>
  std::optional<NeuronIndex> minus_;    // u_minus/<pop> (symmetric)
  std::vector<Connection> connections_;
  std::vector<std::optional<BlockId>> bias_;  // per population
  std::vector<Eigen::Index> input_offset_;    // per population (−1 for free ones)
  std::vector<std::ptrdiff_t> connection_of_;  // per projection: its connection (−1: reverse)
  Eigen::Index inputs_ = 0;
  std::optional<std::size_t> patterns_;
  bool batch_accuracy_ = false;

  // Event state: the state at the end of the last free phase (u⁰ and the parameters it was
  // settled with), stored when a nudged phase starts.
  mutable bool free_stored_ = false;
  mutable State free_state_;
  // Cache (recomputed with the same bits from free_state_): −dC/dθ at the stored free state.
  mutable std::optional<Direction> exact_;
  // RHS scratch: parameter pointers, and N×B matrices.
  mutable Parameters rhs_params_;
  mutable Eigen::MatrixXd u_, r_, dr_, a_, du_, u_minus_, r_minus_, dr_minus_, du_minus_;
};

}  // namespace lf
