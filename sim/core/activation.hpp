#pragma once
// Neuron activations σ and their derivatives σ', applied elementwise.
#include <Eigen/Core>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lf {

enum class Activation { tanh, logistic, relu, leaky_relu, softplus, linear, asinh };

// Slope of leaky_relu for negative arguments.
inline constexpr double leaky_relu_slope = 0.01;

// Parses an activation name; returns false when the name is unknown.
bool parse_activation(std::string_view name, Activation& out);
std::string_view activation_name(Activation a);
std::span<const std::string_view> activation_names();

// out = σ(a), elementwise. `a` and `out` may alias. tanh is vectorised: within 2 ulp of std::tanh.
void activate(Activation f, Eigen::Ref<const Eigen::VectorXd> a, Eigen::Ref<Eigen::VectorXd> out);
// out = σ'(a), elementwise.
void activate_derivative(Activation f, Eigen::Ref<const Eigen::VectorXd> a,
                         Eigen::Ref<Eigen::VectorXd> out);

// Whether σ is invertible on its range (all but relu), and out = σ⁻¹(y) elementwise. For y
// outside the range (|y| >= 1 for tanh, y <= 0 for softplus, …) the result is not finite.
bool invertible(Activation f);
void activate_inverse(Activation f, Eigen::Ref<const Eigen::VectorXd> y,
                      Eigen::Ref<Eigen::VectorXd> out);

// The tanh kernels this CPU can run, baseline first; `activate` uses the last. They give the same
// bits (each lane goes through the same IEEE operations); exposed so that tests can check that.
struct TanhKernel {
  std::string_view name;
  void (*apply)(const double* a, double* out, Eigen::Index n);
};
std::vector<TanhKernel> tanh_kernels();

}  // namespace lf
