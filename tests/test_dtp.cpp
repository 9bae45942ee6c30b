// Model "dtp": iterated approximate inverses converge at the rate of their linearisation, DTP1
// lands on the target, exact inverses give the Gauss–Newton target, decoder learning makes the
// relaxation contract.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <cmath>

#include "models/dtp.hpp"
#include "sim/core/random.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

TEST_CASE("discrete iterated inverse: rate ρ(I − J_{g∘f}) and the bound C·αᵗ") {
  // f(x) = tanh(W x), g = a perturbed exact inverse, g(y) = (W⁻¹ + E) atanh(y). Near the
  // solution x* of f(x) = y the error obeys e_{t+1} = (I − J_{g∘f}) e_t: it shrinks like ρᵗ
  // (spectral radius) asymptotically and never faster than allowed by α = ‖I − J‖₂ per step.
  Random rng(7);
  const int n = 5;
  Eigen::MatrixXd W(n, n), E(n, n);
  for (int i = 0; i < n * n; ++i) {
    W.data()[i] = rng.normal() / std::sqrt(n);
    E.data()[i] = 0.15 * rng.normal() / std::sqrt(n);
  }
  W += Eigen::MatrixXd::Identity(n, n);
  const Eigen::MatrixXd G = W.inverse() + E;
  auto f = [&](const Eigen::VectorXd& x) -> Eigen::VectorXd { return (W * x).array().tanh(); };
  auto g = [&](const Eigen::VectorXd& y) -> Eigen::VectorXd {
    return G * Eigen::VectorXd(y.array().atanh());
  };
  Eigen::VectorXd x_star(n);
  for (int i = 0; i < n; ++i) x_star[i] = 0.3 * rng.normal();
  const Eigen::VectorXd y = f(x_star);
  // J_{g∘f}(x*) = G diag(1/(1 − y²)) diag(1 − y²) W = G W.
  const Eigen::MatrixXd I_minus_J = Eigen::MatrixXd::Identity(n, n) - G * W;
  const double rho = I_minus_J.eigenvalues().cwiseAbs().maxCoeff();
  const double alpha = I_minus_J.jacobiSvd().singularValues()(0);
  REQUIRE(alpha < 1.0);
  REQUIRE(rho > 0.05);

  Eigen::VectorXd x0 = x_star;
  for (int i = 0; i < n; ++i) x0[i] += 1e-3 * rng.normal();  // the linear regime
  const auto xs = iterate_inverse(f, g, y, x0, 60);
  std::vector<double> t, err;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    t.push_back(static_cast<double>(k));
    err.push_back((xs[k] - x_star).norm());
  }
  // Fitted per-step factor over the later half of the iterates above the rounding floor.
  const double fitted = std::exp(-fitted_decay_rate(t, err));
  CHECK(std::abs(fitted - rho) < 0.01);
  for (std::size_t k = 0; k < xs.size() && err[k] > 1e-13; ++k) {
    // C = 1.01 e_0: the map is linear to ~‖e‖ ≈ 1e-3 relative around x*.
    CHECK(err[k] <= 1.01 * err[0] * std::pow(alpha, static_cast<double>(k)));
  }
}

namespace {

const char* dtp_toml = R"(
[network]
layers = [3, 3, 3]
activation = "tanh"
seed = 1
init = { weights = "orthogonal", scale = 1.0, bias = "normal", bias_scale = 0.1 }
[model]
type = "dtp"
tau_h = 1.0
tau_r = 1.0
beta = 0.1
update = "none"
decoders = "pinv"
decoder_noise = 0.4
[input]
kind = "sequence"
values = [[0.4, -0.2, 0.3]]
targets = [[0.3, 0.1, -0.2]]
phases = [{ name = "forward", duration = 40.0 }, { name = "target", duration = 40.0 }]
[integrator]
rtol = 1e-12
atol = 1e-15
t_end = 80.0
[output]
sample_dt = 0.1
)";

// Runs the DTP experiment with metrics recorded at every sample (as the run does).
struct DtpRun {
  explicit DtpRun(const Experiment& ex) : sim(ex), model(dynamic_cast<const DtpModel&>(*sim.model)) {
    MetricRecorder observer(*sim.model);
    result = sim.run(ex.integrator, Simulation::sample_times_of(ex), observer, state);
    metrics = observer.values;
    model.finish(state, ex.integrator.t_end);
  }
  Simulation sim;
  const DtpModel& model;
  State state;
  IntegrationResult result;
  std::vector<std::vector<double>> metrics;
};

}  // namespace

