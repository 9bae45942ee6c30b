// The holonomic model (models/holonomic.hpp, issue 15) against the oracles of
// ../shared/notes/holonomic.md §4: G̈ = 0 by finite differences of Ġ (H1), the diagonal G_W G_Wᵀ
// (H2), the constraint residual with and without projection (H3), the m_x → 0 limit against the
// project's backprop (H4), the effective mass (H5), the energy balance (H6), the one-weight closed
// forms (H7), the minimum sign's instability (H8), the strong-dissipation limit against the
// costate model's fixed-point flow (H10); threads, input switches and the talk's chain.
#include <fmt/format.h>

#include <cmath>
#include <random>

#include <Eigen/Dense>

#include "models/costate.hpp"
#include "models/holonomic.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// The talk's 2-2-1 logistic net, every weight and bias plastic, a time-varying input.
const char* net_toml = R"(
[network]
activation = "logistic"
seed = 4
init = {{ weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 }}
[[network.population]]
name = "in"
size = 2
role = "input"
[[network.population]]
name = "hidden"
size = 2
[[network.population]]
name = "out"
size = 1
role = "output"
[[network.projection]]
from = "in"
to = "hidden"
plastic = true
[[network.projection]]
from = "hidden"
to = "out"
plastic = true
[model]
type = "holonomic"
m_x = {}
m_w = {}
theta = {}
{}
[input]
{}
target = [0.8]
[integrator]
rtol = {}
atol = {}
t_end = {}
[output]
sample_dt = {}
)";

const char* sine_input = "kind = \"sine\"\namplitude = [0.8, 0.5]\nfrequency = [0.13, 0.21]\n"
                         "offset = [0.2, -0.1]\nphase = [0.3, 1.1]";
const char* constant_input = "value = [0.7, -0.4]";

struct Net {
  double m_x = 1.0, m_w = 2.0, theta = 0.3;
  std::string model_extra;
  std::string input = sine_input;
  double rtol = 1e-8, atol = 1e-10, t_end = 10.0, sample_dt = 0.5;
  Experiment experiment() const {
    return experiment_from_toml(fmt::format(fmt::runtime(net_toml), m_x, m_w, theta, model_extra,
                                            input, rtol, atol, t_end, sample_dt));
  }
};

const HolonomicModel& holonomic(const Simulation& sim) {
  return dynamic_cast<const HolonomicModel&>(*sim.model);
}

// The state at t0 after the start's events (on the manifold, at rest), with random velocities.
State start(Simulation& sim, bool random_velocities, std::uint32_t seed = 7) {
  const Model& model = *sim.model;
  State s(static_cast<std::size_t>(model.layout().size()));
  model.initial_state(s);
  const double t0 = sim.signal.boundaries().front();
  sim.drive.enter_segment(0, t0);
  model.enter_segment(s, t0);
  if (random_velocities) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal(0.0, 0.7);
    for (const Block& b : model.layout().blocks()) {
      if (b.kind == "xdot" || b.kind == "Wdot" || b.kind == "bdot") {
        for (Eigen::Index i = 0; i < b.size; ++i) s[static_cast<std::size_t>(b.offset + i)] = normal(rng);
      }
    }
  }
  return s;
}

// G_x = I − D W̃ and G_W (columns: W/in_hidden row-major, W/hidden_out, b/hidden, b/out) of the
// 2-2-1 net at evaluation e, built here independently of the model.
struct Jacobians {
  Eigen::MatrixXd gx, gw;
};
Jacobians jacobians(const HolonomicModel& m, const State& s, const HolonomicModel::Evaluation& e,
                    const Eigen::VectorXd& u) {
  const auto w = m.weights(s);
  const Eigen::MatrixXd w1 = w[0].dense(), w2 = w[1].dense();
  Eigen::VectorXd d(3);
  for (int j = 0; j < 3; ++j) {
    const double sg = 1.0 / (1.0 + std::exp(-e.a(j, 0)));
    d[j] = sg * (1.0 - sg);
  }
  Jacobians jac;
  jac.gx = Eigen::MatrixXd::Identity(3, 3);
  jac.gx.block(2, 0, 1, 2) = -d[2] * w2;
  jac.gw = Eigen::MatrixXd::Zero(3, 9);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 2; ++c) jac.gw(r, 2 * r + c) = -d[r] * u[c];
  }
  for (int c = 0; c < 2; ++c) jac.gw(2, 4 + c) = -d[2] * e.x(c, 0);
  jac.gw(0, 6) = -d[0];
  jac.gw(1, 7) = -d[1];
  jac.gw(2, 8) = -d[2];
  return jac;
}

