// Dormand–Prince 5(4) with step control and dense output: samples are interpolated, steps stop
// only at segment ends.
#include <boost/numeric/odeint/stepper/controlled_runge_kutta.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_dopri5.hpp>

#include "integrators/algebra.hpp"
#include "integrators/driver.hpp"
#include "integrators/error_checker.hpp"

namespace lf {
namespace {

namespace odeint = boost::numeric::odeint;
using Dopri5 = odeint::runge_kutta_dopri5<State, double, State, double, ParallelAlgebra,
                                          odeint::default_operations>;
using ControlledDopri5 = odeint::controlled_runge_kutta<Dopri5, ErrorChecker>;

class Dopri5Policy {
 public:
  static constexpr bool dense = true;
  static constexpr bool checkpoint_anywhere = true;  // its state at a step boundary: x, dxdt, t

  Dopri5Policy(std::size_t n, double atol, double rtol, ErrorNorm norm)
      // Error of component i is measured against atol + rtol |x_i|, reduced by `norm`.
      : stepper_(ErrorChecker(atol, rtol, norm)),
        x_(n), dxdt_(n), x_old_(n), dxdt_old_(n), x_trial_(n), dxdt_trial_(n) {}

  State& state() { return x_; }

  void restart(const CountingSystem& sys, double t) {
    sys(x_, dxdt_, t);  // FSAL: the derivative at the segment start, with the new input
    t_ = t;
  }

  // A checkpoint: the FSAL derivative, saved and restored as it is (not recomputed: that would
  // count an RHS evaluation the uninterrupted run did not make).
  void save(LoopPosition& at) const { at.derivative = dxdt_; }
  void resume(const CountingSystem&, double t, const LoopPosition& at) {
    dxdt_ = at.derivative;
    t_ = t;
  }

  bool attempt(const CountingSystem& sys, double t, double h, double t_new, double& h_next) {
    double t_try = t, h_try = h;
    const auto result = stepper_.try_step(sys, x_, dxdt_, t_try, x_trial_, dxdt_trial_, h_try);
    h_next = h_try;
    if (result != odeint::success) return false;
    x_old_.swap(x_);
    x_.swap(x_trial_);
    dxdt_old_.swap(dxdt_);
    dxdt_.swap(dxdt_trial_);
    t_old_ = t;
    t_ = t_new;
    return true;
  }

  void interpolate(double t, State& out) {
    stepper_.stepper().calc_state(t, out, x_old_, dxdt_old_, t_old_, x_, dxdt_, t_);
  }

 private:
  ControlledDopri5 stepper_;
  State x_, dxdt_, x_old_, dxdt_old_, x_trial_, dxdt_trial_;
  double t_ = 0.0, t_old_ = 0.0;
};

}  // namespace

IntegrationResult integrate_dopri5(const IntegrationJob& job) {
  Dopri5Policy policy(job.state.size(), job.spec.atol, job.spec.rtol, job.spec.norm);
  return run_segments(job, policy, 5, true);
}

}  // namespace lf
