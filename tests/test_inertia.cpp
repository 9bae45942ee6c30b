// Inertia in the costate model (models/costate.hpp, issue 13): the massive weights against the
// damped particle's closed form, the limit m_W → 0 against the overdamped flow (error ∝ m_W),
// and the neurons' inertial force m_x ẍ against finite differences of ẋ along the flow. The
// settled λ with m_x > 0 (still backprop's) and the thread independence are checked with the
// massless cases in tests/test_costate.cpp.
#include <fmt/format.h>

#include <cmath>

#include "models/costate.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// A 3-4-2 tanh network, every projection and bias plastic, a constant input and target.
const char* small_toml = R"(
[network]
layers = [3, 4, 2]
activation = "tanh"
plastic = true
seed = 5
init = { weights = "normal", scale = 1.2, bias = "normal", bias_scale = 0.3 }
[model]
type = "costate"
gamma = 2.0
kappa = 0.05
[input]
value = [0.8, -0.5, 0.3]
target = [0.4, -0.2]
[integrator]
rtol = 1e-11
atol = 1e-13
t_end = 6.0
[output]
sample_dt = 1.0
)";

Eigen::VectorXd learned(const CostateModel& m, const State& s) {
  std::vector<double> out;
  for (const Block& b : m.layout().blocks()) {
    if (b.kind == "W" || b.kind == "b") out.insert(out.end(), s.begin() + b.offset, s.begin() + b.offset + b.size);
  }
  return Eigen::Map<Eigen::VectorXd>(out.data(), static_cast<Eigen::Index>(out.size()));
}

}  // namespace

TEST_CASE("inertia: a massive weight under a constant force follows the damped particle's closed form") {
  // Linear units and time constants of 1e15 freeze x and λ at the values set below (they move
  // by 1e-14 over the run), so the force δ xᵀ = λ uᵀ on W (λ on b) is constant and κ = 0:
  //   m Ẅ + γ Ẇ = F,  W(0) = W0,  Ẇ(0) = 0  ⇒  W(t) = W0 + (F/γ)(t − (m/γ)(1 − e^{−γt/m})).
  const double gamma = 1.5, m = 0.6;
  const Experiment ex = experiment_from_toml(fmt::format(R"(
[network]
layers = [2, 3]
activation = "linear"
plastic = true
seed = 3
[model]
type = "costate"
tau_x = 1e15
tau_lambda = 1e15
gamma = {}
m_w = {}
[input]
value = [0.7, -0.4]
[integrator]
rtol = 1e-11
atol = 1e-13
t_end = 4.0
[output]
sample_dt = 0.5
)", gamma, m));
  Simulation sim(ex);
  const auto& model = dynamic_cast<const CostateModel&>(*sim.model);
  const StateLayout& layout = model.layout();
  State s(static_cast<std::size_t>(layout.size()));
  model.initial_state(s);
  const Eigen::Vector3d lambda(0.9, -0.3, 0.5);
  layout.vector(s, model.costates().block(1)) = lambda;
  layout.vector(s, model.neurons().block(1)) = Eigen::Vector3d(0.2, 0.1, -0.4);
  const Eigen::Vector2d u(0.7, -0.4);
  const BlockId w = layout.find("W", sim.network.projections[0].name);
  const BlockId b = layout.find("b", sim.network.populations[1].name);
  const BlockId wdot = layout.find("Wdot", sim.network.projections[0].name);
  REQUIRE(layout.contains("bdot", sim.network.populations[1].name));
  const Eigen::VectorXd w0 = layout.vector(s, w), b0 = layout.vector(s, b);
  // F = λ uᵀ, row-major like the block.
  Eigen::VectorXd force(6);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) force[2 * i + j] = lambda[i] * u[j];
  }

  Recorder rec;
  REQUIRE(integrate(model, sim.drive, s, ex.integrator, Simulation::sample_times_of(ex), rec).outcome ==
          Outcome::success);
  REQUIRE(rec.times.size() == 9);
  for (std::size_t i = 0; i < rec.times.size(); ++i) {
    const double t = rec.times[i];
    CAPTURE(t);
    const double shape = t - (m / gamma) * (1.0 - std::exp(-gamma * t / m));
    const double speed = (1.0 - std::exp(-gamma * t / m)) / gamma;
    const Eigen::VectorXd w_exact = w0 + force * (shape / gamma);
    const Eigen::VectorXd b_exact = b0 + lambda * (shape / gamma);
    CHECK(max_abs_diff(layout.vector(rec.states[i], w), w_exact) <= 1e-9);
    CHECK(max_abs_diff(layout.vector(rec.states[i], b), b_exact) <= 1e-9);
    CHECK(max_abs_diff(layout.vector(rec.states[i], wdot), force * speed) <= 1e-9);
  }
  // The particle is not yet at its terminal velocity F/γ at t = 1 (e^{−2.5} = 8%): the closed
  // form tells the massive weight from an overdamped one.
  const double lag = (m / gamma) * (1.0 - std::exp(-gamma * 4.0 / m)) / gamma;
  CHECK(lag * force.cwiseAbs().maxCoeff() > 1e-2);
}