TEST_CASE("continuous relaxation: the residual decays at the rate of the linearisation") {
  const DtpRun run(experiment_from_toml(dtp_toml));
  REQUIRE(run.result.outcome == Outcome::success);
  // The residual of the top layer's target (layer 1) has one linearisation, J_f J_g at the end
  // of the phase; its eigenvalues must be apart enough for one mode to dominate the fit.
  const Eigen::MatrixXd J = run.model.residual_jacobian(run.state, 2, run.model.target(run.state, 1));
  Eigen::VectorXd re = J.eigenvalues().real();
  std::sort(re.data(), re.data() + re.size());
  REQUIRE(re[1] > 1.3 * re[0]);
  const auto summary = run.model.summary();
  REQUIRE(summary.size() == 6);  // fitted and predicted rates of layers 0 and 1, then diverged
  const std::vector<double>& fitted = summary[2].values;     // layer1 fitted_rate
  const std::vector<double>& predicted = summary[3].values;  // layer1 predicted_rate
  REQUIRE(fitted.size() == 1);
  CHECK(predicted[0] == doctest::Approx(re[0]).epsilon(1e-12));
  CHECK(fitted[0] == doctest::Approx(predicted[0]).epsilon(0.02));  // measured: 0.07% apart
}

TEST_CASE("DTP1: after the update the layer's forward map lands on its target") {
  // η = 1: W_l ← W_l + (τ_l − h_l) σ(h_{l−1})ᵀ/‖σ(h_{l−1})‖², so f_l(h_{l−1}) = τ_l exactly. The
  // target phase ends at t_end: the run applies the update then, with the phase's input.
  Experiment ex = experiment_from_toml(dtp_toml, {"model.update=\"dtp1\"", "model.eta=1.0"});
  const DtpRun run(ex);
  REQUIRE(run.result.outcome == Outcome::success);
  const State& s = run.state;
  const Eigen::Map<const Eigen::VectorXd> u(ex.input.sequence[0].data(), 3);
  for (std::size_t l = 1; l <= run.model.depth(); ++l) {
    CAPTURE(l);
    const Eigen::VectorXd below = l == 1 ? Eigen::VectorXd(u) : Eigen::VectorXd(run.model.h(s, l - 1));
    const Eigen::VectorXd landed = run.model.encode(s, l, below);
    CHECK((landed - run.model.target(s, l)).cwiseAbs().maxCoeff() < 1e-12);
  }
}

TEST_CASE("regression: the end-of-phase update uses the target phase's input, not the next example's") {
  // Two examples: the first target phase ends at t = 80 where the input switches to the second
  // vector. The DTP1 update of layer 1 is (τ_1 − h_1) σ(u)ᵀ/‖σ(u)‖² with u the first vector
  // (the one h was settled with); the update was once taken with the next segment's input.
  Experiment ex = experiment_from_toml(dtp_toml, {"model.update=\"dtp1\"", "model.eta=1.0",
                                                  "input.values=[[0.4, -0.2, 0.3], [-0.5, 0.6, 0.1]]",
                                                  "input.targets=[[0.3, 0.1, -0.2], [0.0, 0.2, 0.1]]",
                                                  "integrator.t_end=81.0"});
  Simulation sim(ex);
  const auto& model = dynamic_cast<const DtpModel&>(*sim.model);
  Recorder rec;
  State final_state;
  REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
  const auto at = [&](double t) {
    return static_cast<std::size_t>(std::find(rec.times.begin(), rec.times.end(), t) - rec.times.begin());
  };
  const State& before = rec.states.at(at(80.0));  // the end of the target phase, before the update
  const State& after = rec.states.at(at(81.0));   // W constant in the forward phase (no flow)
  const Eigen::Map<const Eigen::VectorXd> u(ex.input.sequence[0].data(), 3);
  const Eigen::VectorXd code = u.array().tanh();
  const Eigen::VectorXd miss = (model.target(before, 1) - model.h(before, 1)).col(0);
  const RowMatrix expected = RowMatrix(model.weights(before, 1)) +
                             miss * code.transpose() / code.squaredNorm();
  CHECK((RowMatrix(model.weights(after, 1)) - expected).cwiseAbs().maxCoeff() < 1e-13);
}

TEST_CASE("exact inverses give the Gauss–Newton target: τ_0 − h_0 = −β J⁻¹ ∂L/∂h_L + O(β²)") {
  for (const double beta : {1e-2, 1e-3, 1e-4}) {
    CAPTURE(beta);
    const Experiment ex = experiment_from_toml(
        dtp_toml, {"model.decoders=\"exact\"", "model.decoder_noise=0.0", fmt::format("model.beta={}", beta)});
    const DtpRun run(ex);
    REQUIRE(run.result.outcome == Outcome::success);
    const Network& net = run.sim.network;
    // The settled forward pass and J = ∂h_L/∂h_0 = Π W_l diag(σ'(h_{l−1})), computed here.
    const Eigen::Map<const Eigen::VectorXd> u(ex.input.sequence[0].data(), 3);
    Eigen::VectorXd h = u;
    Eigen::MatrixXd J = Eigen::MatrixXd::Identity(3, 3);
    for (std::size_t l = 1; l <= 2; ++l) {
      const Eigen::VectorXd d = 1.0 - h.array().tanh().square();
      J = net.projections[l - 1].dense * d.asDiagonal() * J;
      h = net.projections[l - 1].dense * Eigen::VectorXd(h.array().tanh()) + net.bias[l];
    }
    const Eigen::Map<const Eigen::VectorXd> y(ex.input.targets[0].data(), 3);
    const Eigen::VectorXd dL = -(y - h);  // ∂L/∂h_L for L = ½‖y − h_L‖²
    const Eigen::VectorXd expected = -beta * J.partialPivLu().solve(dL);
    const Eigen::VectorXd got = run.model.target(run.state, 0) - u;
    CHECK((got - expected).norm() <= 10 * beta * expected.norm());
  }
}

