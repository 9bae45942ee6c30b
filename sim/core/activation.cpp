#include "sim/core/activation.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace lf {
namespace {

// hard_sigmoid (Scellier & Bengio 2017): σ(a) = clip(a, 0, 1), σ'(a) = 1 on (0, 1) and 0 outside
// (also at the kinks 0 and 1); not invertible (constant outside [0, 1]).
constexpr std::array<std::string_view, 8> names = {"tanh", "logistic", "relu", "leaky_relu",
                                                   "softplus", "linear", "asinh", "hard_sigmoid"};

// tanh of doubles, several at a time (Eigen 3.4 has no packet tanh for double; std::tanh per
// element took ~16% of a leaky RHS). GCC/Clang vector extensions: SSE2 or AVX2 on x86-64, NEON on
// AArch64. The algorithm is Cephes' tanh (S. L. Moshier): for |x| < 0.625,
// |x| + |x|³·P(x²)/Q(x²); above, 1 − 2/(e^{2|x|} + 1), with Cephes' exp (the Padé form Eigen's
// pexp also uses) but a cheaper 2^n: n = round(2|x|/ln 2) by the 1.5·2⁵² trick (needs
// round-to-nearest and no -ffast-math), and 2^n built in the exponent bits (2|x| is capped at 40,
// where tanh is 1 to double precision, so 0 <= n <= 58). Both branches are computed and one is
// selected per lane; the two share their last division. (Folding the exp's division into that
// one saves ~7% of the time but costs accuracy: 1.504 ulp from tanhl.) Error: <= 1.5 ulp
// (measured against tanhl), <= 2 ulp from glibc's std::tanh; the sign is put back last (tanh is
// odd), so −0 gives −0, NaN stays NaN and ±inf gives ±1.
//
// Every lane goes through the same IEEE operations (no FMA: none is enabled, and ISO C++ mode
// does not contract), so the 2-lane baseline kernel and the 4-lane AVX2 kernel, chosen at run
// time by what the CPU supports, give the same bits (tested).
// In place (a reference, not a vector by value: no ABI question for the AVX2 width).
template <class Doubles, class Integers>
[[gnu::always_inline]] inline void tanh_lanes(Doubles& x) {
  const Integers sign_bit = Integers{} + std::numeric_limits<std::int64_t>::min();
  const Integers sign = reinterpret_cast<Integers>(x) & sign_bit;
  const Doubles ax = reinterpret_cast<Doubles>(reinterpret_cast<Integers>(x) & ~sign_bit);
  const Doubles x2 = x * x;
  const Doubles p = (-9.64399179425052238628e-1 * x2 - 9.92877231001918586564e1) * x2
                    - 1.61468768441708447952e3;
  const Doubles q = ((x2 + 1.12811678491632931402e2) * x2 + 2.23548839060100448583e3) * x2
                    + 4.84406305325125486048e3;
  // y = n ln 2 + g (ln 2 in two parts).
  const Doubles y = ax + ax > 40.0 ? Doubles{} + 40.0 : ax + ax;  // NaN stays NaN
  const Doubles round = Doubles{} + 6755399441055744.0;            // 1.5·2⁵²
  const Doubles shifted = y * 1.4426950408889634073599 + round;    // n in the low mantissa bits
  const Doubles n = shifted - round;
  const Doubles two_to_n =
      reinterpret_cast<Doubles>((reinterpret_cast<Integers>(shifted) + 1023) << 52);
  const Doubles g = (y - n * 0.693145751953125) - n * 1.42860682030941723212e-6;
  const Doubles g2 = g * g;
  const Doubles pe = ((1.26177193074810590878e-4 * g2 + 3.02994407707441961300e-2) * g2
                      + 9.99999999999999999910e-1) * g;
  const Doubles qe = ((3.00198505138664455042e-6 * g2 + 2.52448340349684104192e-3) * g2
                      + 2.27265548208155028766e-1) * g2 + 2.00000000000000000009e0;
  const Doubles exp_y = two_to_n * (1.0 + (pe + pe) / (qe - pe));
  // Both branches as a + b·(num/den).
  const Integers small = ax < 0.625;
  const Doubles a = small ? ax : Doubles{} + 1.0;
  const Doubles b = small ? ax * x2 : Doubles{} - 1.0;
  const Doubles num = small ? p : Doubles{} + 2.0;
  const Doubles den = small ? q : exp_y + 1.0;
  x = reinterpret_cast<Doubles>(reinterpret_cast<Integers>(a + b * (num / den)) | sign);
}

// out = tanh(a) with `Doubles` vectors; they may alias. A tail shorter than a vector goes through
// padded lanes too, so that each value depends only on its argument, never on its position or
// the vector's length.
template <class Doubles, class Integers>
[[gnu::always_inline]] inline void tanh_loop(const double* a, double* out, Eigen::Index n) {
  constexpr Eigen::Index lanes = sizeof(Doubles) / sizeof(double);
  Eigen::Index i = 0;
  for (; i + lanes <= n; i += lanes) {
    Doubles x;
    std::memcpy(&x, a + i, sizeof x);
    tanh_lanes<Doubles, Integers>(x);
    std::memcpy(out + i, &x, sizeof x);
  }
  if (i < n) {
    Doubles x{};
    std::memcpy(&x, a + i, static_cast<std::size_t>(n - i) * sizeof(double));
    tanh_lanes<Doubles, Integers>(x);
    std::memcpy(out + i, &x, static_cast<std::size_t>(n - i) * sizeof(double));
  }
}

using Doubles2 = double __attribute__((vector_size(16)));
using Integers2 = std::int64_t __attribute__((vector_size(16)));
using Doubles4 = double __attribute__((vector_size(32)));
using Integers4 = std::int64_t __attribute__((vector_size(32)));

void tanh_baseline(const double* a, double* out, Eigen::Index n) {
  tanh_loop<Doubles2, Integers2>(a, out, n);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LEARNFLOW_TANH_AVX2 1
[[gnu::target("avx2")]] void tanh_avx2(const double* a, double* out, Eigen::Index n) {
  tanh_loop<Doubles4, Integers4>(a, out, n);
}
#endif

void tanh_vectorised(const double* a, double* out, Eigen::Index n);  // below tanh_kernels()

// log(1 + e^a) without overflow for large a.
double softplus(double a) { return a > 30.0 ? a : std::log1p(std::exp(a)); }
double logistic(double a) { return 1.0 / (1.0 + std::exp(-a)); }

}  // namespace

std::vector<TanhKernel> tanh_kernels() {
  std::vector<TanhKernel> kernels{{"baseline", tanh_baseline}};
#ifdef LEARNFLOW_TANH_AVX2
  if (__builtin_cpu_supports("avx2")) kernels.push_back({"avx2", tanh_avx2});
#endif
  return kernels;
}

namespace {

// The widest kernel this CPU runs, chosen once.
void tanh_vectorised(const double* a, double* out, Eigen::Index n) {
  static const auto kernel = tanh_kernels().back().apply;
  kernel(a, out, n);
}

}  // namespace

bool parse_activation(std::string_view name, Activation& out) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      out = Activation(static_cast<Activation::Kind>(i));
      return true;
    }
  }
  return false;
}