double max_metric(const MetricRecorder& rec, const std::string& name, std::size_t from = 0) {
  const std::size_t i = rec.index(name);
  double m = 0.0;
  for (std::size_t k = from; k < rec.values.size(); ++k) m = std::max(m, std::abs(rec.values[k][i]));
  return m;
}

}  // namespace

TEST_CASE("holonomic H1: λ keeps G̈ = 0 (central differences of Ġ along the flow)") {
  Net net;
  Simulation sim(net.experiment());
  const HolonomicModel& m = holonomic(sim);
  State s = start(sim, true);
  State ds(s.size()), plus(s.size()), minus(s.size());
  const double t = 0.0, h = 1e-5;
  sim.model->rhs(s, ds, t);
  for (std::size_t i = 0; i < s.size(); ++i) {
    plus[i] = s[i] + h * ds[i];
    minus[i] = s[i] - h * ds[i];
  }
  // The input moves too: Ġ at t ± h.
  const Eigen::MatrixXd gdot_plus = m.evaluate(plus, t + h).constraint_rate;
  const Eigen::MatrixXd gdot_minus = m.evaluate(minus, t - h).constraint_rate;
  const double gddot = ((gdot_plus - gdot_minus) / (2 * h)).cwiseAbs().maxCoeff();
  MESSAGE(fmt::format("max |G̈| by central differences: {:.2e}", gddot));
  CHECK(gddot <= 1e-8);
  // Not trivially: Ġ itself is O(1) with random velocities.
  CHECK(m.evaluate(s, t).constraint_rate.cwiseAbs().maxCoeff() > 0.1);
}

TEST_CASE("holonomic H2: G_x G_xᵀ/m_x + G_W G_Wᵀ/m_W with G_W G_Wᵀ diagonal for one pattern") {
  Net net;
  net.m_x = 0.7;
  net.m_w = 1.9;
  Simulation sim(net.experiment());
  const HolonomicModel& m = holonomic(sim);
  const State s = start(sim, true);
  const auto e = m.evaluate(s, 0.0);
  const Jacobians jac = jacobians(m, s, e, sim.drive.at(0.0).col(0));
  const Eigen::MatrixXd gram = jac.gw * jac.gw.transpose();
  CHECK((gram - Eigen::MatrixXd(gram.diagonal().asDiagonal())).cwiseAbs().maxCoeff() == 0.0);
  const Eigen::MatrixXd expected = jac.gx * jac.gx.transpose() / net.m_x + gram / net.m_w;
  const double err = (e.lambda_matrix - expected).cwiseAbs().maxCoeff();
  MESSAGE(fmt::format("M_λ against the independent Jacobians: {:.2e}", err));
  CHECK(err <= 1e-15);
}

TEST_CASE("holonomic H3: constraint residual ≤ 10·rtol without projection, at round-off with it") {
  for (const char* stabilize : {"none", "baumgarte", "project"}) {
    CAPTURE(stabilize);
    Net net;
    net.rtol = 1e-6;
    net.atol = 1e-8;
    net.t_end = 20.0;
    net.model_extra = fmt::format("stabilize = \"{}\"", stabilize);
    Simulation sim(net.experiment());
    MetricRecorder rec(*sim.model);
    State final_state;
    REQUIRE(sim.run(sim.experiment.integrator, Simulation::sample_times_of(sim.experiment), rec,
                    final_state).outcome == Outcome::success);
    const double g = max_metric(rec, "residual/constraint"), gdot = max_metric(rec, "residual/constraint_rate");
    MESSAGE(fmt::format("{}: max|G| = {:.2e}, max|Ġ| = {:.2e}", stabilize, g, gdot));
    if (std::string(stabilize) == "project") {
      CHECK(g <= 1e-12);
      CHECK(gdot <= 1e-12);
    } else {
      CHECK(g <= 10 * net.rtol);
      CHECK(gdot <= 10 * net.rtol);
    }
  }
}

