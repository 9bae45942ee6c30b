// Steppers against exact solutions, convergence orders, breakpoints and failure outcomes.
#include <fmt/format.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "integrators/error_checker.hpp"
#include "sim/core/errors.hpp"
#include "sim/run.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// One linear leaky neuron h driven through weight w by a clamped input:
//   τ ẋ = −c x + w u   ⇒   x(t) = x* (1 − e^{−c (t − t_on)/τ}),  x* = w u / c.
std::string neuron_toml(const std::string& stepper, double dt0, const std::string& input) {
  return R"(
[network]
[[network.population]]
name = "u"
size = 1
role = "input"
[[network.population]]
name = "h"
size = 1
activation = "linear"
[[network.projection]]
from = "u"
to = "h"
edges = [[0, 0, 1.5]]
[model]
c = 0.8
tau = 0.5
[input]
)" + input + R"(
[integrator]
stepper = ")" + stepper + R"("
rtol = 1e-10
atol = 1e-12
dt0 = )" + std::to_string(dt0) + R"(
t_end = 4.0
[output]
sample_dt = 0.1
)";
}

constexpr double weight = 1.5, leak = 0.8, tau = 0.5, drive_value = 0.6;

double exact_neuron(double t, double t_on) {
  if (t <= t_on) return 0.0;
  const double x_star = weight * drive_value / leak;
  return x_star * (1.0 - std::exp(-leak * (t - t_on) / tau));
}

// Largest error over the samples of a neuron run.
double neuron_error(const Recorder& rec, double t_on) {
  double worst = 0.0;
  for (std::size_t i = 0; i < rec.times.size(); ++i) {
    worst = std::max(worst, std::abs(rec.states[i][0] - exact_neuron(rec.times[i], t_on)));
  }
  return worst;
}

}  // namespace

TEST_CASE("every stepper solves one leaky neuron with constant drive") {
  struct Case {
    std::string stepper;
    double dt0;
    double tolerance;  // derived from the method's error, not tuned
  };
  // Adaptive steppers at rtol 1e-10: global error a few times rtol·x* (x* = 1.125).
  // rk4 at dt 0.01: global error ≈ (c dt/τ)^4/120 · x* ≈ 5e-10; euler at dt 1e-4: the first-order
  // global error is at most dt·(c/τ)·x*/(2e) ≈ 3.3e-5 (maximum of t e^{−t} is 1/e).
  const Case cases[] = {{"dopri5", 0, 1e-8}, {"rkck54", 0, 1e-8}, {"rkf78", 0, 1e-8},
                        {"bs", 0, 1e-8},     {"rk4", 0.01, 1e-8}, {"euler", 1e-4, 4e-5}};
  for (const Case& c : cases) {
    CAPTURE(c.stepper);
    const std::string toml = neuron_toml(c.stepper, c.dt0, "kind = \"constant\"\nvalue = [0.6]");
    Simulation sim(experiment_from_toml(toml));
    Recorder rec;
    State final_state;
    const IntegrationResult r = sim.run(rec, final_state);
    REQUIRE(r.outcome == Outcome::success);
    CHECK(rec.times.size() == 41);
    CHECK(neuron_error(rec, 0.0) < c.tolerance);
    CHECK(r.stats.steps > 0);
    CHECK(r.stats.rhs_evals >= r.stats.steps);  // euler: one evaluation per step
  }
}

TEST_CASE("a step input at t0 is met exactly: no step straddles it") {
  // t0 = 0.37 is neither a sample time nor a natural step end.
  for (const std::string stepper : {"dopri5", "rkck54", "bs", "rk4"}) {
    CAPTURE(stepper);
    const std::string toml = neuron_toml(stepper, stepper == "rk4" ? 0.01 : 0.0,
                                   "kind = \"step\"\nt0 = 0.37\nvalue = [0.6]");
    Simulation sim(experiment_from_toml(toml));
    Recorder rec;
    State final_state;
    REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
    CHECK(std::find(rec.step_ends.begin(), rec.step_ends.end(), 0.37) != rec.step_ends.end());
    // Before the step the state stays exactly 0; after it the exact solution holds at every
    // sample, which would fail near t0 if a step had straddled the discontinuity.
    for (std::size_t i = 0; i < rec.times.size(); ++i) {
      if (rec.times[i] <= 0.37) CHECK(rec.states[i][0] == 0.0);
    }
    CHECK(neuron_error(rec, 0.37) < 1e-8);
  }
}

