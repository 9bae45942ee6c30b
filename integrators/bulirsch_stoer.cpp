// Bulirsch–Stoer extrapolation with adaptive order and step; steps stop at every sample time and
// segment end, and the extrapolation tableau is reset at each segment start.
#include <boost/numeric/odeint/stepper/bulirsch_stoer.hpp>

#include "integrators/algebra.hpp"
#include "integrators/driver.hpp"

namespace lf {
namespace {

namespace odeint = boost::numeric::odeint;
using BulirschStoer = odeint::bulirsch_stoer<State, double, State, double, ParallelAlgebra,
                                             odeint::default_operations>;

class BulirschStoerPolicy {
 public:
  static constexpr bool dense = false;
  // Its order control (odeint's private members) is known only right after a reset: checkpoints
  // at segment starts, where restart() resets it.
  static constexpr bool checkpoint_anywhere = false;

  BulirschStoerPolicy(std::size_t n, double atol, double rtol)
      : stepper_(atol, rtol, 1.0, 0.0), x_(n) {}

  State& state() { return x_; }
  void restart(const CountingSystem&, double) { stepper_.reset(); }
  void save(LoopPosition&) const {}
  void resume(const CountingSystem&, double, const LoopPosition&) { stepper_.reset(); }

  bool attempt(const CountingSystem& sys, double t, double h, double, double& h_next) {
    double t_try = t, h_try = h;
    const bool accepted = stepper_.try_step(sys, x_, t_try, h_try) == odeint::success;
    h_next = h_try;
    return accepted;
  }

  void interpolate(double, State&) {}  // never called: steps stop at sample times

 private:
  BulirschStoer stepper_;
  State x_;
};

}  // namespace

IntegrationResult integrate_bulirsch_stoer(const IntegrationJob& job) {
  BulirschStoerPolicy policy(job.state.size(), job.spec.atol, job.spec.rtol);
  return run_segments(job, policy, 8, true);
}

}  // namespace lf
