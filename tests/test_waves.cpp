// Wave arrival times (sim/waves.hpp): analytic curves, the closed-form linear wave of a layered
// network, and arrivals that grow with depth in random tanh networks (issue 9).
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "outputs/h5file.hpp"
#include "sim/run.hpp"
#include "sim/waves.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {
using Rows = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}  // namespace

TEST_CASE("half-change time: first crossing of half the change, interpolated") {
  std::vector<double> t, d;
  for (int i = 0; i <= 300; ++i) {
    t.push_back(1.0 + i * 0.01);
    d.push_back(3.0 * (1.0 - std::exp(-(t.back() - 1.0))));
  }
  // d = 3(1 − e^{−(t−1)}) reaches half of its change 3(1 − e^{−3}) at t = 1 − ln(1 − (1 − e^{−3})/2);
  // linear interpolation over 0.01 errs by < 0.01²·max|d''|/8/|d'|.
  const double expected = 1.0 - std::log(1.0 - (1.0 - std::exp(-3.0)) / 2.0);
  const auto arrival = half_change_time(t, d, 3.0);
  REQUIRE(arrival);
  CHECK(*arrival == doctest::Approx(expected).epsilon(1e-5));
  const std::vector<double> flat(t.size(), 0.0);
  CHECK_FALSE(half_change_time(t, flat, 1.0));                       // no change: undefined
  CHECK_FALSE(half_change_time(std::vector<double>{1.0}, std::vector<double>{0.0}, 1.0));  // 1 sample
  // A ramp crossing between samples: interpolation is exact.
  const std::vector<double> tr{0, 1, 2, 3}, dr{0, 0, 2, 2};
  CHECK(*half_change_time(tr, dr, 2.0) == doctest::Approx(1.5));
}

TEST_CASE("wave arrival: the norm of the change does not cancel where the mean does") {
  // Two neurons moving in opposite directions, x = ±(1 − e^{−t}) and a third x = 2(1 − e^{−t/2}):
  // the mean is (2/3)(1 − e^{−t/2}) but the norm of the change is a different curve; each
  // neuron's half-time is ln 2 (the first two) and 2 ln 2 (the third).
  std::vector<double> t;
  Rows samples(2001, 3);
  for (int i = 0; i <= 2000; ++i) {
    t.push_back(i * 0.01);
    const double a = 1.0 - std::exp(-t.back()), b = 2.0 * (1.0 - std::exp(-t.back() / 2.0));
    samples.row(i) << a, -a, b;
  }
  const WaveArrival w = wave_arrival(t, samples);
  REQUIRE(w.arrival);
  // Oracle: bisection on the closed-form norm ‖x(t)‖ = sqrt(2a² + b²) against half its final value.
  const auto norm = [](double s) {
    const double a = 1.0 - std::exp(-s), b = 2.0 * (1.0 - std::exp(-s / 2.0));
    return std::sqrt(2 * a * a + b * b);
  };
  const double half = 0.5 * norm(20.0);
  double lo = 0.0, hi = 20.0;
  for (int i = 0; i < 200; ++i) (norm(0.5 * (lo + hi)) < half ? lo : hi) = 0.5 * (lo + hi);
  CHECK(*w.arrival == doctest::Approx(lo).epsilon(1e-5));
  // Half-times (half of the change at t = 20, not of the asymptote): h1 = −ln(1 − (1 − e^{−20})/2)
  // twice and h3 = −2 ln(1 − (1 − e^{−10})/2), each to the 1e-5 of linear interpolation:
  // median h1, quartiles (linear, as numpy) h1 and (h1 + h3)/2.
  const double h1 = -std::log(1.0 - (1.0 - std::exp(-20.0)) / 2.0);
  const double h3 = -2.0 * std::log(1.0 - (1.0 - std::exp(-10.0)) / 2.0);
  CHECK(w.neuron_quartiles[0] == doctest::Approx(h1).epsilon(1e-5));
  CHECK(w.neuron_quartiles[1] == doctest::Approx(h1).epsilon(1e-5));
  CHECK(w.neuron_quartiles[2] == doctest::Approx(0.5 * (h1 + h3)).epsilon(1e-5));
}

TEST_CASE("front speed: the least-squares line through (depth, delay)") {
  const std::vector<double> depth{1, 2, 3, 4}, delay{0.5, 1.0, 1.5, 2.0};
  const FrontFit fit = front_speed(depth, delay);
  CHECK(fit.speed == doctest::Approx(2.0));
  CHECK(fit.r2 == doctest::Approx(1.0));
  CHECK(std::isnan(front_speed(std::vector<double>{1}, std::vector<double>{2}).speed));
}