TEST_CASE("samples are taken at exact multiples of sample_dt") {
  const auto times = sample_times(0.0, 1.0, 0.1);
  REQUIRE(times.size() == 11);
  for (std::size_t k = 0; k < times.size(); ++k) CHECK(times[k] == static_cast<double>(k) * 0.1);
  CHECK(sample_times(0.05, 0.31, 0.1) == std::vector<double>{0.1, 0.2, 0.30000000000000004});
  CHECK(sample_times(0.0, 0.3, 0.1).back() == 0.3);  // 3·0.1 rounds above 0.3: snapped to t_end
}

namespace {

// Error at t = 2 of a 3-layer tanh network integrated with a fixed step dt, against rkf78 at 1e-13.
double fixed_step_error(const std::string& stepper, double dt) {
  const std::string toml = R"(
[network]
layers = [2, 5, 5, 2]
seed = 4
init = { weights = "normal", scale = 2.0, bias = "normal", bias_scale = 0.5 }
[input]
kind = "sine"
amplitude = [1.0, 0.5]
frequency = [0.2, 0.45]
[integrator]
t_end = 2.0
[output]
sample_dt = 2.0
)";
  const Experiment ex = experiment_from_toml(toml);
  Simulation sim(ex);
  Recorder rec;
  State reference, state;
  IntegratorSpec spec = ex.integrator;
  spec.stepper = "rkf78";
  spec.rtol = spec.atol = 1e-13;
  REQUIRE(sim.run(spec, {2.0}, rec, reference).outcome == Outcome::success);
  spec.stepper = stepper;
  spec.dt0 = dt;
  REQUIRE(sim.run(spec, {2.0}, rec, state).outcome == Outcome::success);
  double err = 0.0;
  for (std::size_t i = 0; i < state.size(); ++i) err = std::max(err, std::abs(state[i] - reference[i]));
  return err;
}

}  // namespace

TEST_CASE("convergence order: halving dt divides the error by about 2^p") {
  struct Case {
    std::string stepper;
    int order;
    double dt;
  };
  for (const Case& c : {Case{"euler", 1, 0.02}, Case{"rk4", 4, 0.1}}) {
    CAPTURE(c.stepper);
    const double e1 = fixed_step_error(c.stepper, c.dt);
    const double e2 = fixed_step_error(c.stepper, c.dt / 2);
    const double e3 = fixed_step_error(c.stepper, c.dt / 4);
    const double expected = std::pow(2.0, c.order);
    // In the asymptotic regime the ratio is 2^p (1 + O(dt)); a 15% band separates p from p ± 1.
    CHECK(e1 / e2 == doctest::Approx(expected).epsilon(0.15));
    CHECK(e2 / e3 == doctest::Approx(expected).epsilon(0.15));
  }
}

TEST_CASE("failures end the run with an outcome and the time they happened") {
  // A linear self-excitation with rate w − c = 999: x overflows to inf before t = 1.
  const std::string blowup = R"(
[network]
[[network.population]]
name = "u"
size = 1
role = "input"
[[network.population]]
name = "h"
size = 1
activation = "linear"
[[network.projection]]
from = "u"
to = "h"
edges = [[0, 0, 1.0]]
[[network.projection]]
from = "h"
to = "h"
edges = [[0, 0, 1000.0]]
[input]
value = [1.0]
[integrator]
t_end = 5.0
[output]
sample_dt = 0.01
)";
  SUBCASE("non-finite state") {
    Simulation sim(experiment_from_toml(blowup, {"integrator.stepper=euler", "integrator.dt0=0.01"}));
    Recorder rec;
    State final_state;
    const IntegrationResult r = sim.run(rec, final_state);
    CHECK(r.outcome == Outcome::err_nf_state);
    // Euler multiplies x by 1 + dt (w − c) = 10.99 per step: x passes DBL_MAX after about
    // ln(DBL_MAX · 999) / ln(10.99) ≈ 298 steps, at t ≈ 2.98 (the exact solution, at t ≈ 0.71).
    CHECK(r.t == doctest::Approx(2.98).epsilon(0.01));
    CHECK(r.message.find("non-finite state at t =") != std::string::npos);
    for (const State& s : rec.states) CHECK(std::isfinite(s[0]));  // never observed
  }
  SUBCASE("step limit") {
    Simulation sim(experiment_from_toml(blowup, {"integrator.max_steps=7"}));
    Recorder rec;
    State final_state;
    const IntegrationResult r = sim.run(rec, final_state);
    CHECK(r.outcome == Outcome::step_limit);
    CHECK(r.stats.steps == 7);
    CHECK(r.message.find("max_steps = 7 reached at t =") != std::string::npos);
  }
}

