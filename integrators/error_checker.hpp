#pragma once
// The error of a trial step as the adaptive Runge–Kutta steppers' step control sees it: each
// component's error estimate e_i scaled by sc_i = atol + rtol·|x_i| (x at the step's start), then
// reduced over the state by one of two norms (integrator.norm):
//   max  max_i |e_i|/sc_i                 every component within its own tolerance (odeint's);
//   rms  sqrt((1/n) Σ_i (e_i/sc_i)²)      Hairer's norm (Solving ODEs I, §II.4), as SciPy's
//                                         solve_ivp and SUNDIALS measure it.
// A step is accepted when the norm is ≤ 1. rms ≤ max always, with equality when every component
// carries the same scaled error, so at one tolerance rms takes larger steps; when the error sits
// in k of n components it is max·sqrt(k/n): the rms tolerance of a large state with a few fast
// components is looser by up to sqrt(n).
// Both reductions run on one thread in index order: their value does not depend on the thread
// count.
#include <boost/numeric/odeint/algebra/default_operations.hpp>

#include <cmath>

#include "integrators/algebra.hpp"
#include "integrators/registry.hpp"

namespace lf {

class ErrorChecker {
 public:
  using value_type = double;
  using algebra_type = ParallelAlgebra;
  using operations_type = boost::numeric::odeint::default_operations;

  ErrorChecker(double atol, double rtol, ErrorNorm norm) : atol_(atol), rtol_(rtol), norm_(norm) {}

  // Overwrites x_err with the scaled errors, as odeint's default_error_checker does (with its
  // a_x = 1, a_dxdt = 0: the same operation, so the max norm gives odeint's bits).
  template <class S, class D, class E, class T>
  double error(ParallelAlgebra& algebra, const S& x_old, const D& dxdt_old, E& x_err, T) const {
    algebra.for_each3(x_err, x_old, dxdt_old,
                      operations_type::rel_error<double>(atol_, rtol_, 1.0, 0.0));
    if (norm_ == ErrorNorm::max) return algebra.norm_inf(x_err);
    if (x_err.empty()) return 0.0;
    double sum = 0.0;
    for (const double e : x_err) sum += e * e;
    return std::sqrt(sum / static_cast<double>(x_err.size()));
  }

  template <class S, class D, class E, class T>
  double error(const S& x_old, const D& dxdt_old, E& x_err, T dt) const {
    ParallelAlgebra algebra;
    return error(algebra, x_old, dxdt_old, x_err, dt);
  }

 private:
  double atol_, rtol_;
  ErrorNorm norm_;
};

}  // namespace lf