namespace {

const char* chain_toml = R"(
[network]
layers = [3, 4, 5, 4, 3, 4, 2]
activation = "linear"
seed = 11
init = { weights = "normal", scale = 1.2, bias = "normal", bias_scale = 0.3 }
[model]
c = 0.7
tau = 1.0
[input]
kind = "constant"
value = [0.5, -1.0, 0.25]
[integrator]
rtol = 1e-11
atol = 1e-12
t_end = 30.0
[output]
sample_dt = 0.05
)";

// Runs `ex` into a file of `dir` and reads the file's summary back.
RunFileSummary run_and_read(const Experiment& ex, const TempDir& dir, const std::string& name) {
  RunOptions options;
  options.output_path = (dir.path() / name).string();
  options.threads = 1;
  Run run(ex, options);
  const RunReport report = run.execute();
  REQUIRE(report.result.outcome == Outcome::success);
  return read_run_summary(options.output_path);
}

}  // namespace

TEST_CASE("the linear wave of a layered network: stored arrivals equal the closed form's") {
  // ẋ = −c x + M x + drive with M strictly block-lower (nilpotent): x(t) = x* − e^{−ct}
  // Σ_{k<L} (t^k/k!) M^k (x* − x(0)). The arrivals the run stores (/waves/x/<layer>) are those of
  // the closed form at the same samples (to the integration error), and those of the closed
  // form on a fine grid to the sampling resolution.
  const Experiment ex = experiment_from_toml(chain_toml);
  Simulation sim(ex);
  const StateLayout& layout = sim.model->layout();
  const LinearChain chain(sim);
  const auto closed_form_arrival = [&](const Block& b, double dt) {
    std::vector<double> t;
    Rows samples(static_cast<Eigen::Index>(std::llround(30.0 / dt)) + 1, b.size);
    for (Eigen::Index i = 0; i < samples.rows(); ++i) {
      t.push_back(static_cast<double>(i) * dt);
      samples.row(i) = chain.at(t.back()).segment(b.offset, b.size).transpose();
    }
    return wave_arrival(t, samples);
  };

  const TempDir dir;
  const RunFileSummary s = run_and_read(ex, dir, "chain.h5");
  double previous = 0.0;
  std::size_t checked = 0;
  for (const auto& w : s.waves) {
    if (w.kind != "x") continue;
    CAPTURE(w.population);
    REQUIRE(w.arrival.size() == 1);
    const Block& b = layout.block(layout.find("x", w.population));
    const WaveArrival sampled = closed_form_arrival(b, 0.05), fine = closed_form_arrival(b, 1e-4);
    REQUIRE(sampled.arrival);
    CHECK(w.arrival[0] == doctest::Approx(*sampled.arrival).epsilon(1e-7));
    CHECK(std::abs(w.arrival[0] - *fine.arrival) < 0.05);  // the sampling resolution
    CHECK(w.quartiles[0] == doctest::Approx(sampled.neuron_quartiles[0]).epsilon(1e-7));
    CHECK(w.arrival[0] > previous);  // the front moves with depth
    previous = w.arrival[0];
    ++checked;
  }
  CHECK(checked == 6);
}

TEST_CASE("arrivals grow with depth in random tanh networks of depth 10 (20 seeds)") {
  // A step of the input at t = 30 reaches a network at rest: layer l starts to move like t^l
  // (the l-th term of the series), so its half-change comes later than layer l − 1's. (The mean
  // activity, the former definition, gave 0.69, 2.65, 2.01, … for such a network: not monotone.)
  const TempDir dir;
  int monotone = 0;
  for (int seed = 1; seed <= 20; ++seed) {
    const Experiment ex = experiment_from_toml(R"(
[network]
layers = [4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]
activation = "tanh"
init = { weights = "normal", scale = 1.0, bias = "normal", bias_scale = 0.1 }
[model]
c = 1.0
[input]
kind = "step"
value = [0.8, -0.5, 0.3, 1.0]
t0 = 30.0
[integrator]
rtol = 1e-8
atol = 1e-10
t_end = 70.0
[output]
sample_dt = 0.05
record = { x = "none" }
)", {fmt::format("network.seed={}", seed)});
    const RunFileSummary s = run_and_read(ex, dir, fmt::format("tanh{}.h5", seed));
    std::vector<double> arrivals;
    for (const auto& w : s.waves) {
      // Segment 1: the step, from the network settled on the input before it (segment 0).
      if (w.kind == "x" && std::isfinite(w.arrival.at(1))) arrivals.push_back(w.arrival[1]);
    }
    CAPTURE(seed);
    CAPTURE(fmt::format("{}", fmt::join(arrivals, " ")));
    CHECK(arrivals.size() == 10);
    bool increasing = arrivals.size() == 10;
    for (std::size_t l = 1; l < arrivals.size(); ++l) increasing = increasing && arrivals[l] > arrivals[l - 1];
    CHECK(increasing);
    monotone += increasing;
  }
  CHECK(monotone == 20);
}
