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

using ModelParams = std::variant<LeakyParams>;

// The model's registered name ("leaky", …).
std::string model_type(const ModelParams& params);

}  // namespace lf
