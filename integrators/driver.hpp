#pragma once
// The integration loop shared by every stepper family (included only by integrators/*.cpp).
// A StepPolicy adapts one odeint stepper:
//   static constexpr bool dense;                      samples interpolated from dense output?
//   void restart(const System&, double t);            new segment: state kept, input changed
//   bool attempt(const System&, double t, double h, double t_new, double& h_next);
//        one step from t of size h landing at t_new (== t + h up to rounding); true if accepted.
//        h_next: the size suggested for the next attempt (smaller after a rejection).
//   State& state();                                   current accepted state
//   void interpolate(double t, State& out);           dense: within the last accepted step
//   static constexpr bool checkpoint_anywhere;        can the loop be resumed after any step?
//   void save(LoopPosition&) const;                   the stepper's part of a checkpoint
//   void resume(const System&, double t, const LoopPosition&);   continue from one
// The loop owns step-size clamping (segment ends, sample times for non-dense steppers, dt_max),
// the statistics, the checks that end a run (non-finite state, step underflow, a step that does
// not move t, dt_min, max_steps, a diverged phase with on_divergence = stop, the wall-time limit,
// a signal), the checkpoints (asked of the observer at step boundaries, or at segment starts for
// steppers that cannot resume anywhere) and the resume from one, and the phases: each segment's
// residual at its start and end (PhaseReport), and the early end of a phase with `until` once its
// residual has fallen to the tolerance, which moves the rest of the schedule earlier.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include "integrators/hermite.hpp"
#include "integrators/steppers.hpp"
#include "sim/core/interrupt.hpp"

namespace lf {

// The model seen by odeint, counting its evaluations. Cheap to copy (odeint copies systems).
struct CountingSystem {
  const Model* model;
  long* evaluations;
  void operator()(const State& x, State& dxdt, double t) const {
    ++*evaluations;
    model->rhs(x, dxdt, t);
  }
};

// Starting step size from the tolerances (Hairer, Nørsett & Wanner, Solving ODEs I, §II.4).
inline double initial_step(const CountingSystem& sys, const State& x, double t, double rtol,
                           double atol, int order) {
  const std::size_t n = x.size();
  if (n == 0) return 1e-3;
  State f0(n), x1(n), f1(n);
  sys(x, f0, t);
  double d0 = 0, d1 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double sc = atol + rtol * std::abs(x[i]);
    d0 += (x[i] / sc) * (x[i] / sc);
    d1 += (f0[i] / sc) * (f0[i] / sc);
  }
  d0 = std::sqrt(d0 / n);
  d1 = std::sqrt(d1 / n);
  const double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  for (std::size_t i = 0; i < n; ++i) x1[i] = x[i] + h0 * f0[i];
  sys(x1, f1, t + h0);
  double d2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double sc = atol + rtol * std::abs(x[i]);
    d2 += ((f1[i] - f0[i]) / sc) * ((f1[i] - f0[i]) / sc);
  }
  d2 = std::sqrt(d2 / n) / h0;
  const double dmax = std::max(d1, d2);
  const double h1 = dmax <= 1e-15 ? std::max(1e-6, h0 * 1e-3)
                                  : std::pow(0.01 / dmax, 1.0 / (order + 1));
  return std::min(100 * h0, h1);
}