std::string_view activation_name(Activation a) { return names[static_cast<std::size_t>(a.kind)]; }
std::span<const std::string_view> activation_names() { return names; }

namespace {

void activate_column(Activation f, Eigen::Ref<const Eigen::VectorXd> a, Eigen::Ref<Eigen::VectorXd> out) {
  const double slope = f.slope;
  switch (f.kind) {
    case Activation::tanh: tanh_vectorised(a.data(), out.data(), a.size()); break;
    case Activation::logistic: out = a.unaryExpr([](double v) { return logistic(v); }); break;
    case Activation::relu: out = a.array().max(0.0); break;
    case Activation::leaky_relu:
      out = a.unaryExpr([slope](double v) { return v > 0.0 ? v : slope * v; });
      break;
    case Activation::softplus: out = a.unaryExpr([](double v) { return softplus(v); }); break;
    case Activation::linear: out = a; break;
    case Activation::asinh: out = a.unaryExpr([](double v) { return std::asinh(v); }); break;
    case Activation::hard_sigmoid: out = a.array().max(0.0).min(1.0); break;
  }
}

void derivative_column(Activation f, Eigen::Ref<const Eigen::VectorXd> a,
                       Eigen::Ref<Eigen::VectorXd> out) {
  const double slope = f.slope;
  switch (f.kind) {
    case Activation::tanh:
      tanh_vectorised(a.data(), out.data(), a.size());
      out = 1.0 - out.array().square();
      break;
    case Activation::logistic:
      out = a.unaryExpr([](double v) { const double s = logistic(v); return s * (1.0 - s); });
      break;
    case Activation::relu: out = a.unaryExpr([](double v) { return v > 0.0 ? 1.0 : 0.0; }); break;
    case Activation::leaky_relu:
      out = a.unaryExpr([slope](double v) { return v > 0.0 ? 1.0 : slope; });
      break;
    case Activation::softplus: out = a.unaryExpr([](double v) { return logistic(v); }); break;
    case Activation::linear: out.setOnes(); break;
    case Activation::asinh:
      out = a.unaryExpr([](double v) { return 1.0 / std::sqrt(1.0 + v * v); });
      break;
    case Activation::hard_sigmoid:
      out = a.unaryExpr([](double v) { return v > 0.0 && v < 1.0 ? 1.0 : 0.0; });
      break;
  }
}


void inverse_column(Activation f, Eigen::Ref<const Eigen::VectorXd> y,
                    Eigen::Ref<Eigen::VectorXd> out) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  const double slope = f.slope;
  switch (f.kind) {
    case Activation::tanh: out = y.unaryExpr([](double v) { return std::atanh(v); }); break;
    case Activation::logistic:
      out = y.unaryExpr([](double v) { return std::log(v / (1.0 - v)); });
      break;
    case Activation::relu: out.setConstant(nan); break;
    case Activation::leaky_relu:
      out = y.unaryExpr([slope](double v) { return v > 0.0 ? v : v / slope; });
      break;
    case Activation::softplus:
      out = y.unaryExpr([](double v) { return v > 30.0 ? v : std::log(std::expm1(v)); });
      break;
    case Activation::linear: out = y; break;
    case Activation::asinh: out = y.unaryExpr([](double v) { return std::sinh(v); }); break;
    case Activation::hard_sigmoid: out.setConstant(nan); break;
  }
}

}  // namespace

