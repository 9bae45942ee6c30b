#pragma once
// Validated parameters of each model, as plain data. A model's parameters are parsed and checked
// in models/registry.cpp and used by the model's constructor.
#include <string>
#include <variant>

namespace lf {

// leaky: τ ẋ = −c x + σ(W x + b + u)   (DESIGN §4)
struct LeakyParams {
  double c = 1.0;    // leak rate (dimensionless), > 0
  double tau = 1.0;  // time constant τ of x (time units), > 0
};

// The loss V of the output populations and its error e = −∂V/∂x_out.
enum class Loss {
  squared,        // V = ½‖y − x‖²,              e = y − x
  cross_entropy,  // V = −Σ y log softmax(x),    e = y − softmax(x)
};

enum class CostateMode {
  diffusion,  // λ forward in time, stable and local: τ_λ λ̇ = −c λ + Wᵀ(σ'(a) ⊙ λ) + e
  adjoint,    // x forward over [t0, T], then the Pontryagin costate backward from λ(T) = 0
};

// costate (Betti & Gori): τ_x ẋ = −c x + σ(a);  τ_λ λ̇ = −c λ + Wᵀ(σ'(a) ⊙ λ) + e;
// γ ẇ_jk = λ_j σ'(a_j) x_k − κ w_jk on plastic projections; γ ḃ_j = λ_j σ'(a_j) − κ b_j.
struct CostateParams {
  double c = 1.0;           // leak of x and λ (dimensionless), > 0
  double tau_x = 1.0;       // time constant of x (time units), > 0
  double tau_lambda = 1.0;  // time constant of λ (time units), > 0
  double gamma = 1.0;       // inverse learning rate of the weight flow (time units), > 0
  double kappa = 0.0;       // weight decay κ (dimensionless), >= 0
  bool plastic_bias = true; // biases of populations with plastic inputs flow too
  Loss loss = Loss::squared;
  CostateMode mode = CostateMode::diffusion;
};

using ModelParams = std::variant<LeakyParams, CostateParams>;

// The model's registered name ("leaky", "costate", …).
std::string model_type(const ModelParams& params);

}  // namespace lf