inline bool all_finite(const State& x) {
  for (const double v : x) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// The residual of a phase, r = ‖ds/dt‖₂ over the per-example blocks (all blocks when the model
// has none), in block order (deterministic). `f` receives ds/dt. Not counted as an RHS
// evaluation of the solver (like the residual metrics, it is analysis).
// Whether block b enters the residual: the per-example blocks, or all when there are none.
inline bool in_residual(const StateLayout& layout, const Block& b) {
  const auto& blocks = layout.blocks();
  return b.per_example() ||
         std::none_of(blocks.begin(), blocks.end(), [](const Block& c) { return c.per_example(); });
}

inline double phase_residual(const Model& model, const State& x, double t, State& f) {
  model.rhs(x, f, t);
  double sum = 0.0;
  for (const Block& b : model.layout().blocks()) {
    if (!in_residual(model.layout(), b)) continue;
    for (Eigen::Index i = 0; i < b.size; ++i) sum += f[b.offset + i] * f[b.offset + i];
  }
  return std::sqrt(sum);
}

// d(ln r)/dt at state x, where f = ds/dt there (from phase_residual): r ṙ = Σ f_i (J f)_i over
// the residual's blocks, with J f from a forward difference along f. `f2`, `x2`: scratch.
inline double residual_growth(const Model& model, const State& x, double t, const State& f, State& f2,
                              State& x2) {
  double fx = 0.0, ff = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    fx = std::max(fx, std::abs(x[i]));
    ff = std::max(ff, std::abs(f[i]));
  }
  if (ff == 0.0) return 0.0;
  const double step = 1e-7 * std::max(1.0, fx) / ff;  // moves x by 1e-7 of its size
  for (std::size_t i = 0; i < x.size(); ++i) x2[i] = x[i] + step * f[i];
  model.rhs(x2, f2, t);
  double rr = 0.0, rjr = 0.0;
  for (const Block& b : model.layout().blocks()) {
    if (!in_residual(model.layout(), b)) continue;
    for (Eigen::Index i = b.offset; i < b.offset + b.size; ++i) {
      rr += f[i] * f[i];
      rjr += f[i] * (f2[i] - f[i]) / step;
    }
  }
  return rr > 0.0 ? rjr / rr : 0.0;
}

// The first time in (a, b] where r falls to `tol`, given r(a) > tol >= r(b): the Illinois
// variant of regula falsi on r − tol, to |Δt| <= 1e-13 max(1, |t|) or 100 iterations.
template <class Residual>
double locate_convergence(Residual&& r, double a, double ra, double b, double rb, double tol) {
  double ga = ra - tol, gb = rb - tol;
  int side = 0;
  for (int it = 0; it < 100 && b - a > 1e-13 * std::max(1.0, std::abs(b)); ++it) {
    double c = b - gb * (b - a) / (gb - ga);
    if (!(c > a && c < b)) c = 0.5 * (a + b);
    const double gc = r(c) - tol;
    if (gc > 0) {  // still above: the crossing is in (c, b]
      a = c;
      ga = gc;
      if (side == -1) gb *= 0.5;
      side = -1;
    } else {
      b = c;
      gb = gc;
      if (side == 1) ga *= 0.5;
      side = 1;
    }
  }
  return b;
}