// The batch forms apply the column kernels above to each column in turn.
void activate(Activation f, Eigen::Ref<const Eigen::MatrixXd> a, Eigen::Ref<Eigen::MatrixXd> out) {
  for (Eigen::Index b = 0; b < a.cols(); ++b) activate_column(f, a.col(b), out.col(b));
}

void activate_derivative(Activation f, Eigen::Ref<const Eigen::MatrixXd> a,
                         Eigen::Ref<Eigen::MatrixXd> out) {
  for (Eigen::Index b = 0; b < a.cols(); ++b) derivative_column(f, a.col(b), out.col(b));
}

void activate_with_derivative(Activation f, Eigen::Ref<const Eigen::MatrixXd> a,
                              Eigen::Ref<Eigen::MatrixXd> sigma,
                              Eigen::Ref<Eigen::MatrixXd> derivative) {
  for (Eigen::Index b = 0; b < a.cols(); ++b) {
    auto s = sigma.col(b);
    auto d = derivative.col(b);
    switch (f.kind) {
      case Activation::tanh:  // derivative_column: tanh, then 1 − tanh²
        activate_column(f, a.col(b), s);
        d = 1.0 - s.array().square();
        break;
      case Activation::logistic:  // derivative_column: s = logistic(a), then s (1 − s)
        activate_column(f, a.col(b), s);
        d = s.unaryExpr([](double v) { return v * (1.0 - v); });
        break;
      default:  // σ' from a, before σ may overwrite it
        derivative_column(f, a.col(b), d);
        activate_column(f, a.col(b), s);
    }
  }
}

void activate_second_derivative(Activation f, Eigen::Ref<const Eigen::MatrixXd> a,
                                Eigen::Ref<Eigen::MatrixXd> out) {
  for (Eigen::Index b = 0; b < a.cols(); ++b) {
    auto o = out.col(b);
    const auto x = a.col(b);
    switch (f.kind) {
      case Activation::tanh:  // σ'' = −2 σ (1 − σ²)
        tanh_vectorised(x.data(), o.data(), x.size());
        o = o.unaryExpr([](double s) { return -2.0 * s * (1.0 - s * s); });
        break;
      case Activation::logistic:  // σ'' = σ (1 − σ)(1 − 2σ)
        o = x.unaryExpr([](double v) { const double s = logistic(v); return s * (1.0 - s) * (1.0 - 2.0 * s); });
        break;
      case Activation::softplus:  // σ' = logistic, σ'' = logistic (1 − logistic)
        o = x.unaryExpr([](double v) { const double s = logistic(v); return s * (1.0 - s); });
        break;
      case Activation::asinh:  // σ'' = −a / (1 + a²)^{3/2}
        o = x.unaryExpr([](double v) { return -v / std::pow(1.0 + v * v, 1.5); });
        break;
      case Activation::relu:
      case Activation::leaky_relu:
      case Activation::linear:
      case Activation::hard_sigmoid: o.setZero(); break;  // zero away from the kinks
    }
  }
}

bool invertible(Activation f) {
  return f.kind != Activation::relu && f.kind != Activation::hard_sigmoid;
}

void activate_inverse(Activation f, Eigen::Ref<const Eigen::MatrixXd> y,
                      Eigen::Ref<Eigen::MatrixXd> out) {
  for (Eigen::Index b = 0; b < y.cols(); ++b) inverse_column(f, y.col(b), out.col(b));
}

}  // namespace lf