TEST_CASE("the error norms: max is the largest scaled error, rms Hairer's root mean square") {
  // Scaled by atol = 1e-6 (x = 0): errors 3, 0, 0, −4 in units of the tolerance.
  const State x_old(4, 0.0), dxdt_old(4, 0.0);
  State err{3e-6, 0.0, 0.0, -4e-6};
  ParallelAlgebra algebra;
  CHECK(ErrorChecker(1e-6, 1e-3, ErrorNorm::max).error(algebra, x_old, dxdt_old, err, 0.1) ==
        doctest::Approx(4.0).epsilon(1e-15));
  err = {3e-6, 0.0, 0.0, -4e-6};
  CHECK(ErrorChecker(1e-6, 1e-3, ErrorNorm::rms).error(algebra, x_old, dxdt_old, err, 0.1) ==
        doctest::Approx(2.5).epsilon(1e-15));  // sqrt((9 + 16)/4)
  // rtol scales by |x_old| (not by the derivative): error 1e-4 at x = 100, rtol 1e-6, atol 0.
  State x_big{100.0}, d_big{1e9}, err_big{1e-4};
  CHECK(ErrorChecker(0.0, 1e-6, ErrorNorm::rms).error(algebra, x_big, d_big, err_big, 0.1) ==
        doctest::Approx(1.0).epsilon(1e-15));
}

TEST_CASE("integrator.norm = rms: one moving component among n is held to sqrt(n) times the max-norm tolerance") {
  // The neuron h moves; the 15 neurons of z have no input and stay exactly at 0, so every stage
  // of theirs is 0 and so is their error estimate. The rms norm of the step's error is then the
  // max norm divided by sqrt(16) = 4: rms at (rtol, atol) takes the steps of max at 4·(rtol, atol)
  // (to the rounding of the two formulas), and more steps than max at (rtol, atol).
  const std::string base = neuron_toml("dopri5", 0.01, "kind = \"constant\"\nvalue = [0.6]") + R"(
[[network.population]]
name = "z"
size = 15
activation = "linear"
)";
  auto run = [&](const std::string& stepper, const std::string& norm, double scale) {
    const Experiment ex = experiment_from_toml(
        base, {"integrator.stepper=\"" + stepper + "\"", "integrator.norm=\"" + norm + "\"",
               "output.sample_dt=1.0",  // few samples: rkck54 and rkf78 stop at each
               fmt::format("integrator.rtol={:.17g}", 1e-7 * scale),
               fmt::format("integrator.atol={:.17g}", 1e-9 * scale)});
    Simulation sim(ex);
    Recorder rec;
    State final_state;
    const IntegrationResult r = sim.run(rec, final_state);
    REQUIRE(r.outcome == Outcome::success);
    REQUIRE(final_state.size() == 16);
    return std::make_pair(r.stats, rec);
  };
  for (const std::string stepper : {"dopri5", "rkck54", "rkf78"}) {
    CAPTURE(stepper);
    const auto [rms_stats, rms] = run(stepper, "rms", 1.0);
    const auto [loose_stats, loose] = run(stepper, "max", 4.0);
    const auto [max_stats, strict] = run(stepper, "max", 1.0);
    CHECK(rms_stats.steps == loose_stats.steps);
    CHECK(rms_stats.rejected == loose_stats.rejected);
    REQUIRE(rms.states.size() == loose.states.size());
    for (std::size_t k = 0; k < rms.states.size(); ++k) {
      CHECK(std::abs(rms.states[k][0] - loose.states[k][0]) <= 1e-13);
    }
    CHECK(rms_stats.steps < max_stats.steps);
    REQUIRE(rms.times.size() == 5);
    CHECK(neuron_error(rms, 0.0) < 4e-6);  // a few times the looser tolerance
  }
}

TEST_CASE("integrator.norm is refused where the stepper has no choice of norm") {
  const std::string toml = neuron_toml("dopri5", 0.01, "kind = \"constant\"\nvalue = [0.6]");
  auto error_of = [&](const std::vector<std::string>& set) -> std::string {
    try {
      experiment_from_toml(toml, set);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(error_of({"integrator.norm=\"rms\""}).empty());
  CHECK(error_of({"integrator.norm=\"l2\""}).find("integrator.norm") != std::string::npos);
  const std::string bs = error_of({"integrator.norm=\"rms\"", "integrator.stepper=\"bs\""});
  CHECK(bs.find("integrator.norm") != std::string::npos);
  CHECK(bs.find("'bs' has no choice of error norm") != std::string::npos);
  CHECK(error_of({"integrator.norm=\"rms\"", "integrator.stepper=\"rk4\""}).find("no error control") !=
        std::string::npos);
}