TEST_CASE("holonomic H4: m_x → 0 converges linearly to the project's backprop and m_x = 0 is backprop") {
  std::vector<double> errors;
  for (const double m_x : {1e-1, 1e-3, 1e-5, 0.0}) {
    Net net;
    net.m_x = m_x;
    net.theta = 0.0;
    net.input = constant_input;
    Simulation sim(net.experiment());
    const HolonomicModel& m = holonomic(sim);
    const State s = start(sim, false);
    const auto e = m.evaluate(s, 0.0);
    const auto g = m.reference().gradient(m.weights(s), m.biases(s), sim.drive.at(0.0).col(0),
                                          sim.drive.target().col(0));
    REQUIRE(g.converged);
    double err = 0.0, scale = 0.0;
    for (std::size_t k = 0; k < 2; ++k) {
      err = std::max(err, (e.weight_force[k] - g.weights[k]).cwiseAbs().maxCoeff());
      scale = std::max(scale, g.weights[k].cwiseAbs().maxCoeff());
    }
    errors.push_back(err / scale);
    // λ against backprop's λ (the reduced mode: to round-off).
    const double lambda_err = std::max((e.lambda.topRows(2) - g.lambda[1]).cwiseAbs().maxCoeff(),
                                       (e.lambda.bottomRows(1) - g.lambda[2]).cwiseAbs().maxCoeff());
    MESSAGE(fmt::format("m_x = {:g}: weight force vs −∂V/∂W {:.2e} (relative), λ vs backprop {:.2e}",
                        m_x, errors.back(), lambda_err));
    if (m_x == 0.0) CHECK(lambda_err <= 1e-15);
  }
  CHECK(errors[0] <= 2 * 1e-1);
  CHECK(errors[1] <= 2 * 1e-3);
  CHECK(errors[2] <= 2 * 1e-5);
  // Linear: a factor 100 in m_x is a factor 100 in the error (within 10%).
  CHECK(errors[1] / errors[2] == doctest::Approx(100.0).epsilon(0.1));
  CHECK(errors[3] <= 1e-14);
}

TEST_CASE("holonomic H5: at rest Ẅ = −(m_W I + m_x JᵀJ)⁻¹ ∂V/∂W (the effective mass)") {
  Net net;
  net.m_x = 0.8;
  net.m_w = 1.3;
  net.theta = 0.0;
  net.input = constant_input;
  Simulation sim(net.experiment());
  const HolonomicModel& m = holonomic(sim);
  const State s = start(sim, false);
  State ds(s.size());
  sim.model->rhs(s, ds, 0.0);
  const auto e = m.evaluate(s, 0.0);
  const Jacobians jac = jacobians(m, s, e, sim.drive.at(0.0).col(0));
  const Eigen::MatrixXd j = -jac.gx.inverse() * jac.gw;  // J = ∂x/∂(W, b)
  const auto g = m.reference().gradient(m.weights(s), m.biases(s), sim.drive.at(0.0).col(0),
                                        sim.drive.target().col(0));
  Eigen::VectorXd minus_grad(9);
  minus_grad << g.weights[0], g.weights[1], g.biases[1], g.biases[2];
  const Eigen::MatrixXd mass = net.m_w * Eigen::MatrixXd::Identity(9, 9) + net.m_x * j.transpose() * j;
  const Eigen::VectorXd expected = mass.ldlt().solve(minus_grad);
  const StateLayout& l = m.layout();
  Eigen::VectorXd wddot(9);
  wddot << l.vector(ds, l.find("Wdot", "in_hidden")), l.vector(ds, l.find("Wdot", "hidden_out")),
      l.vector(ds, l.find("bdot", "hidden")), l.vector(ds, l.find("bdot", "out"));
  const double err = (wddot - expected).cwiseAbs().maxCoeff();
  MESSAGE(fmt::format("Ẅ against the effective mass: {:.2e} (|Ẅ| = {:.2e})", err, expected.cwiseAbs().maxCoeff()));
  CHECK(err <= 1e-12);
  // The neurons' mass matters: m_W alone gives another Ẅ.
  CHECK((wddot - minus_grad / net.m_w).cwiseAbs().maxCoeff() > 1e-4);
}