TEST_CASE("decoder learning makes I − g∘f contract, and the relaxation then converges") {
  // Random decoders start far from inverses (α > 1); the reconstruction flow over a dozen inputs
  // learns them until α < 1, after which the targets of every target phase converge.
  const Experiment ex = experiment_from_toml(R"(
[network]
layers = [3, 3]
activation = "tanh"
seed = 6
init = { weights = "orthogonal", scale = 1.0 }
[model]
type = "dtp"
update = "none"
decoders = "random"
decoder_rate = 0.5
beta = 0.1
[input]
kind = "sequence"
values = [[0.5, -0.3, 0.2], [-0.4, 0.6, 0.1], [0.2, 0.2, -0.7], [-0.6, -0.1, 0.4], [0.1, -0.5, -0.3], [0.7, 0.3, 0.5]]
targets = [[0.1, 0.2, 0.3], [0.0, 0.1, -0.2], [0.3, -0.1, 0.0], [-0.2, 0.2, 0.1], [0.1, 0.0, 0.2], [0.2, -0.3, 0.1]]
phases = [{ name = "forward", duration = 10.0 }, { name = "target", duration = 10.0 }]
[integrator]
rtol = 1e-9
atol = 1e-12
t_end = 2400.0
[output]
sample_dt = 1.0
)");
  const DtpRun run(ex);
  REQUIRE(run.result.outcome == Outcome::success);
  const auto names = run.model.metric_names();
  const auto lip = std::find(names.begin(), names.end(), "relaxation/lipschitz/layer0") - names.begin();
  CHECK(run.metrics[5][lip] > 1.0);
  CHECK(run.metrics.back()[lip] < 1.0);
  const auto summary = run.model.summary();
  const std::vector<double>& fitted = summary[0].values;  // layer0 fitted_rate, per target phase
  REQUIRE(fitted.size() == 120);
  for (std::size_t k = 110; k < fitted.size(); ++k) CHECK(fitted[k] > 0.0);  // decaying residuals
}

TEST_CASE("a time-dependent input: the bottom target follows u(t), and the target phase starts from u at its start") {
  // Sine input u_i(t) = o_i + A_i sin(2π f_i t + φ_i). In the forward phase the targets follow
  // the activities, the bottom one the input itself (dτ_0/dt = du/dt); the target phase sets
  // τ_0 = u(t_b) when it begins. Once the input was read at t = 0 instead (issue 9).
  std::string toml = dtp_toml;
  toml = toml.substr(0, toml.find("[input]")) + R"([input]
kind = "sine"
amplitude = [0.5, 0.3, 0.2]
frequency = [0.2, 0.15, 0.3]
phase = [0.0, 1.0, 2.0]
offset = [0.1, -0.1, 0.0]
target = [0.3, 0.1, -0.2]
phases = [{ name = "forward", duration = 3.0 }, { name = "target", duration = 2.0 }]
[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 10.0
[output]
sample_dt = 0.25
)";
  const Experiment ex = experiment_from_toml(toml);
  Simulation sim(ex);
  const auto& model = dynamic_cast<const DtpModel&>(*sim.model);
  Recorder rec;
  State final_state;
  REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
  const auto u = [&](double t) {
    Eigen::VectorXd v(3);
    for (Eigen::Index i = 0; i < 3; ++i) {
      v[i] = ex.input.offset[i] + ex.input.amplitude[i] *
                 std::sin(2.0 * std::numbers::pi * ex.input.frequency[i] * t + ex.input.phase[i]);
    }
    return v;
  };
  int forward_checked = 0;
  for (std::size_t k = 0; k < rec.times.size(); ++k) {
    const double t = rec.times[k];
    const double in_period = std::fmod(t, 5.0);
    if (in_period == 0.0 || in_period > 3.0) continue;  // forward phase interiors and ends
    CAPTURE(t);
    CHECK((model.target(rec.states[k], 0).col(0) - u(t)).cwiseAbs().maxCoeff() < 1e-8);
    ++forward_checked;
  }
  CHECK(forward_checked == 24);  // 12 samples in (0, 3] and 12 in (5, 8]
  // The target phase's entry event at t = 3 sets τ_0 = u(3) (not u(0), which is far from it).
  const auto at = [&](double t) {
    return static_cast<std::size_t>(std::find(rec.times.begin(), rec.times.end(), t) - rec.times.begin());
  };
  State entered = rec.states.at(at(3.0));
  sim.drive.enter_segment(1, 3.0);
  model.enter_segment(entered, 3.0);
  CHECK((model.target(entered, 0).col(0) - u(3.0)).cwiseAbs().maxCoeff() < 1e-15);
  CHECK((u(3.0) - u(0.0)).cwiseAbs().maxCoeff() > 0.2);
}
