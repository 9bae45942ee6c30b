#pragma once
// Neuron activations σ and their derivatives σ', applied elementwise.
#include <Eigen/Core>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lf {

// Default slope of leaky_relu for negative arguments.
inline constexpr double leaky_relu_slope = 0.01;

// A population's activation: its kind and, for leaky_relu, the slope for negative arguments
// (network.leaky_slope). Compares with a kind directly: `f == Activation::tanh`.
struct Activation {
  enum Kind { tanh, logistic, relu, leaky_relu, softplus, linear, asinh, hard_sigmoid };
  Kind kind = tanh;
  double slope = leaky_relu_slope;  // leaky_relu only: σ(a) = slope·a for a <= 0

  constexpr Activation(Kind k = tanh, double negative_slope = leaky_relu_slope)  // NOLINT: implicit
      : kind(k), slope(negative_slope) {}
  friend constexpr bool operator==(Activation a, Kind k) { return a.kind == k; }
  friend constexpr bool operator==(Activation a, Activation b) {
    return a.kind == b.kind && (a.kind != leaky_relu || a.slope == b.slope);
  }
};

// Parses an activation name; returns false when the name is unknown.
bool parse_activation(std::string_view name, Activation& out);
std::string_view activation_name(Activation a);
std::span<const std::string_view> activation_names();

// out = σ(a), elementwise, for a vector or an n×B batch (column by column: the same operations
// on every column, whatever B). `a` and `out` may alias. tanh is vectorised: within 2 ulp of
// std::tanh.
void activate(Activation f, Eigen::Ref<const Eigen::MatrixXd> a, Eigen::Ref<Eigen::MatrixXd> out);
// out = σ'(a), elementwise.
void activate_derivative(Activation f, Eigen::Ref<const Eigen::MatrixXd> a,
                         Eigen::Ref<Eigen::MatrixXd> out);
// out = σ''(a), elementwise (the holonomic model's constraint curvature). relu and leaky_relu
// are not C² (σ'' is a Dirac mass at 0): 0 is returned away from the kink, and models that need
// σ'' reject them (C2 below).
void activate_second_derivative(Activation f, Eigen::Ref<const Eigen::MatrixXd> a,
                                Eigen::Ref<Eigen::MatrixXd> out);
// Whether σ is twice continuously differentiable (all but relu and leaky_relu).
constexpr bool twice_differentiable(Activation f) {
  return f.kind != Activation::relu && f.kind != Activation::leaky_relu;
}
// sigma = σ(a) and derivative = σ'(a) together (`a` may alias `sigma`), with the same bits as the
// two calls above; tanh and logistic take σ' from σ (1 − σ², σ(1 − σ)) instead of evaluating
// σ twice.
void activate_with_derivative(Activation f, Eigen::Ref<const Eigen::MatrixXd> a,
                              Eigen::Ref<Eigen::MatrixXd> sigma,
                              Eigen::Ref<Eigen::MatrixXd> derivative);

// Whether σ is invertible on its range (all but relu and hard_sigmoid), and out = σ⁻¹(y) elementwise. For y
// outside the range (|y| >= 1 for tanh, y <= 0 for softplus, …) the result is not finite.
bool invertible(Activation f);
void activate_inverse(Activation f, Eigen::Ref<const Eigen::MatrixXd> y,
                      Eigen::Ref<Eigen::MatrixXd> out);

// The tanh kernels this CPU can run, baseline first; `activate` uses the last. They give the same
// bits (each lane goes through the same IEEE operations); exposed so that tests can check that.
struct TanhKernel {
  std::string_view name;
  void (*apply)(const double* a, double* out, Eigen::Index n);
};
std::vector<TanhKernel> tanh_kernels();

}  // namespace lf
