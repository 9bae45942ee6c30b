// Embedded Runge–Kutta pairs without dense output (Cash–Karp 5(4), Fehlberg 7(8)): step control
// from the embedded error estimate, steps stop at every sample time and segment end.
#include <boost/numeric/odeint/stepper/controlled_runge_kutta.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_cash_karp54.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_fehlberg78.hpp>

#include "integrators/algebra.hpp"
#include "integrators/driver.hpp"
#include "integrators/error_checker.hpp"

namespace lf {
namespace {

namespace odeint = boost::numeric::odeint;

template <class ErrorStepper>
class ControlledPolicy {
 public:
  static constexpr bool dense = false;
  static constexpr bool checkpoint_anywhere = true;  // no state but x

  ControlledPolicy(std::size_t n, double atol, double rtol, ErrorNorm norm)
      : stepper_(ErrorChecker(atol, rtol, norm)), x_(n) {}

  State& state() { return x_; }
  void restart(const CountingSystem&, double) {}
  void save(LoopPosition&) const {}
  void resume(const CountingSystem&, double, const LoopPosition&) {}

  bool attempt(const CountingSystem& sys, double t, double h, double, double& h_next) {
    double t_try = t, h_try = h;
    const bool accepted = stepper_.try_step(sys, x_, t_try, h_try) == odeint::success;
    h_next = h_try;
    return accepted;
  }

  void interpolate(double, State&) {}  // never called: steps stop at sample times

 private:
  odeint::controlled_runge_kutta<ErrorStepper, ErrorChecker> stepper_;
  State x_;
};

template <class ErrorStepper>
IntegrationResult integrate_controlled(const IntegrationJob& job, int order) {
  ControlledPolicy<ErrorStepper> policy(job.state.size(), job.spec.atol, job.spec.rtol, job.spec.norm);
  return run_segments(job, policy, order, true);
}

}  // namespace

IntegrationResult integrate_rkck54(const IntegrationJob& job) {
  return integrate_controlled<odeint::runge_kutta_cash_karp54<
      State, double, State, double, ParallelAlgebra, odeint::default_operations>>(job, 5);
}

IntegrationResult integrate_rkf78(const IntegrationJob& job) {
  return integrate_controlled<odeint::runge_kutta_fehlberg78<
      State, double, State, double, ParallelAlgebra, odeint::default_operations>>(job, 8);
}

}  // namespace lf
