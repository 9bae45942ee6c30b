// Fixed-step steppers (classical RK4, explicit Euler): step dt0, shortened only to land exactly
// on sample times and segment ends. Every step is accepted.
#include <boost/numeric/odeint/stepper/euler.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta4.hpp>

#include "integrators/algebra.hpp"
#include "integrators/driver.hpp"

namespace lf {
namespace {

namespace odeint = boost::numeric::odeint;

template <class Stepper>
class FixedPolicy {
 public:
  static constexpr bool dense = false;
  static constexpr bool checkpoint_anywhere = true;  // no state but x

  explicit FixedPolicy(std::size_t n) : x_(n) {}

  State& state() { return x_; }
  void restart(const CountingSystem&, double) {}
  void save(LoopPosition&) const {}
  void resume(const CountingSystem&, double, const LoopPosition&) {}

  bool attempt(const CountingSystem& sys, double t, double h, double, double& h_next) {
    stepper_.do_step(sys, x_, t, h);
    h_next = h;
    return true;
  }

  void interpolate(double, State&) {}  // never called: steps stop at sample times

 private:
  Stepper stepper_;
  State x_;
};

template <class Stepper>
IntegrationResult integrate_fixed(const IntegrationJob& job, int order) {
  FixedPolicy<Stepper> policy(job.state.size());
  return run_segments(job, policy, order, false);
}

}  // namespace

IntegrationResult integrate_rk4(const IntegrationJob& job) {
  return integrate_fixed<odeint::runge_kutta4<State, double, State, double, ParallelAlgebra,
                                              odeint::default_operations>>(job, 4);
}

IntegrationResult integrate_euler(const IntegrationJob& job) {
  return integrate_fixed<odeint::euler<State, double, State, double, ParallelAlgebra,
                                       odeint::default_operations>>(job, 1);
}

}  // namespace lf
