// Activations: known values, and derivatives against central finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "sim/activation.hpp"

using namespace lf;

TEST_CASE("activations: values and derivatives") {
  Eigen::VectorXd a(7);
  a << -3.0, -0.7, -1e-3, 0.2, 0.9, 2.5, 40.0;
  for (const std::string_view name : activation_names()) {
    CAPTURE(name);
    Activation f{};
    REQUIRE(parse_activation(name, f));
    CHECK(activation_name(f) == name);
    Eigen::VectorXd y(7), dy(7), up(7), down(7);
    activate(f, a, y);
    activate_derivative(f, a, dy);
    // Central differences: error O(h²)·|σ'''| ≈ 1e-10 with h = 1e-5, plus rounding ε/h ≈ 1e-11.
    const double h = 1e-5;
    activate(f, (a.array() + h).matrix(), up);
    activate(f, (a.array() - h).matrix(), down);
    const Eigen::VectorXd fd = (up - down) / (2 * h);
    for (Eigen::Index i = 0; i < a.size(); ++i) CHECK(dy[i] == doctest::Approx(fd[i]).epsilon(1e-7));
    if (invertible(f) && f != Activation::logistic && f != Activation::tanh) {
      Eigen::VectorXd back(7);
      activate_inverse(f, y, back);  // σ⁻¹(σ(a)) = a (tanh, logistic saturate at a = 40)
      for (Eigen::Index i = 0; i < a.size(); ++i) CHECK(back[i] == doctest::Approx(a[i]).epsilon(1e-12));
    }
    if (f == Activation::tanh || f == Activation::logistic) {
      Eigen::VectorXd back(6);
      activate_inverse(f, y.head(6), back);
      for (Eigen::Index i = 0; i < 6; ++i) CHECK(back[i] == doctest::Approx(a[i]).epsilon(1e-9));
    }
  }
  Eigen::VectorXd y(7);
  activate(Activation::logistic, a, y);
  CHECK(y[3] == doctest::Approx(1.0 / (1.0 + std::exp(-0.2))));
  activate(Activation::softplus, a, y);
  CHECK(y[6] == 40.0);  // large arguments: no overflow, log(1 + e^a) = a to double precision
  activate(Activation::leaky_relu, a, y);
  CHECK(y[0] == -3.0 * leaky_relu_slope);
  Activation unknown{};
  CHECK_FALSE(parse_activation("sigmoid", unknown));
}
