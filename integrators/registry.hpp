#pragma once
// Steppers by name, and the one entry point that integrates a model over the segments of its
// input schedule, sampling at exact times. Odeint is used only inside integrators/*.cpp.
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/model.hpp"
#include "sim/core/input.hpp"
#include "sim/core/outcome.hpp"

namespace lf {

struct IntegratorSpec {
  std::string stepper = "dopri5";
  double rtol = 1e-6;
  double atol = 1e-6;
  double dt0 = 0.0;            // initial step; 0: chosen from the tolerances
  double dt_max = std::numeric_limits<double>::infinity();
  long max_steps = 100'000'000;
  double t0 = 0.0;
  double t_end = 10.0;
};

struct StepperInfo {
  std::string_view name;
  int order;           // order p of the solution (local error O(dt^{p+1}))
  bool adaptive;       // step-size control from an error estimate
  bool dense;          // samples from dense output (else: steps stop at sample times)
  std::string_view summary;
};

std::span<const StepperInfo> stepper_infos();
const StepperInfo* find_stepper(std::string_view name);  // nullptr if unknown



// Observers are called only with accepted states at exact sample times, never from trial stages.
class IntegrationObserver {
 public:
  virtual ~IntegrationObserver() = default;
  virtual void sample(const State& s, double t) = 0;
  // After every accepted step (progress reports, trajectory stores). dt: the step just taken.
  virtual void step(const State& /*s*/, double /*t*/, double /*dt*/, const SolverStats& /*stats*/) {}
  // At the start of every input segment, after the input switched (s is continuous there).
  virtual void segment_start(const State& /*s*/, double /*t*/) {}
  // At the end of every input segment, after its last sample and the model's exit events
  // (Model::leave_segment), before the input switches.
  virtual void segment_end(const State& /*s*/, double /*t*/) {}
};


// Integrates `model` from `state` (at the first boundary) over the segments of `drive`'s input
// signal, calling `observer.sample` at each of `sample_times` (sorted, within [t0, t_end]).
// No step crosses a segment boundary: the stepper stops there exactly and restarts.
// On return `state` holds the state at result.t (the last finite state on failure).
IntegrationResult integrate(const Model& model, Drive& drive, State& state,
                            const IntegratorSpec& spec, const std::vector<double>& sample_times,
                            IntegrationObserver& observer);

}  // namespace lf
