#pragma once
// Steppers by name, and the one entry point that integrates a model over the segments of its
// input schedule, sampling at exact times. Odeint is used only inside integrators/*.cpp.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/model.hpp"
#include "sim/experiment.hpp"
#include "sim/input.hpp"

namespace lf {

struct StepperInfo {
  std::string_view name;
  int order;           // order p of the solution (local error O(dt^{p+1}))
  bool adaptive;       // step-size control from an error estimate
  bool dense;          // samples from dense output (else: steps stop at sample times)
  std::string_view summary;
};

std::span<const StepperInfo> stepper_infos();
const StepperInfo* find_stepper(std::string_view name);  // nullptr if unknown

// How an integration ended (heyoka-style outcome).
enum class Outcome { success, err_nf_state, step_underflow, step_limit };
std::string_view outcome_name(Outcome outcome);

struct SolverStats {
  long steps = 0;      // accepted steps
  long rejected = 0;   // rejected step attempts
  long rhs_evals = 0;  // evaluations of the right-hand side
  double wall_seconds = 0.0;
};

// Observers are called only with accepted states at exact sample times, never from trial stages.
class IntegrationObserver {
 public:
  virtual ~IntegrationObserver() = default;
  virtual void sample(const State& s, double t) = 0;
  // After every accepted step (progress reports, trajectory stores). dt: the step just taken.
  virtual void step(const State& /*s*/, double /*t*/, double /*dt*/, const SolverStats& /*stats*/) {}
  // At the start of every input segment, after the input switched (s is continuous there).
  virtual void segment_start(const State& /*s*/, double /*t*/) {}
};

struct IntegrationResult {
  Outcome outcome = Outcome::success;
  double t = 0.0;        // time reached: t_end on success, else the time of the failure
  std::string message;   // for failures: what happened, where
  SolverStats stats;
};

// Integrates `model` from `state` (at the first boundary) over the segments of `drive`'s input
// signal, calling `observer.sample` at each of `sample_times` (sorted, within [t0, t_end]).
// No step crosses a segment boundary: the stepper stops there exactly and restarts.
// On return `state` holds the state at result.t (the last finite state on failure).
IntegrationResult integrate(const Model& model, Drive& drive, State& state,
                            const IntegratorSpec& spec, const std::vector<double>& sample_times,
                            IntegrationObserver& observer);

}  // namespace lf