TEST_CASE("holonomic H6: the energy balance d/dt(T + sφV) = −2θT + λ̃·G_t + sφ̇V with a moving input") {
  for (const char* variant : {"stabilize = \"none\"", "stabilize = \"project\"",
                              "stabilize = \"none\"\nsign = \"minimum\"",
                              "stabilize = \"project\"\ndissipation = \"whole\""}) {
    CAPTURE(variant);
    Net net;  // m_x = 1, m_W = 2, θ = 0.3, t ∈ [0, 10]
    net.rtol = 1e-10;
    net.atol = 1e-12;
    net.model_extra = variant;
    Simulation sim(net.experiment());
    MetricRecorder rec(*sim.model);
    State final_state;
    REQUIRE(sim.run(sim.experiment.integrator, Simulation::sample_times_of(sim.experiment), rec,
                    final_state).outcome == Outcome::success);
    const std::size_t ie = rec.index("energy");
    double scale = 0.0;
    for (const auto& v : rec.values) scale = std::max(scale, std::abs(v[ie] - rec.values.front()[ie]));
    const double balance = max_metric(rec, "power_balance");
    MESSAGE(fmt::format("{}: max |Ẽ − budget| = {:.2e}, energy change {:.4f}, relative {:.2e}", variant,
                        balance, scale, balance / scale));
    CHECK(scale > 0.05);  // the input does work
    CHECK(balance <= 10 * net.rtol * scale);
  }
}

