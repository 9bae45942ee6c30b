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
// The loop owns step-size clamping (segment ends, sample times for non-dense steppers, dt_max),
// the statistics, and the checks that end a run: non-finite state, step underflow, max_steps.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "integrators/steppers.hpp"

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
  std::size_t next_sample = 0;
  State interpolated(job.state.size());

  auto finish = [&](Outcome outcome, double t, std::string message) {
    result.outcome = outcome;
    result.t = t;
    result.message = std::move(message);
    stats.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    if (outcome == Outcome::success) job.state = policy.state();
    return result;
  };

  policy.state() = job.state;
  double t = bounds.front();
  double dt = spec.dt0;
  for (std::size_t k = 0; k + 1 < bounds.size(); ++k) {
    const double t_begin = bounds[k], t_end = bounds[k + 1];
    job.drive.enter_segment(k, t_begin);
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
    while (t < t_end) {
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
      }
      ++stats.steps;
      if (!all_finite(policy.state())) {
        return finish(Outcome::err_nf_state, t,
                      fmt::format("non-finite state at t = {} (after step {}, dt = {:.3g})", t,
                                  stats.steps, h));
      }
      while (next_sample < times.size() && times[next_sample] <= t) {
        if (times[next_sample] == t) {
          job.observer.sample(policy.state(), t);
        } else {
          policy.interpolate(times[next_sample], interpolated);
          job.observer.sample(interpolated, times[next_sample]);
        }
        ++next_sample;
      }
      job.observer.step(policy.state(), t, h, stats);
    }
    // After the segment's last sample, before the input switches (the next segment restarts the
    // stepper, so a change of the state here is safe).
    job.model.leave_segment(policy.state(), t_end);
    job.observer.segment_end(policy.state(), t_end);
  }
  return finish(Outcome::success, t, {});
}

}  // namespace lf
