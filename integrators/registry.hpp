#pragma once
// Steppers by name, and the one entry point that integrates a model over the segments of its
// input schedule, sampling at exact times. Odeint is used only inside integrators/*.cpp.
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/model.hpp"
#include "sim/core/input.hpp"
#include "sim/core/outcome.hpp"

namespace lf {

// How the adaptive steppers reduce the scaled error estimates of a step to one number
// (integrators/error_checker.hpp): the max norm (default) or Hairer's RMS norm.
enum class ErrorNorm { max, rms };

struct IntegratorSpec {
  std::string stepper = "dopri5";
  double rtol = 1e-6;
  double atol = 1e-6;
  ErrorNorm norm = ErrorNorm::max;
  double dt0 = 0.0;            // initial step; 0: chosen from the tolerances
  double dt_max = std::numeric_limits<double>::infinity();
  long max_steps = 100'000'000;
  double dt_min = 0.0;  // a step the error control wants smaller than this ends the run
  double max_wall_seconds = std::numeric_limits<double>::infinity();  // ends the run (wall_limit)
  double t0 = 0.0;
  double t_end = 10.0;
  // A phase whose residual grew (IntegrationObserver::phase_end) ends the run (Outcome::diverged).
  bool stop_on_divergence = false;
};

// What happened in one input segment (a phase of an example), reported when it ends. The
// residual r = ‖ds/dt‖₂ over the per-example blocks (the activities, costates and targets that
// relax; all blocks if there are none). A segment of a phase with `until` ends as soon as r
// falls to the tolerance (located between steps by root finding on the stepper's dense output,
// or on the cubic Hermite interpolant of non-dense steppers), else after its full duration.
struct PhaseReport {
  std::size_t segment = 0;
  std::size_t phase = 0;
  double start = 0.0, end = 0.0;     // end − start: the time the phase took
  double residual_start = 0.0, residual_end = 0.0;
  bool converged = false;            // ended on its tolerance (phases with `until` only)
  // The relaxation diverged: r_end > 1e-9 and r grew over the phase (r_end > r_start) or grows
  // at its end faster than e-fold per phase duration (d ln r/dt > 1/duration, from one
  // directional derivative). Piecewise-constant inputs only: a sine drives r.
  bool diverged = false;
};

// Where the integration loop stands at a step boundary. With the state vector, the model's event
// state and the observers' own, it is everything needed to continue a run bit for bit (a
// checkpoint, sim/checkpoint.hpp). Dense steppers keep their FSAL derivative; Bulirsch–Stoer,
// whose order control lives inside odeint, is checkpointed only at segment starts, where the
// loop resets it.
struct LoopPosition {
  std::size_t segment = 0;
  double t = 0.0, dt = 0.0, shift = 0.0;
  std::size_t next_sample = 0;
  SolverStats stats;  // wall_seconds: of the part of the run before the checkpoint
  double phase_start = 0.0, residual_start = 0.0, residual_prev = 0.0;
  bool at_segment_start = false;  // after the segment's events and first samples, before its steps
  State derivative;               // the stepper's derivative at t (dopri5), else empty
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
  // Observers that integrate along the trajectory (the adjoint's gradient quadrature): called
  // before step(), when wants_interpolant(), with the accepted step [t0, t1] and the stepper's
  // dense output on it (`at(t, out)`: the state at t in [t0, t1]). Steppers without a dense
  // output (the fixed-step ones, rkck) never call it: such an observer interpolates on its own.
  virtual bool wants_interpolant() const { return false; }
  using Interpolant = std::function<void(double, State&)>;
  virtual void step_interpolant(double /*t0*/, double /*t1*/, const Interpolant& /*at*/) {}
  // At the start of every input segment, after the input switched (s is continuous there).
  virtual void segment_start(const State& /*s*/, double /*t*/) {}
  // At the end of every input segment, after its last sample and the model's exit events
  // (Model::leave_segment), before the input switches.
  virtual void segment_end(const State& /*s*/, double /*t*/) {}
  // After segment_end: what the segment's phase did.
  virtual void phase_end(const PhaseReport& /*report*/) {}
  // Asked at every step boundary (time t) where the loop can be checkpointed: should it be, now?
  // Then checkpoint() gets the state and the loop's position (also when the run is about to end
  // on an interrupt or the wall-time limit, whatever this returns).
  virtual bool checkpoint_due(double /*t*/) { return false; }
  virtual void checkpoint(const State& /*s*/, const LoopPosition& /*at*/) {}
};


// Integrates `model` from `state` (at the first boundary) over the segments of `drive`'s input
// signal, calling `observer.sample` at each of `sample_times` (sorted, within [t0, t_end]).
// No step crosses a segment boundary: the stepper stops there exactly and restarts.
// On return `state` holds the state at result.t (the last finite state on failure).
// `resume`: continue from a checkpoint instead (state: the checkpoint's state vector; the model's
// and observers' event state already restored): the segment's events and the samples before
// the position are not repeated.
IntegrationResult integrate(const Model& model, Drive& drive, State& state,
                            const IntegratorSpec& spec, const std::vector<double>& sample_times,
                            IntegrationObserver& observer, const LoopPosition* resume = nullptr);

}  // namespace lf