template <class StepPolicy>
IntegrationResult run_segments(const IntegrationJob& job, StepPolicy& policy, int order,
                               bool adaptive) {
  const auto wall_start = std::chrono::steady_clock::now();
  IntegrationResult result;
  SolverStats& stats = result.stats;
  const CountingSystem sys{&job.model, &stats.rhs_evals};
  const IntegratorSpec& spec = job.spec;
  const std::vector<double>& bounds = job.drive.signal().boundaries();
  const std::vector<double>& times = job.sample_times;
  const LoopPosition* resume = job.resume;
  std::size_t next_sample = 0;
  State interpolated(job.state.size());
  // Wall time of this invocation, and of the run so far (with the part before the checkpoint it
  // resumed from). integrator.max_wall_seconds limits the first: a resumed run gets it afresh.
  const double wall_before = resume != nullptr ? resume->stats.wall_seconds : 0.0;
  auto invocation = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  };
  auto wall = [&] { return wall_before + invocation(); };

  auto finish = [&](Outcome outcome, double t, std::string message) {
    result.outcome = outcome;
    result.t = t;
    result.message = std::move(message);
    stats.wall_seconds = wall();
    // The state reached: on success, a diverged phase, a wall-time limit or an interrupt (all at
    // a step boundary); after a numerical failure job.state keeps the last state before it.
    if (outcome == Outcome::success || outcome == Outcome::diverged ||
        outcome == Outcome::wall_limit || outcome == Outcome::interrupted) {
      job.state = policy.state();
    }
    return result;
  };

  policy.state() = job.state;
  double t = bounds.front();
  double dt = spec.dt0;
  // Phases that end on convergence move the rest of the schedule earlier by `shift` (exactly 0
  // until one does, so that a schedule without them keeps its boundaries bit for bit).
  double shift = 0.0;
  std::size_t first_segment = 0;
  if (resume != nullptr) {
    first_segment = resume->segment;
    t = resume->t;
    dt = resume->dt;
    shift = resume->shift;
    next_sample = resume->next_sample;
    stats = resume->stats;
  }
  const bool piecewise_constant = !job.drive.signal().time_dependent();
  State f_end(job.state.size()), f_prev(job.state.size()), x_prev, f_trial(job.state.size());
  PhaseReport phase;
  double r_prev = 0.0;
  std::size_t k = first_segment;
  // The loop's position, for a checkpoint (now: at a step boundary, or at the segment start).
  auto position = [&](bool at_segment_start) {
    LoopPosition at;
    at.segment = k;
    at.t = t;
    at.dt = dt;
    at.shift = shift;
    at.next_sample = next_sample;
    at.stats = stats;
    at.stats.wall_seconds = wall();
    at.phase_start = phase.start;
    at.residual_start = phase.residual_start;
    at.residual_prev = r_prev;
    at.at_segment_start = at_segment_start;
    policy.save(at);
    return at;
  };
  // A signal or the wall-time limit ends the run at this step boundary, after a checkpoint if
  // the stepper can be resumed here (Bulirsch–Stoer: the one at the segment start stays).
  auto stop_requested = [&](bool can_checkpoint, bool at_segment_start) -> std::optional<Outcome> {
    const int signal = interrupt_signal();
    // Where no checkpoint can be taken (Bulirsch–Stoer inside a segment) a signal or the
    // wall-time limit waits for the segment's end, so that the run can be resumed from there (a
    // second signal ends the process at once).
    const bool over_time = std::isfinite(spec.max_wall_seconds) && invocation() > spec.max_wall_seconds;
    const bool stop = can_checkpoint && (signal != 0 || over_time);
    if (!stop) {
      if (can_checkpoint && job.observer.checkpoint_due(t)) {
        job.observer.checkpoint(policy.state(), position(at_segment_start));
      }
      return std::nullopt;
    }
    if (can_checkpoint) job.observer.checkpoint(policy.state(), position(at_segment_start));
    return signal != 0 ? Outcome::interrupted : Outcome::wall_limit;
  };
  auto stopped = [&](Outcome outcome) {
    return finish(outcome, t, outcome == Outcome::interrupted
                                  ? fmt::format("interrupted by signal {} at t = {}", interrupt_signal(), t)
                                  : fmt::format("integrator.max_wall_seconds = {} reached at t = {}",
                                                spec.max_wall_seconds, t));
  };
  for (; k + 1 < bounds.size(); ++k) {
    const bool resumed = resume != nullptr && k == first_segment;
    // t is bounds[k] exactly unless an earlier phase ended on convergence.
    const double t_begin = resumed ? resume->phase_start : t, t_end = bounds[k + 1] - shift;
    job.drive.enter_segment(k, t_begin);
    phase = PhaseReport{};
    phase.segment = k;
    phase.phase = job.drive.phase();
    phase.start = t_begin;
    const double tol = job.drive.signal().until(k);
    if (resumed) {
      // Everything up to the checkpoint happened: the events, the samples, the steps.
      policy.resume(sys, t, *resume);
      phase.residual_start = resume->residual_start;
      r_prev = resume->residual_prev;
      // The Hermite interpolant's derivative at the step start: the same function of the same
      // state as before the checkpoint.
      if (tol > 0 && !StepPolicy::dense) phase_residual(job.model, policy.state(), t, f_prev);
    } else {
      // The schedule's events at the segment start: a reset of the activities (a new minibatch
      // with train.reset), then the model's own (phase changes, end-of-phase updates).
      if (job.drive.signal().resets(k)) job.model.reset_activity(policy.state());
      job.model.enter_segment(policy.state(), t_begin);
      policy.restart(sys, t_begin);
      if (dt == 0.0) dt = initial_step(sys, policy.state(), t, spec.rtol, spec.atol, order);
      job.observer.segment_start(policy.state(), t);
      while (next_sample < times.size() && times[next_sample] <= t) {
        job.observer.sample(policy.state(), times[next_sample++]);
      }
      phase.residual_start = phase_residual(job.model, policy.state(), t, f_prev);
      r_prev = phase.residual_start;
      if (!StepPolicy::checkpoint_anywhere) {
        if (const auto outcome = stop_requested(true, true)) return stopped(*outcome);
      }
    }
    bool converged = tol > 0 && r_prev <= tol;
    while (t < t_end && !converged) {
      if (stats.steps >= spec.max_steps) {
        return finish(Outcome::step_limit, t,
                      fmt::format("max_steps = {} reached at t = {} (dt = {:.3g})", spec.max_steps,
                                  t, dt));
      }
      // Non-dense steppers stop at every sample time; all stop at segment ends.
      const double stop =
          StepPolicy::dense || next_sample >= times.size() ? t_end
                                                           : std::min(t_end, times[next_sample]);
      const double natural_dt = dt;
      double h = std::min(dt, spec.dt_max);
      // A step that would end within rounding of the stop lands on it exactly (otherwise a fixed
      // step k·dt0 can fall ulps short of a sample time and leave a step of 1e-17 behind).
      if (h >= (stop - t) * (1.0 - 1e-9)) h = stop - t;
      const double t_prev = t;
      if (tol > 0 && !StepPolicy::dense) x_prev = policy.state();
      for (;;) {
        const bool lands_on_stop = h >= stop - t;
        double h_next = h;
        if (policy.attempt(sys, t, h, lands_on_stop ? stop : t + h, h_next)) {
          t = lands_on_stop ? stop : t + h;
          // A step shortened to meet a stop says nothing about the natural step size.
          dt = lands_on_stop ? std::max(h_next, natural_dt) : h_next;
          if (!adaptive) dt = spec.dt0;
          break;
        }
        ++stats.rejected;
        h = std::min(h_next, stop - t);
        if (!(h > 16 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(t)))) {
          return finish(Outcome::step_underflow, t,
                        fmt::format("step size underflow at t = {}: dt = {:.3g} after {} rejected "
                                    "steps", t, h, stats.rejected));
        }
        if (h_next < spec.dt_min && h < stop - t) {
          return finish(Outcome::step_underflow, t,
                        fmt::format("the error control asks for dt = {:.3g} at t = {}, below "
                                    "integrator.dt_min = {:.3g} ({} rejected steps)", h_next, t,
                                    spec.dt_min, stats.rejected));
        }
      }
      if (t == t_prev) {
        // An accepted step that did not move t (t + dt == t in double precision): the run would
        // only stop at max_steps.
        return finish(Outcome::step_underflow, t,
                      fmt::format("step size underflow at t = {}: a step of dt = {:.3g} does not "
                                  "change t in double precision", t, h));
      }
      ++stats.steps;
      if (!all_finite(policy.state())) {
        return finish(Outcome::err_nf_state, t,
                      fmt::format("non-finite state at t = {} (after step {}, dt = {:.3g})", t,
                                  stats.steps, h));
      }
      // A phase that ends on convergence: has r fallen to the tolerance within this step?
      double t_stop = t;
      // The state within the step just taken: the dense output, or the cubic Hermite interpolant.
      auto state_at = [&](double tc, State& out) {
        if constexpr (StepPolicy::dense) {
          policy.interpolate(tc, out);
        } else {
          hermite(t_prev, x_prev, f_prev, t, policy.state(), f_end, tc, out);
        }
      };
      if (tol > 0) {
        const double r = phase_residual(job.model, policy.state(), t, f_end);
        if (r <= tol) {
          converged = true;
          t_stop = locate_convergence([&](double tc) {
            state_at(tc, interpolated);
            return phase_residual(job.model, interpolated, tc, f_trial);
          }, t_prev, r_prev, t, r, tol);
        } else {
          r_prev = r;
          f_prev.swap(f_end);
        }
      }
      // Samples are projected like the states of the steps (Model::project; a copy, so that the
      // step's dense output keeps its end point).
      while (next_sample < times.size() && times[next_sample] <= t_stop) {
        if (times[next_sample] == t) {
          interpolated = policy.state();
        } else {
          policy.interpolate(times[next_sample], interpolated);
        }
        job.model.project(interpolated, times[next_sample]);
        job.observer.sample(interpolated, times[next_sample]);
        ++next_sample;
      }
      if (t_stop < t) {
        // The phase ended inside the step: the state there, from the same interpolant.
        state_at(t_stop, interpolated);
        policy.state() = interpolated;
        t = t_stop;
      }
      if constexpr (StepPolicy::dense) {
        if (job.observer.wants_interpolant()) {
          job.observer.step_interpolant(t_prev, t, [&](double tc, State& out) { state_at(tc, out); });
        }
      }
      // A constrained model moves the accepted state back onto its manifold (Model::project),
      // after the step's samples (the dense output needed the step's own end point). A changed
      // state restarts the stepper at t as at a segment start: dopri5 re-evaluates its FSAL
      // derivative (one RHS evaluation per step), so the next step, a checkpoint taken below and
      // the run resumed from it all start from the projected state and its derivative.
      if (job.model.project(policy.state(), t)) {
        policy.restart(sys, t);
        if (tol > 0 && !converged) r_prev = phase_residual(job.model, policy.state(), t, f_prev);
      }
      job.observer.step(policy.state(), t, h, stats);
      if (adaptive && natural_dt < spec.dt_min && dt < spec.dt_min) {
        return finish(Outcome::step_underflow, t,
                      fmt::format("the error control keeps dt = {:.3g} at t = {}, below "
                                  "integrator.dt_min = {:.3g}", dt, t, spec.dt_min));
      }
      // A position to continue from (not inside a phase that converged: it ends below, with its
      // events; at t_end the resumed loop goes straight to them).
      if (!converged) {
        // At the segment's end every stepper can be resumed: the next segment restarts it.
        if (const auto outcome = stop_requested(StepPolicy::checkpoint_anywhere || t == t_end, false)) {
          return stopped(*outcome);
        }
      }
    }
    phase.end = t;
    phase.converged = converged;
    phase.residual_end = phase_residual(job.model, policy.state(), t, f_end);
    if (piecewise_constant && !job.model.relaxations_bounded() && phase.residual_end > 1e-9 &&
        t > t_begin) {
      // Grew over the phase; or fell by less than one e-fold and grows at its end faster than one
      // e-fold per phase duration. A residual that fell by orders of magnitude and then rises on
      // the floor the flowing weights drive (massive weights: d ln r/dt is large just after their
      // velocity turns round) is settled, not running away.
      phase.diverged = phase.residual_end > phase.residual_start ||
                       (phase.residual_end > phase.residual_start / std::exp(1.0) &&
                        residual_growth(job.model, policy.state(), t, f_end, f_trial, interpolated) >
                            1.0 / (t - t_begin));
    }
    // The rest of the schedule moves earlier by the time the phase did not need.
    if (t < t_end) shift += t_end - t;
    // After the segment's last sample, before the input switches (the next segment restarts the
    // stepper, so a change of the state here is safe).
    job.model.leave_segment(policy.state(), t);
    job.observer.segment_end(policy.state(), t);
    job.observer.phase_end(phase);
    if (phase.diverged && spec.stop_on_divergence) {
      const auto& names = job.drive.signal().spec().phase_names;
      return finish(Outcome::diverged, t,
                    fmt::format("the relaxation diverged in segment {}{} (t in [{}, {}]): its "
                                "residual grew from {:.3g} to {:.3g} (integrator.on_divergence = "
                                "\"stop\")", k,
                                names.empty() ? std::string() : fmt::format(" (phase '{}')", names[phase.phase]),
                                phase.start, t, phase.residual_start, phase.residual_end));
    }
  }
  return finish(Outcome::success, t, {});
}

}  // namespace lf