TEST_CASE("holonomic H7: one linear weight follows w(t) = y/u + (w0 − y/u) cos ωt (cosh for the minimum sign)") {
  const double u = 0.8, y = 0.6, m_x = 0.5, m_w = 1.5, rtol = 1e-10;
  for (const char* sign : {"mechanics", "minimum"}) {
    for (const double mx : {m_x, 0.0}) {
      CAPTURE(sign);
      CAPTURE(mx);
      const Experiment ex = experiment_from_toml(fmt::format(R"(
[network]
layers = [1, 1]
activation = "linear"
plastic = true
init = {{ weights = "zeros" }}
[model]
type = "holonomic"
m_x = {}
m_w = {}
sign = "{}"
plastic_bias = false
[input]
value = [{}]
target = [{}]
[integrator]
rtol = {}
atol = 1e-12
t_end = 6.0
[output]
sample_dt = 0.5
)", mx, m_w, sign, u, y, rtol));
      Simulation sim(ex);
      Recorder rec;
      State final_state;
      REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
      const StateLayout& l = sim.model->layout();
      const BlockId w = l.find("W", "layer1");
      const double omega = std::sqrt(u * u / (m_w + mx * u * u));
      double err = 0.0, scale = 0.0;
      for (std::size_t i = 0; i < rec.times.size(); ++i) {
        const double t = rec.times[i];
        const double phase = std::string(sign) == "mechanics" ? std::cos(omega * t) : std::cosh(omega * t);
        const double expected = y / u + (0.0 - y / u) * phase;
        err = std::max(err, std::abs(l.vector(rec.states[i], w)[0] - expected));
        scale = std::max(scale, std::abs(expected));
      }
      MESSAGE(fmt::format("{}, m_x = {}: max |w − closed form| = {:.2e} (scale {:.2f})", sign, mx, err, scale));
      CHECK(err <= 100 * rtol * scale);
    }
  }
}

TEST_CASE("holonomic H8: the minimum sign climbs the loss where the mechanical sign descends") {
  double change[2];
  int i = 0;
  for (const char* sign : {"mechanics", "minimum"}) {
    Net net;
    net.m_x = 0.01;
    net.m_w = 1.0;
    net.theta = 1.0;
    net.input = constant_input;
    net.t_end = 5.0;
    net.model_extra = fmt::format("sign = \"{}\"", sign);
    Simulation sim(net.experiment());
    MetricRecorder rec(*sim.model);
    State final_state;
    REQUIRE(sim.run(sim.experiment.integrator, Simulation::sample_times_of(sim.experiment), rec,
                    final_state).outcome == Outcome::success);
    const std::size_t il = rec.index("loss");
    change[i++] = rec.values.back()[il] - rec.values.front()[il];
    MESSAGE(fmt::format("{}: loss {:.4f} → {:.4f}", sign, rec.values.front()[il], rec.values.back()[il]));
  }
  CHECK(change[0] < 0.0);
  CHECK(change[1] > 0.0);
  // The linearised one-weight toy: m ẅ = +h w has the positive root √(h/m) (H7's cosh).
}

TEST_CASE("holonomic H10: the strong-dissipation limit is the costate model's fixed-point flow") {
  // m_x = 0, dissipation "whole", friction θ = γ/m_W: γẆ → −∂V/∂W as m_W → 0, the flow of the
  // costate model at its fixed point (c = 1), at equal W and input; the gap is O(m_W/γ).
  const double gamma = 2.0;
  std::vector<double> gaps;
  for (const double m_w : {1e-2, 1e-3}) {
    Net net;
    net.m_x = 0.0;
    net.m_w = m_w;
    net.theta = gamma / m_w;
    net.input = constant_input;
    net.t_end = 3.0;
    net.sample_dt = 3.0;
    net.model_extra = "dissipation = \"whole\"";
    Simulation sim(net.experiment());
    Recorder rec;
    State final_state;
    REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
    const HolonomicModel& m = holonomic(sim);
    const State& s = rec.states.back();
    // The costate model on the same network at the settled x and backprop λ, with the same W, b.
    Experiment cex = net.experiment();
    cex.model = CostateParams{.gamma = gamma};
    Simulation csim(cex);
    const auto& cm = dynamic_cast<const CostateModel&>(*csim.model);
    State cs(static_cast<std::size_t>(cm.layout().size()));
    cm.initial_state(cs);
    const StateLayout &hl = m.layout(), &cl = cm.layout();
    for (const Block& b : cl.blocks()) {
      if (b.kind == "W" || b.kind == "b") cl.vector(cs, cl.find(b.kind, b.member)) = hl.vector(s, hl.find(b.kind, b.member));
    }
    const auto g = m.reference().gradient(m.weights(s), m.biases(s), csim.drive.at(3.0).col(0),
                                          csim.drive.target().col(0));
    cl.vector(cs, cl.find("x", "hidden")) = g.x[1];
    cl.vector(cs, cl.find("x", "out")) = g.x[2];
    cl.vector(cs, cl.find("lambda", "hidden")) = g.lambda[1];
    cl.vector(cs, cl.find("lambda", "out")) = g.lambda[2];
    const auto flows = cm.weight_flow(cs, 3.0);
    double gap = 0.0, scale = 0.0;
    for (const char* proj : {"in_hidden", "hidden_out"}) {
      const Eigen::VectorXd wdot = hl.vector(s, hl.find("Wdot", proj));
      const Eigen::VectorXd flow = flows[std::string(proj) == "in_hidden" ? 0 : 1];
      gap = std::max(gap, (wdot - flow).cwiseAbs().maxCoeff());
      scale = std::max(scale, flow.cwiseAbs().maxCoeff());
    }
    gaps.push_back(gap / scale);
    MESSAGE(fmt::format("m_W = {:g}: |Ẇ − costate flow| / |flow| = {:.2e}", m_w, gaps.back()));
    CHECK(gaps.back() <= m_w / gamma);
  }
  CHECK(gaps[0] / gaps[1] == doctest::Approx(10.0).epsilon(0.1));  // O(m_W)
}

TEST_CASE("holonomic: input switches are impacts that keep |Ġ| at round-off and 1 and 2 threads agree") {
  Net net;
  net.input = "kind = \"sequence\"\npresent = 1.5\nvalues = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]\n"
              "targets = [[0.0], [1.0], [1.0], [0.0]]";
  net.t_end = 6.0;
  net.sample_dt = 0.75;  // samples at every switch, right after its impact
  std::string toml = fmt::format(fmt::runtime(net_toml), net.m_x, net.m_w, net.theta, "", net.input,
                                 net.rtol, net.atol, net.t_end, net.sample_dt);
  toml.replace(toml.find("target = [0.8]"), 14, "");
  const Experiment ex = experiment_from_toml(toml);
  Simulation sim(ex);
  MetricRecorder rec(*sim.model);
  State final_state;
  REQUIRE(sim.run(sim.experiment.integrator, Simulation::sample_times_of(ex), rec, final_state).outcome ==
          Outcome::success);
  const double gdot = max_metric(rec, "residual/constraint_rate"), g = max_metric(rec, "residual/constraint");
  MESSAGE(fmt::format("across 3 switches: max|G| = {:.2e}, max|Ġ| = {:.2e}", g, gdot));
  CHECK(gdot <= 1e-12);
  CHECK(g <= 1e-12);
  const auto one = sample_states_with_threads(ex, 1);
  const auto two = sample_states_with_threads(ex, 2);
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
  CHECK(one.back() != one.front());
}

TEST_CASE("holonomic: the talk's chain (examples/holonomic_chain.toml): T λ = −V_x at every sample") {
  // T = G_xᵀ = I − W̃ᵀD over the chain's neurons 2, 3: λ_3 = −V_x3 = y − x_3 and
  // λ_2 − w_32 σ'(a_3) λ_3 = 0, the slide's T δ = −V_x with δ = λ (the mechanical sign).
  const Experiment ex = load_experiment(std::string(LEARNFLOW_SOURCE_DIR) + "/examples/holonomic_chain.toml",
                                        {"integrator.t_end=40.0"});
  Simulation sim(ex);
  const auto& m = holonomic(sim);
  struct Check final : IntegrationObserver {
    const Simulation* sim;
    const HolonomicModel* m;
    double worst = 0.0, loss_first = 0.0, loss_last = 0.0;
    std::size_t samples = 0;
    void sample(const State& s, double t) override {
      const StateLayout& l = m->layout();
      const double x2 = l.vector(s, l.find("x", "x2"))[0], x3 = l.vector(s, l.find("x", "x3"))[0];
      const double l2 = l.vector(s, l.find("lambda", "x2"))[0], l3 = l.vector(s, l.find("lambda", "x3"))[0];
      const double w32 = l.vector(s, l.find("W", "x2_x3"))[0], b3 = l.vector(s, l.find("b", "x3"))[0];
      const double s3 = 1.0 / (1.0 + std::exp(-(w32 * x2 + b3)));
      const double y = sim->drive.target()(0, 0);
      const Eigen::Vector2d residual(l2 - w32 * s3 * (1.0 - s3) * l3, l3 - (y - x3));
      worst = std::max(worst, residual.cwiseAbs().maxCoeff());
      const double loss = 0.5 * (y - x3) * (y - x3);
      if (samples++ == 0) loss_first = loss;
      loss_last = loss;
      static_cast<void>(t);
    }
  } check;
  check.sim = &sim;
  check.m = &m;
  State final_state;
  REQUIRE(sim.run(ex.integrator, Simulation::sample_times_of(ex), check, final_state).outcome == Outcome::success);
  MESSAGE(fmt::format("{} samples: max |T λ + V_x| = {:.2e}", check.samples, check.worst));
  CHECK(check.samples == 81);
  CHECK(check.worst <= 1e-15);
}

TEST_CASE("holonomic, patterns = \"batch\": the talk's XOR with 4 patterns at once") {
  // examples/holonomic_xor.toml: 4 columns x_κ sharing W; M_λ (12×12) has a 4×4 Gram block per
  // neuron, G̈ = 0 still holds (H1 with 4 patterns), and seed 1 learns XOR.
  const Experiment ex = load_experiment(std::string(LEARNFLOW_SOURCE_DIR) + "/examples/holonomic_xor.toml",
                                        {"integrator.t_end=400.0", "output.sample_dt=50.0"});
  Simulation sim(ex);
  const auto& m = holonomic(sim);
  REQUIRE(m.patterns() == 4);
  State s = start(sim, true, 11);
  State ds(s.size()), plus(s.size()), minus(s.size());
  const double h = 1e-5;
  sim.model->rhs(s, ds, 0.0);
  for (std::size_t i = 0; i < s.size(); ++i) {
    plus[i] = s[i] + h * ds[i];
    minus[i] = s[i] - h * ds[i];
  }
  const double gddot =
      ((m.evaluate(plus, h).constraint_rate - m.evaluate(minus, -h).constraint_rate) / (2 * h)).cwiseAbs().maxCoeff();
  const auto e = m.evaluate(s, 0.0);
  // Neuron 0 (hidden) of patterns 1 and 3 are coupled through the shared weights (the Gram block),
  // neurons of different populations of different patterns are not.
  const Eigen::Index n = 3;
  MESSAGE(fmt::format("4 patterns: max |G̈| = {:.2e}; coupling of hidden 0 in patterns 1, 3: {:.3f}", gddot,
                      e.lambda_matrix(0 + n * 1, 0 + n * 3)));
  CHECK(gddot <= 1e-8);
  CHECK(e.lambda_matrix(0 + n * 1, 0 + n * 3) != 0.0);
  CHECK(e.lambda_matrix(0 + n * 1, 2 + n * 3) == 0.0);
  CHECK((e.lambda_matrix - e.lambda_matrix.transpose()).cwiseAbs().maxCoeff() == 0.0);

  Simulation run(ex);
  MetricRecorder rec(*run.model);
  State final_state;
  REQUIRE(run.run(ex.integrator, Simulation::sample_times_of(ex), rec, final_state).outcome == Outcome::success);
  const std::size_t acc = rec.index("accuracy"), loss = rec.index("loss");
  MESSAGE(fmt::format("XOR, seed 1: loss {:.4f} → {:.2e}, accuracy {} at t = 400", rec.values.front()[loss],
                      rec.values.back()[loss], rec.values.back()[acc]));
  CHECK(rec.values.back()[acc] == 1.0);
  CHECK(rec.values.back()[loss] < 0.01);
  CHECK(max_metric(rec, "residual/constraint") <= 1e-12);
}

TEST_CASE("holonomic, input_switch = \"ramp\": a C² input ramp leaves nothing to the impact") {
  // Two patterns in turn (present 2, ramps of 0.5). At the switch t = 2 the state is continuous:
  // the impact projection of enter_segment changes x, ẋ, W, Ẇ only by the constraint drift the
  // integration left (stabilize = "none": O(rtol); with "impact": by O(1)), and the energy
  // balance holds across the ramps.
  const std::string input = "kind = \"sequence\"\npresent = 2.0\nvalues = [[0.0, 1.0], [1.0, 0.0]]\n"
                            "targets = [[0.2], [0.9]]";
  for (const char* mode : {"ramp", "impact"}) {
    CAPTURE(mode);
    Net net;
    net.input = input;
    net.rtol = 1e-10;
    net.atol = 1e-12;
    net.t_end = 6.0;
    net.model_extra = fmt::format("input_switch = \"{}\"\nramp_width = 0.5\nstabilize = \"none\"", mode);
    std::string toml = fmt::format(fmt::runtime(net_toml), net.m_x, net.m_w, net.theta, net.model_extra,
                                   net.input, net.rtol, net.atol, net.t_end, net.sample_dt);
    toml.replace(toml.find("target = [0.8]"), 14, "");
    const Experiment ex = experiment_from_toml(toml);
    Simulation sim(ex);
    MetricRecorder rec(*sim.model);
    State final_state;
    IntegratorSpec first = sim.experiment.integrator;
    first.t_end = 2.0;
    // Up to the switch (the first segment only), then the switch's events by hand.
    Simulation part(ex);
    State s;
    Recorder r;
    std::vector<double> times{0.0, 2.0};
    REQUIRE(part.run(first, times, r, s).outcome == Outcome::success);
    State after = s;
    part.drive.enter_segment(1, 2.0);
    part.model->leave_segment(after, 2.0);
    part.model->enter_segment(after, 2.0);
    double jump = 0.0;
    for (const Block& b : part.model->layout().blocks()) {
      if (b.kind == "lambda" || b.kind == "energy") continue;
      for (Eigen::Index i = b.offset; i < b.offset + b.size; ++i) {
        jump = std::max(jump, std::abs(after[static_cast<std::size_t>(i)] - s[static_cast<std::size_t>(i)]));
      }
    }
    REQUIRE(sim.run(sim.experiment.integrator, Simulation::sample_times_of(sim.experiment), rec,
                    final_state).outcome == Outcome::success);
    const std::size_t ie = rec.index("energy");
    double scale = 0.0;
    for (const auto& v : rec.values) scale = std::max(scale, std::abs(v[ie] - rec.values.front()[ie]));
    const double balance = max_metric(rec, "power_balance");
    MESSAGE(fmt::format("{}: largest change at the switch {:.2e}; energy balance {:.2e} (relative {:.2e})",
                        mode, jump, balance, balance / scale));
    if (std::string(mode) == "ramp") {
      CHECK(jump <= 10 * net.rtol);  // the drift of G, Ġ the integration left (no stabilisation)
    } else {
      CHECK(jump > 1e-2);
    }
    CHECK(balance <= 10 * net.rtol * scale);
  }
}