TEST_CASE("inertia: as m_W → 0 the trajectory converges to the overdamped flow, error ∝ m_W") {
  const auto run = [](const std::string& mass, double& velocity_norm) {
    const Experiment ex = experiment_from_toml(small_toml, {"model.m_w=" + mass});
    Simulation sim(ex);
    Recorder rec;
    State s;
    REQUIRE(sim.run(rec, s).outcome == Outcome::success);
    const auto& model = dynamic_cast<const CostateModel&>(*sim.model);
    std::vector<Eigen::VectorXd> path;
    for (const State& st : rec.states) path.push_back(learned(model, st));
    velocity_norm = 0.0;
    for (const Block& b : model.layout().blocks()) {
      if (b.kind == "Wdot") velocity_norm += Eigen::Map<const Eigen::VectorXd>(s.data() + b.offset, b.size).norm();
    }
    return path;
  };
  double v0 = 0.0;
  const auto reference = run("0", v0);
  CHECK(v0 == 0.0);  // m_W = 0 has no velocity blocks
  std::vector<double> errors;
  for (const double m : {0.04, 0.02, 0.01}) {
    double v = 0.0;
    const auto path = run(fmt::format("{}", m), v);
    CHECK(v > 0.0);
    REQUIRE(path.size() == reference.size());
    double err = 0.0;
    for (std::size_t i = 0; i < path.size(); ++i) err = std::max(err, max_abs_diff(path[i], reference[i]));
    errors.push_back(err);
    MESSAGE(fmt::format("m_W = {}: max |θ − θ_overdamped| = {:.3e}", m, err));
  }
  CHECK(errors[0] > 1e-4);  // the masses change the trajectory measurably
  // First order: halving m_W halves the error (ratio 2 up to O(m_W) corrections).
  for (std::size_t i = 0; i + 1 < errors.size(); ++i) {
    const double ratio = errors[i] / errors[i + 1];
    CAPTURE(ratio);
    CHECK(ratio > 1.85);
    CHECK(ratio < 2.15);
  }
}

TEST_CASE("inertia: the neurons' inertial force m_x ẍ equals finite differences of ẋ along the flow") {
  // A sine input (u̇ ≠ 0), two hidden layers, every parameter plastic, with and without massive
  // weights (Ẇ from the velocity blocks, or from the overdamped flow). At a generic state s of
  // the trajectory, the costate's extra term m_x ẍ/τ_λ (the difference of the λ rates with and
  // without m_x) is compared with m_x/τ_λ · (ẋ(s + h ṡ, t + h) − ẋ(s − h ṡ, t − h))/(2h):
  // truncation O(h²) ≈ 1e-10, rounding ≈ 1e-16/h ≈ 1e-11.
  for (const std::string m_w : {"0", "0.3"}) {
    CAPTURE(m_w);
    const std::string toml = R"(
[network]
layers = [3, 5, 4, 2]
activation = "tanh"
plastic = true
seed = 17
init = { weights = "normal", scale = 1.1, bias = "normal", bias_scale = 0.4 }
[model]
type = "costate"
tau_x = 0.7
tau_lambda = 1.3
c = 0.9
gamma = 1.7
kappa = 0.02
[input]
kind = "sine"
amplitude = [1.0, 0.5, 0.8]
frequency = [0.3, 0.7, 0.2]
phase = [0.0, 1.0, 2.0]
target = [0.4, -0.3]
[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 1.3
[output]
sample_dt = 1.3
)";
    const double m_x = 0.45, tau_lambda = 1.3;
    const Experiment with = experiment_from_toml(toml, {"model.m_w=" + m_w, fmt::format("model.m_x={}", m_x)});
    const Experiment without = experiment_from_toml(toml, {"model.m_w=" + m_w});
    Simulation sim(with), plain(without);
    Recorder rec;
    State s;
    REQUIRE(sim.run(rec, s).outcome == Outcome::success);
    const double t = with.integrator.t_end;
    const auto& model = dynamic_cast<const CostateModel&>(*sim.model);
    const StateLayout& layout = model.layout();
    REQUIRE(layout.size() == plain.model->layout().size());

    State ds(s.size()), ds_plain(s.size());
    model.rhs(s, ds, t);
    plain.model->rhs(s, ds_plain, t);
    const double h = 1e-5;
    State ahead(s.size()), behind(s.size()), d_ahead(s.size()), d_behind(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      ahead[i] = s[i] + h * ds[i];
      behind[i] = s[i] - h * ds[i];
    }
    plain.model->rhs(ahead, d_ahead, t + h);
    plain.model->rhs(behind, d_behind, t - h);
    for (std::size_t p = 1; p < sim.network.populations.size(); ++p) {
      CAPTURE(p);
      const Block& xb = layout.block(model.neurons().block(p));
      const Block& lb = layout.block(model.costates().block(p));
      Eigen::VectorXd fd(xb.size), term(lb.size);
      for (Eigen::Index j = 0; j < xb.size; ++j) {
        const auto i = static_cast<std::size_t>(xb.offset + j);
        fd[j] = (m_x / tau_lambda) * (d_ahead[i] - d_behind[i]) / (2 * h);
        const auto k = static_cast<std::size_t>(lb.offset + j);
        term[j] = ds[k] - ds_plain[k];
      }
      CAPTURE(fd.transpose());
      CAPTURE(term.transpose());
      CHECK(fd.norm() > 1e-3);  // the neurons accelerate: the check is not of zeros
      CHECK(max_abs_diff(term, fd) <= 1e-8 * fd.cwiseAbs().maxCoeff());
    }
  }
}
