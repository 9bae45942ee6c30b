#pragma once
// Validated parameters of each model, as plain data. A model's parameters are parsed and checked
// in models/registry.cpp and used by the model's constructor.
#include <memory>
#include <string>
#include <variant>

#include "sim/core/activation.hpp"

namespace lf {

// leaky: τ ẋ = −c x + σ(W x + b + u)   (DESIGN §4)
struct LeakyParams {
  double c = 1.0;    // leak rate (dimensionless), > 0
  double tau = 1.0;  // time constant τ of x (time units), > 0
};

// The loss V of the output populations and its error e = −∂V/∂x_out.
enum class Loss {
  squared,        // V = ½‖y − x‖²,              e = y − x
  cross_entropy,  // V = −Σ y log softmax(x),    e = y − (Σ y) softmax(x)
};

enum class CostateMode {
  diffusion,  // λ forward in time, stable and local: τ_λ λ̇ = −c λ + Wᵀ(σ'(a) ⊙ λ) + e
  adjoint,    // x forward over [t0, T], then the Pontryagin costate backward from λ(T) = 0
};

// costate (Betti & Gori): τ_x ẋ = −c x + σ(a);  τ_λ λ̇ = −c λ + Wᵀ(σ'(a) ⊙ λ) + e + m_x ẍ;
// m_W ẅ_jk + γ ẇ_jk = λ_j σ'(a_j) x_k − κ w_jk on plastic projections (biases likewise);
// m_W = m_x = 0 (the defaults): the overdamped flow γ ẇ_jk = λ_j σ'(a_j) x_k − κ w_jk.
struct CostateParams {
  double c = 1.0;           // leak of x and λ (dimensionless), > 0
  double tau_x = 1.0;       // time constant of x (time units), > 0
  double tau_lambda = 1.0;  // time constant of λ (time units), > 0
  double gamma = 1.0;       // inverse learning rate of the weight flow (time units), > 0
  double kappa = 0.0;       // weight decay κ (dimensionless), >= 0
  double m_w = 0.0;         // mass m_W of the weights and biases (time units²), >= 0; diffusion only
  double m_x = 0.0;         // mass m_x of the neurons in the costate (time units²), >= 0; diffusion only
  bool plastic_bias = true; // biases of populations with plastic inputs flow too
  Loss loss = Loss::squared;
  CostateMode mode = CostateMode::diffusion;
};

// dtp (Bengio 2020): see models/dtp.hpp for the equations.
enum class TargetCorrection { decoder_output, decoder_input };
enum class DtpUpdate { none, dtp1, dtp, flow };
enum class DecoderKind { pinv, random, exact };
struct DtpParams {
  double tau_h = 1.0;        // time constant of the forward pass h (time units), > 0
  double tau_r = 1.0;        // time constant of the target relaxation (time units), > 0
  double beta = 0.1;         // output nudging τ_L = h_L − β ∂L/∂h_L (dimensionless), > 0
  TargetCorrection correction = TargetCorrection::decoder_output;
  int iterations = 0;        // > 0: discrete relaxation, K iterations at the phase start
  DtpUpdate update = DtpUpdate::dtp1;
  double eta = 1.0;          // learning rate of the updates (DTP1 with η = 1 lands on τ), >= 0
  double decay = 0.0;        // γ of the online flow Ẇ = −γ W + η τ̇ nᵀ (1/time), >= 0
  DecoderKind decoders = DecoderKind::pinv;  // Ω_l = W_l⁺ (+ noise), random, or exact f_l⁻¹
  double decoder_noise = 0.0;  // std of the noise added to Ω_l, times 1/sqrt(n_l), >= 0
  double decoder_rate = 0.0;   // η_Ω of the reconstruction flow (1/time), >= 0; 0: fixed Ω
  Loss loss = Loss::squared;
};

// gaitprop (Ahmad, van Gerven & Ambrogioni 2020): see models/gaitprop.hpp for the equations.
enum class GaitpropMode {
  continuous,  // targets relax (τ_r τ̇ = T(τ) − τ) and weights flow during the target phase
  discrete,    // targets computed at the phase start, ΔW applied when the phase ends
};
struct GaitpropParams {
  double tau_h = 1.0;        // time constant of the forward pass h (time units), > 0
  double tau_r = 1.0;        // time constant of the target relaxation (time units), > 0
  double gamma = 0.1;        // target step γ: τ_L = h_L − γ ∂L/∂h_L (dimensionless), > 0
  double eta = 0.01;         // learning rate η: per update (discrete), per time unit (continuous), >= 0
  double lambda_orth = 0.0;  // weight λ of the regulariser λ Σ_{i≠j} (W Wᵀ)_ij² (dimensionless), >= 0
  GaitpropMode mode = GaitpropMode::continuous;
  Loss loss = Loss::squared;
};

// backprop: discrete minibatch SGD on the settled network — the baseline every continuous model is
// compared with (models/backprop_sgd.hpp). At the start of every presentation (a minibatch, or a
// sequence vector) of plastic projections and biases: W ← W + η (−∂(mean V)/∂W − κ W).
struct BackpropParams {
  double eta = 0.1;          // learning rate per step (dimensionless), >= 0; costate: η = present/γ
  double kappa = 0.0;        // weight decay κ, as costate's (dimensionless), >= 0
  bool plastic_bias = true;  // biases of populations with plastic inputs learn too
  Loss loss = Loss::squared;
};

// eqprop (Scellier & Bengio 2017): see models/eqprop.hpp for the equations.
enum class EqpropUpdate {
  discrete,  // ΔW, Δb applied once when the nudged phase ends
  flow,      // continual EP: Ẇ = (η/β) d/dt[ρ(u_i) ρ(u_j)] during the nudged phase
};
struct EqpropParams {
  double beta = 0.5;        // nudging strength β of F = E + β C (dimensionless), > 0
  bool symmetric = false;   // nudge at −β and +β (two relaxations side by side), update over 2β
  double eta = 0.1;         // learning rate η per update (discrete) or per unit of ρρ change (flow), >= 0
  EqpropUpdate update = EqpropUpdate::discrete;
  double tau = 1.0;         // time constant τ of the states u (time units), > 0
};

// holonomic (the talk's Lagrangian learning with holonomic constraints; models/holonomic.hpp):
// neurons and weights are particles of masses m_x, m_W; x_j = σ(a_j) is a constraint whose
// reaction λ_j comes from an instantaneous SPD linear system.
enum class HolonomicSign {
  mechanics,  // L = ϖT − V (stationary action): the force is −∇V, a heavy ball that descends
  minimum,    // the slides' minimised ∫ϖT + V: the force is +∇V, unstable forward in time
};
enum class HolonomicDissipation {
  kinetic,  // ϖ = e^{θt} on the kinetic term only (the slides): the force decays like e^{−θt}
  whole,    // ϖ on the whole Lagrangian: friction θ, no annealing
};
enum class HolonomicStabilization {
  project,    // after every accepted step: forward pass, then a mass-weighted velocity projection
  baumgarte,  // G̈ + 2α Ġ + α² G = 0 in the λ system
  none,       // G̈ = 0 only (index-reduced DAE: G and Ġ drift at the integration error)
};
enum class HolonomicPatterns {
  stream,  // the schedule's input in force (one pattern at a time)
  batch,   // every vector of the input sequence at once, as the columns x_κ sharing W
};
enum class HolonomicSolver {
  dense,  // assemble M_λ and factor it with Eigen's LLT: O((nB)³) per solve
  block,  // block-tridiagonal Cholesky over the layers of a layered network (the note §1.4)
  cg,     // matrix-free conjugate gradients with a Jacobi preconditioner, to cg_tolerance
};
enum class HolonomicInputSwitch {
  impact,  // x jumps to the new forward pass, the velocities are projected (inelastic impact)
  ramp,    // u(t) moves from the old to the new value along a C² ramp of width ramp_width
};
struct HolonomicParams {
  double m_x = 1.0;    // mass of every non-input neuron (time units²), >= 0; 0: the reduced mode
  double m_w = 1.0;    // mass of every plastic weight and bias (time units²), > 0
  double theta = 0.0;  // dissipation rate θ of ϖ(t) = e^{θt} (1/time), >= 0
  double alpha = 5.0;  // Baumgarte rate α (1/time), > 0; stabilize = "baumgarte" only
  HolonomicSign sign = HolonomicSign::mechanics;
  HolonomicDissipation dissipation = HolonomicDissipation::kinetic;
  HolonomicStabilization stabilize = HolonomicStabilization::project;
  HolonomicPatterns patterns = HolonomicPatterns::stream;
  HolonomicInputSwitch input_switch = HolonomicInputSwitch::impact;
  double ramp_width = 0.1;   // width of the input ramps (time units), > 0; input_switch = "ramp"
  bool plastic_bias = true;  // biases of populations with plastic inputs are coordinates too
  Loss loss = Loss::squared;
  HolonomicSolver solver = HolonomicSolver::dense;  // how M_λ λ̃ = r is solved
  double cg_tolerance = 1e-12;  // relative residual ‖r − M_λ λ̃‖/‖r‖ of solver = "cg", > 0
};

// gnn (Gori & Scarselli's graph neural network as a diffusion; models/gnn.hpp): node states
// relaxing through one shared transition network, costates and weight flows local in space and time.
struct Graph;  // sim/core/graph.hpp
enum class GnnAggregate {
  mean,  // α_v = 1/|ne(v)|
  sum,   // α_v = 1
};
enum class GnnMode {
  flow,      // one ODE: x, λ and (learn = true) the weights flow together
  discrete,  // the reference (Scarselli 2009): Jacobi to the fixed point, Almeida–Pineda, a
             // gradient step of size η at every unit of time
};
struct GnnParams {
  long state = 4;             // size s of every node's state x_v, > 0
  double c = 1.0;             // leak of x and λ (dimensionless), > 0
  double tau_x = 1.0;         // time constant of x (time units), > 0
  double tau_lambda = 1.0;    // time constant of λ (time units), > 0
  double gamma = 1.0;         // inverse learning rate of the weight flow (time units), > 0
  double kappa = 0.0;         // weight decay κ (dimensionless), >= 0
  Activation activation = Activation::tanh;            // transition σ
  Activation output_activation = Activation::linear;   // readout σ_out
  Loss loss = Loss::cross_entropy;
  GnnAggregate aggregate = GnnAggregate::mean;
  bool learn = true;          // false: frozen weights, /gradient written at the end
  double contraction = 0.0;   // μ of the penalty Σ max(0, ‖∂F/∂x‖ column sums − μ)²; 0: none
  double contraction_weight = 1.0;  // β multiplying the penalty in the weight flow, >= 0
  GnnMode mode = GnnMode::flow;
  double eta = 0.5;           // discrete mode: gradient step size per unit of time, >= 0
  // network.init: the shared weights are drawn N(0, scale²/fan_in) ("normal"), with the same
  // variance from a uniform law ("uniform"), or zero; biases zero or N(0, bias_scale²).
  std::string init_weights = "normal";
  double init_scale = 1.0;
  std::string init_bias = "zeros";
  double init_bias_scale = 1.0;
  std::shared_ptr<const Graph> graph;  // the [graph] table, read by sim/graph_config.cpp
};

using ModelParams = std::variant<LeakyParams, CostateParams, DtpParams, GaitpropParams, BackpropParams,
                                 EqpropParams, HolonomicParams, GnnParams>;

// The model's registered name ("leaky", "costate", …).
std::string model_type(const ModelParams& params);

}  // namespace lf
