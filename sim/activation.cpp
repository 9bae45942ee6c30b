#include "sim/activation.hpp"

#include <array>
#include <cmath>
#include <limits>

namespace lf {
namespace {

constexpr std::array<std::string_view, 7> names = {"tanh", "logistic", "relu", "leaky_relu",
                                                   "softplus", "linear", "asinh"};

// log(1 + e^a) without overflow for large a.
double softplus(double a) { return a > 30.0 ? a : std::log1p(std::exp(a)); }
double logistic(double a) { return 1.0 / (1.0 + std::exp(-a)); }

}  // namespace

bool parse_activation(std::string_view name, Activation& out) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      out = static_cast<Activation>(i);
      return true;
    }
  }
  return false;
}

std::string_view activation_name(Activation a) { return names[static_cast<std::size_t>(a)]; }
std::span<const std::string_view> activation_names() { return names; }

void activate(Activation f, Eigen::Ref<const Eigen::VectorXd> a, Eigen::Ref<Eigen::VectorXd> out) {
  switch (f) {
    case Activation::tanh: out = a.array().tanh(); break;
    case Activation::logistic: out = a.unaryExpr([](double v) { return logistic(v); }); break;
    case Activation::relu: out = a.array().max(0.0); break;
    case Activation::leaky_relu:
      out = a.unaryExpr([](double v) { return v > 0.0 ? v : leaky_relu_slope * v; });
      break;
    case Activation::softplus: out = a.unaryExpr([](double v) { return softplus(v); }); break;
    case Activation::linear: out = a; break;
    case Activation::asinh: out = a.unaryExpr([](double v) { return std::asinh(v); }); break;
  }
}

void activate_derivative(Activation f, Eigen::Ref<const Eigen::VectorXd> a,
                         Eigen::Ref<Eigen::VectorXd> out) {
  switch (f) {
    case Activation::tanh:
      out = a.unaryExpr([](double v) { const double th = std::tanh(v); return 1.0 - th * th; });
      break;
    case Activation::logistic:
      out = a.unaryExpr([](double v) { const double s = logistic(v); return s * (1.0 - s); });
      break;
    case Activation::relu: out = a.unaryExpr([](double v) { return v > 0.0 ? 1.0 : 0.0; }); break;
    case Activation::leaky_relu:
      out = a.unaryExpr([](double v) { return v > 0.0 ? 1.0 : leaky_relu_slope; });
      break;
    case Activation::softplus: out = a.unaryExpr([](double v) { return logistic(v); }); break;
    case Activation::linear: out.setOnes(); break;
    case Activation::asinh:
      out = a.unaryExpr([](double v) { return 1.0 / std::sqrt(1.0 + v * v); });
      break;
  }
}

bool invertible(Activation f) { return f != Activation::relu; }

void activate_inverse(Activation f, Eigen::Ref<const Eigen::VectorXd> y,
                      Eigen::Ref<Eigen::VectorXd> out) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  switch (f) {
    case Activation::tanh: out = y.unaryExpr([](double v) { return std::atanh(v); }); break;
    case Activation::logistic:
      out = y.unaryExpr([](double v) { return std::log(v / (1.0 - v)); });
      break;
    case Activation::relu: out.setConstant(nan); break;
    case Activation::leaky_relu:
      out = y.unaryExpr([](double v) { return v > 0.0 ? v : v / leaky_relu_slope; });
      break;
    case Activation::softplus:
      out = y.unaryExpr([](double v) { return v > 30.0 ? v : std::log(std::expm1(v)); });
      break;
    case Activation::linear: out = y; break;
    case Activation::asinh: out = y.unaryExpr([](double v) { return std::sinh(v); }); break;
  }
}

}  // namespace lf
