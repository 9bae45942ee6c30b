// Activations: known values, and derivatives against central finite differences.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "sim/core/activation.hpp"

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

// tanh is vectorised (sim/activation.cpp, after Cephes). Oracle: tanhl, where long double is wider
// than double: at most 1.5 ulp from the exact value (Cephes' rational and exp are good to ~1 ulp,
// plus the final rounding). Against std::tanh, which is itself up to ~1.5 ulp off on this sweep
// (glibc), at most 2 ulp: ≈ 4.4e-16 relative at worst, just above 0.5, where an ulp is largest
// relative to the value.
TEST_CASE("activations: vectorised tanh against std::tanh") {
  std::vector<double> args;
  for (double x = -20.0; x <= 20.0; x += 1.0 / 4096.0 + 1e-9) args.push_back(x);  // dense sweep
  for (double x = 0.6; x <= 0.7; x += 1e-7) args.push_back(x);  // around the branch at 0.625
  for (double m = 1e-300; m < 1.0; m *= 1.7) {                  // tiny to moderate magnitudes
    args.push_back(m);
    args.push_back(-m);
  }
  const Eigen::Map<const Eigen::VectorXd> a(args.data(), static_cast<Eigen::Index>(args.size()));
  Eigen::VectorXd y(a.size());
  activate(Activation::tanh, a, y);
  auto ulp = [](double v) { return std::nextafter(std::abs(v), HUGE_VAL) - std::abs(v); };
  double worst_ulps = 0.0, worst_exact_ulps = 0.0;
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    const double reference = std::tanh(a[i]);
    worst_ulps = std::max(worst_ulps, std::abs(y[i] - reference) / ulp(reference));
    if constexpr (std::numeric_limits<long double>::digits > 60) {  // x87 or quad: a finer oracle
      const long double exact = std::tanh(static_cast<long double>(a[i]));
      worst_exact_ulps = std::max(
          worst_exact_ulps,
          static_cast<double>(std::abs(static_cast<long double>(y[i]) - exact) / ulp(reference)));
    }
  }
  CHECK(worst_ulps <= 2.0);
  CHECK(worst_exact_ulps <= 1.5);

  // Odd to the bit, and each value independent of its position (tails of odd length included).
  Eigen::VectorXd minus_y(a.size());
  activate(Activation::tanh, -a, minus_y);
  CHECK((minus_y.array() == -y.array()).all());
  for (Eigen::Index n : {1, 3, 5}) {
    Eigen::VectorXd part(n);
    activate(Activation::tanh, a.segment(7, n), part);
    CHECK((part.array() == y.segment(7, n).array()).all());
  }

  Eigen::VectorXd special(6), out(6);
  special << -0.0, 0.0, HUGE_VAL, -HUGE_VAL, 800.0, std::numeric_limits<double>::quiet_NaN();
  activate(Activation::tanh, special, out);
  CHECK((out[0] == 0.0 && std::signbit(out[0])));
  CHECK((out[1] == 0.0 && !std::signbit(out[1])));
  CHECK(out[2] == 1.0);
  CHECK(out[3] == -1.0);
  CHECK(out[4] == 1.0);
  CHECK(std::isnan(out[5]));  // a non-finite state must stay visible (DESIGN §8)
}

// The kernels are chosen at run time by the CPU (2-lane baseline, 4-lane AVX2); a run must give the
// same bits on either, so every kernel this CPU has must match the baseline bit for bit, tails
// of every length included.
TEST_CASE("activations: every tanh kernel gives the baseline's bits") {
  std::vector<double> args;
  for (double x = -25.0; x <= 25.0; x += 1.0 / 1024.0 + 1e-9) args.push_back(x);
  for (double x = 0.62; x <= 0.63; x += 1e-6) args.push_back(x);
  for (double m = 1e-300; m < 1.0; m *= 1.9) args.push_back(-m);
  args.insert(args.end(), {0.0, -0.0, HUGE_VAL, -HUGE_VAL, std::numeric_limits<double>::quiet_NaN()});
  const auto kernels = tanh_kernels();
  REQUIRE(!kernels.empty());
  CHECK(kernels.front().name == "baseline");
  const auto n = static_cast<Eigen::Index>(args.size());
  std::vector<double> reference(args.size());
  kernels.front().apply(args.data(), reference.data(), n);
  auto same_bits = [](double u, double v) { return std::memcmp(&u, &v, sizeof u) == 0; };
  for (const TanhKernel& kernel : kernels) {
    CAPTURE(kernel.name);
    std::vector<double> out(args.size());
    kernel.apply(args.data(), out.data(), n);
    long mismatches = 0;
    for (std::size_t i = 0; i < args.size(); ++i) mismatches += !same_bits(out[i], reference[i]);
    CHECK(mismatches == 0);
    for (Eigen::Index len = 1; len <= 9; ++len) {  // tails: each value depends only on its argument
      std::vector<double> part(static_cast<std::size_t>(len));
      kernel.apply(args.data() + 101, part.data(), len);
      for (Eigen::Index k = 0; k < len; ++k) CHECK(same_bits(part[k], reference[101 + k]));
    }
  }
  MESSAGE("tanh kernels on this CPU: " << kernels.size() << " (last: " << kernels.back().name << ")");
}

TEST_CASE("activations: σ'' against central differences of σ' (the C² activations)") {
  // Central differences of σ' with step h: error h²σ''''/6 + ε|σ'|/h, about 1e-10 at h = 1e-5.
  Eigen::MatrixXd a(6, 2);
  a << -3.0, -0.7, -1e-3, 0.2, 0.9, 2.5, -1.5, 0.05, 0.4, -2.2, 1.7, 3.3;
  const double h = 1e-5;
  for (const std::string_view name : activation_names()) {
    CAPTURE(name);
    Activation f{};
    REQUIRE(parse_activation(name, f));
    if (!twice_differentiable(f)) {
      CHECK((name == "relu" || name == "leaky_relu"));
      continue;
    }
    Eigen::MatrixXd d2(6, 2), plus(6, 2), minus(6, 2);
    activate_second_derivative(f, a, d2);
    activate_derivative(f, (a.array() + h).matrix(), plus);
    activate_derivative(f, (a.array() - h).matrix(), minus);
    const Eigen::MatrixXd fd = (plus - minus) / (2 * h);
    CHECK((d2 - fd).cwiseAbs().maxCoeff() <= 1e-9);
  }
}
