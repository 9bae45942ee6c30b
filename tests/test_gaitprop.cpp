// Model "gaitprop": the discrete update against −η ∂L/∂W from central finite differences of a
// loss computed here (own forward pass, own activations), for orthogonal weights (equal as γ → 0)
// and Gaussian ones (a negative control with a derived lower bound); the continuous target
// relaxation against the algebraic targets; the exact inverse; the orthogonality regulariser
// against finite differences and as a decreasing quantity; the end-of-phase event wiring; thread
// independence; config errors; and the example.
#include <fmt/format.h>
#include <Eigen/Dense>
#include <cmath>
#include <functional>
#include <utility>

#include "models/gaitprop.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/random.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// Activations of the oracle, written here independently of sim/activation.
struct OwnActivation {
  std::function<double(double)> f, df, inverse;
};

OwnActivation own_activation(Activation a) {
  const double k = 0.01;  // leaky_relu's slope for negative arguments (DESIGN §2)
  REQUIRE(leaky_relu_slope == k);
  if (a == Activation::asinh) {
    return {[](double v) { return std::asinh(v); },
            [](double v) { return 1.0 / std::sqrt(1.0 + v * v); },
            [](double v) { return std::sinh(v); }};
  }
  REQUIRE(a == Activation::leaky_relu);
  return {[k](double v) { return v > 0.0 ? v : k * v; },
          [k](double v) { return v > 0.0 ? 1.0 : k; },
          [k](double v) { return v > 0.0 ? v : v / k; }};
}

Eigen::VectorXd elementwise(const std::function<double(double)>& f, const Eigen::VectorXd& v) {
  return v.unaryExpr([&](double x) { return f(x); });
}

// A layered network's parameters, copied out of a model state: w[l], b[l] for l = 1 … L.
struct Layers {
  std::vector<RowMatrix> w;
  std::vector<Eigen::VectorXd> b;
  OwnActivation act;
  std::size_t depth() const { return w.size() - 1; }
};

Layers layers_of(const GaitpropModel& model, const Network& net, const State& s) {
  Layers p;
  p.w.emplace_back();
  p.b.emplace_back();
  p.act = own_activation(net.populations[1].activation);
  for (std::size_t l = 1; l <= model.depth(); ++l) {
    p.w.emplace_back(model.weights(s, l));
    p.b.emplace_back(model.bias(s, l));
  }
  return p;
}

struct Pass {
  std::vector<Eigen::VectorXd> h, a;  // h[0] = u; a[0] unused
};

Pass forward_pass(const Layers& p, const Eigen::VectorXd& u) {
  Pass x;
  x.h.push_back(u);
  x.a.emplace_back();
  for (std::size_t l = 1; l <= p.depth(); ++l) {
    x.a.push_back(p.w[l] * x.h.back() + p.b[l]);
    x.h.push_back(elementwise(p.act.f, x.a.back()));
  }
  return x;
}

double squared_loss(const Layers& p, const Eigen::VectorXd& u, const Eigen::VectorXd& y) {
  return 0.5 * (y - forward_pass(p, u).h.back()).squaredNorm();
}

// ∂L/∂W_l and ∂L/∂b_l by central differences. Step 1e-5: truncation h²|L'''|/6 and rounding
// ε L/h are both ~1e-11, relative to gradients ≳ 1e-3: ≲ 1e-8, far below every check here.
struct Gradient {
  std::vector<RowMatrix> w;
  std::vector<Eigen::VectorXd> b;
};

Gradient fd_gradient(const Layers& p, const Eigen::VectorXd& u, const Eigen::VectorXd& y) {
  const double step = 1e-5;
  Gradient g;
  g.w.emplace_back();
  g.b.emplace_back();
  for (std::size_t l = 1; l <= p.depth(); ++l) {
    RowMatrix gw(p.w[l].rows(), p.w[l].cols());
    for (Eigen::Index i = 0; i < gw.rows(); ++i) {
      for (Eigen::Index j = 0; j < gw.cols(); ++j) {
        Layers plus = p, minus = p;
        plus.w[l](i, j) += step;
        minus.w[l](i, j) -= step;
        gw(i, j) = (squared_loss(plus, u, y) - squared_loss(minus, u, y)) / (2 * step);
      }
    }
    Eigen::VectorXd gb(p.b[l].size());
    for (Eigen::Index i = 0; i < gb.size(); ++i) {
      Layers plus = p, minus = p;
      plus.b[l][i] += step;
      minus.b[l][i] -= step;
      gb[i] = (squared_loss(plus, u, y) - squared_loss(minus, u, y)) / (2 * step);
    }
    g.w.push_back(gw);
    g.b.push_back(gb);
  }
  return g;
}

// One discrete GAIT-prop step, taken by hand: the state holds the exact forward pass (computed
// here), the drive enters the first target segment (the model freezes the pass and computes the
// targets), then apply_update. Returns ΔW_l, Δb_l and the state with the targets.
struct DiscreteStep {
  std::vector<RowMatrix> dw;
  std::vector<Eigen::VectorXd> db;
  State targets;  // the state before the update
  Layers before;
  Pass pass;
};

// Block "kind/layer<l>" of the model's layout.
BlockId block_of(const GaitpropModel& model, const char* kind, std::size_t l) {
  return model.layout().find(kind, fmt::format("layer{}", l));
}

void write_pass(const GaitpropModel& model, const Pass& x, State& s) {
  for (std::size_t l = 1; l <= model.depth(); ++l) {
    model.layout().vector(s, block_of(model, "h", l)) = x.h[l];
  }
}

DiscreteStep discrete_step(Simulation& sim) {
  const auto& model = dynamic_cast<const GaitpropModel&>(*sim.model);
  const std::vector<double>& bounds = sim.signal.boundaries();
  State s(static_cast<std::size_t>(model.layout().size()));
  model.initial_state(s);
  DiscreteStep step;
  step.before = layers_of(model, sim.network, s);
  step.pass = forward_pass(step.before, sim.drive.at(0.0));
  write_pass(model, step.pass, s);
  sim.drive.enter_segment(1, bounds[1]);  // phases: forward, then target
  REQUIRE(sim.drive.signal().spec().phase_names[sim.drive.phase()] == "target");
  model.enter_segment(s, bounds[1]);
  step.targets = s;
  model.apply_update(s);
  const Layers after = layers_of(model, sim.network, s);
  step.dw.emplace_back();
  step.db.emplace_back();
  for (std::size_t l = 1; l <= model.depth(); ++l) {
    step.dw.push_back(after.w[l] - step.before.w[l]);
    step.db.push_back(after.b[l] - step.before.b[l]);
  }
  return step;
}

double relative_error(const Eigen::Ref<const Eigen::MatrixXd>& estimate,
                      const Eigen::Ref<const Eigen::MatrixXd>& exact) {
  return (estimate - exact).norm() / exact.norm();
}

// A 4-4-4-4 network (L = 3), one input with a target, phases forward then target.
std::string layered_toml(const std::string& activation, const std::string& init, double gamma) {
  return fmt::format(R"(
[network]
layers = [4, 4, 4, 4]
activation = "{}"
seed = 5
init = {}
[model]
type = "gaitprop"
mode = "discrete"
gamma = {}
eta = 0.5
[input]
value = [0.8, -0.6, 0.35, 0.5]
target = [0.2, -0.4, 0.6, -0.1]
phases = [{{ name = "forward", duration = 10.0 }}, {{ name = "target", duration = 1.0 }}]
[integrator]
t_end = 11.0
)", activation, init, gamma);
}

const char* orthogonal_init = R"({ weights = "orthogonal", bias = "normal", bias_scale = 0.3 })";

}  // namespace

TEST_CASE("gaitprop equals backprop for orthogonal weights as γ → 0 (asinh, leaky_relu)") {
  for (const std::string activation : {"asinh", "leaky_relu"}) {
    CAPTURE(activation);
    std::vector<double> worst_by_gamma;
    for (const double gamma : {1e-1, 1e-2, 1e-3}) {
      CAPTURE(gamma);
      const Experiment ex = experiment_from_toml(layered_toml(activation, orthogonal_init, gamma));
      Simulation sim(ex);
      const double eta = std::get<GaitpropParams>(ex.model).eta;
      const DiscreteStep step = discrete_step(sim);
      for (std::size_t l = 1; l <= 3; ++l) {
        const RowMatrix wwt = step.before.w[l] * step.before.w[l].transpose();
        REQUIRE(wwt.isIdentity(1e-14));
      }
      const Eigen::Map<const Eigen::VectorXd> u(ex.input.value.data(), 4);
      const Eigen::Map<const Eigen::VectorXd> y(ex.input.target.data(), 4);
      if (activation == "leaky_relu") {
        // Away from the kink: no argument v_l = h_l + γ σ'(a_l)² (τ_l − h_l) of σ⁻¹ changes sign,
        // so every inverse stays on the branch of the forward pass (and is exactly linear there).
        const auto& model = dynamic_cast<const GaitpropModel&>(*sim.model);
        for (std::size_t l = 1; l <= 3; ++l) {
          const Eigen::VectorXd d = elementwise(step.before.act.df, step.pass.a[l]);
          const Eigen::VectorXd e = model.target(step.targets, l) - step.pass.h[l];
          const Eigen::VectorXd v = step.pass.h[l] + gamma * d.cwiseProduct(d).cwiseProduct(e);
          REQUIRE(v.cwiseProduct(step.pass.h[l]).minCoeff() > 0.0);
        }
      }
      const Gradient g = fd_gradient(step.before, u, y);
      double worst = 0.0;
      for (std::size_t l = 1; l <= 3; ++l) {
        CAPTURE(l);
        const double err_w = relative_error(step.dw[l] / eta, -g.w[l]);
        const double err_b = relative_error(step.db[l] / eta, -g.b[l]);
        CHECK(err_w <= gamma);
        CHECK(err_b <= gamma);
        worst = std::max({worst, err_w, err_b});
      }
      worst_by_gamma.push_back(worst);
      MESSAGE(fmt::format("{} γ = {}: worst relative error {:.3g}", activation, gamma, worst));

      // The model's own alignment metrics (its reference is ExactBackprop) agree.
      MetricRecorder metrics(*sim.model);
      metrics.sample(step.targets, sim.signal.boundaries()[1]);
      auto metric = [&](const std::string& name) { return metrics.values[0][metrics.index(name)]; };
      for (std::size_t l = 1; l <= 3; ++l) {
        CHECK(metric(fmt::format("alignment/cosine/layer{}", l)) >= 1.0 - gamma);
        CHECK(std::abs(metric(fmt::format("alignment/norm_ratio/layer{}", l)) - 1.0) <= gamma);
        CHECK(metric(fmt::format("orthogonality/layer{}", l)) < 1e-14);
      }
      CHECK(metric("forward_residual") < 1e-15);  // the pass written above is exact
    }
    if (activation == "asinh") {
      // The neglected term is O(γ²) relative (header): a tenfold smaller γ gains ~100 (the
      // γ = 1e-3 error sits at the rounding floor ε/γ³·… and is not used).
      CHECK(worst_by_gamma[0] / worst_by_gamma[1] > 50.0);
      CHECK(worst_by_gamma[0] / worst_by_gamma[1] < 200.0);
    } else {
      // Piecewise linear: exact up to rounding, amplified by γ^{−(L−l+1)} in layer l (measured
      // 5e-11 at γ = 0.1, 5e-8 at γ = 1e-3).
      CHECK(worst_by_gamma[0] < 1e-9);
    }
  }
}

TEST_CASE("gaitprop with Gaussian weights is not backprop below the output layer") {
  // Small weights (scale 0.3): every singular value of W is below ~2·0.3, and σ' ≈ 1 near 0.
  // At first order in γ the layer-l target error follows W⁻¹ where backprop has Wᵀ; with
  // s_m = ‖W_m‖₂ and κ_m = max σ'(a_m)/min σ'(a_m),
  //   ‖ΔW_l/η − (−∂L/∂W_l)‖ / ‖∂L/∂W_l‖ ≥ ρ_l − 1,   ρ_l = Π_{m>l} s_m⁻² · Π_{l≤m<L} κ_m⁻¹,
  // since ‖W⁻¹z‖ ≥ ‖z‖/s and ‖Wᵀz‖ ≤ s‖z‖ layer by layer. ρ_l − 1 > 0.1 is checked from the
  // actual weights, then the measured error. The output layer needs no inverse: exact for any W.
  const double gamma = 1e-3;
  const Experiment ex = experiment_from_toml(layered_toml(
      "asinh", R"({ weights = "normal", scale = 0.3, bias = "normal", bias_scale = 0.1 })", gamma));
  Simulation sim(ex);
  const double eta = std::get<GaitpropParams>(ex.model).eta;
  const DiscreteStep step = discrete_step(sim);
  const Eigen::Map<const Eigen::VectorXd> u(ex.input.value.data(), 4);
  const Eigen::Map<const Eigen::VectorXd> y(ex.input.target.data(), 4);
  const Gradient g = fd_gradient(step.before, u, y);
  const auto& act = step.before.act;
  std::vector<double> s_norm(4), kappa(4);
  for (std::size_t m = 1; m <= 3; ++m) {
    s_norm[m] = Eigen::JacobiSVD<Eigen::MatrixXd>(step.before.w[m]).singularValues()[0];
    const Eigen::VectorXd d = elementwise(act.df, step.pass.a[m]);
    kappa[m] = d.maxCoeff() / d.minCoeff();
  }
  for (std::size_t l = 1; l <= 2; ++l) {
    CAPTURE(l);
    double rho = 1.0;
    for (std::size_t m = l + 1; m <= 3; ++m) rho /= s_norm[m] * s_norm[m];
    for (std::size_t m = l; m < 3; ++m) rho /= kappa[m];
    CAPTURE(rho);
    REQUIRE(rho - 1.0 > 0.1);
    const double err = relative_error(step.dw[l] / eta, -g.w[l]);
    CAPTURE(err);
    CHECK(err > 0.1);
    CHECK(err >= rho - 1.0 - 10 * gamma);  // the bound, up to the O(γ) terms it neglects
  }
  CHECK(relative_error(step.dw[3] / eta, -g.w[3]) <= gamma);
}

TEST_CASE("gaitprop exact inverse: γ = 1 and τ_l = h_l reproduce the layer below") {
  // T_l(h_l) = W⁻¹(σ⁻¹(σ(a_l)) − b_l) = h_{l−1}. Rounding: σ⁻¹(σ(a)) = a(1 + O(ε)), and the LU
  // solve adds ~cond(W)·ε·‖a‖ per layer: with cond(W) < 20 and |a| < 10, ~4e-14 per layer, carried
  // down three layers with gain ≤ cond(W)·max σ'/min σ'(asinh) < 1e-12. Seed 10: a Gaussian draw
  // whose three 4×4 matrices all have cond < 15 (the condition number of a Gaussian matrix is
  // heavy-tailed; the default seed draws cond 2769).
  for (const std::string activation : {"asinh", "leaky_relu"}) {
    CAPTURE(activation);
    std::string toml = layered_toml(
        activation, R"({ weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 })", 1.0);
    toml.replace(toml.find("target = ["), std::string("target = [0.2, -0.4, 0.6, -0.1]").size(), "");
    const Experiment ex = experiment_from_toml(toml, {"network.seed=10"});
    Simulation sim(ex);
    const auto& model = dynamic_cast<const GaitpropModel&>(*sim.model);
    const DiscreteStep step = discrete_step(sim);
    bool negative = false;
    for (std::size_t l = 1; l <= 3; ++l) {
      const Eigen::JacobiSVD<Eigen::MatrixXd> svd(step.before.w[l]);
      REQUIRE(svd.singularValues()[0] / svd.singularValues()[3] < 20.0);
      REQUIRE(step.pass.a[l].cwiseAbs().maxCoeff() < 10.0);
      negative = negative || step.pass.a[l].minCoeff() < 0.0;
    }
    REQUIRE(negative);  // leaky_relu: both branches of the inverse are exercised
    for (std::size_t l = 0; l <= 3; ++l) {
      CAPTURE(l);
      CHECK(max_abs_diff(model.target(step.targets, l), step.pass.h[l]) <= 1e-12);
    }
    // No target error, no update.
    for (std::size_t l = 1; l <= 3; ++l) CHECK(step.dw[l].cwiseAbs().maxCoeff() <= 1e-12 / 1.0);
  }
}

TEST_CASE("gaitprop discrete mode in a run: targets at the target phase start, ΔW when it ends") {
  // Forward phase [0, 40): h settles (transient e^{−40}·poly, solver error ~1e-12), target phase
  // [40, 42): W held, update applied at t = 42. The forward residual enters ΔW amplified by
  // γ^{−2} = 100 in layer 1: ~1e-10, far below the O(γ²) = 1e-2 relative error allowed.
  const double gamma = 0.1;
  const Experiment ex = experiment_from_toml(fmt::format(R"(
[network]
layers = [3, 3, 3]
activation = "asinh"
seed = 3
init = {{ weights = "orthogonal", bias = "normal", bias_scale = 0.3 }}
[model]
type = "gaitprop"
mode = "discrete"
gamma = {}
eta = 0.2
[input]
value = [0.9, -0.3, 0.4]
target = [0.5, 0.1, -0.7]
phases = [{{ name = "forward", duration = 40.0 }}, {{ name = "target", duration = 2.0 }}]
[integrator]
rtol = 1e-12
atol = 1e-14
t_end = 43.0
[output]
sample_dt = 1.0
)", gamma));
  Simulation sim(ex);
  const auto& model = dynamic_cast<const GaitpropModel&>(*sim.model);
  MetricRecorder rec(*sim.model);
  State s;
  REQUIRE(sim.run(ex.integrator, Simulation::sample_times_of(ex), rec, s).outcome == Outcome::success);
  const Layers initial = layers_of(model, sim.network, rec.states.front());
  const Eigen::Map<const Eigen::VectorXd> u(ex.input.value.data(), 3);
  const Eigen::Map<const Eigen::VectorXd> y(ex.input.target.data(), 3);
  const Gradient g = fd_gradient(initial, u, y);
  const double eta = 0.2;
  for (std::size_t i = 0; i < rec.times.size(); ++i) {
    const double t = rec.times[i];
    CAPTURE(t);
    const Layers now = layers_of(model, sim.network, rec.states[i]);
    for (std::size_t l = 1; l <= 2; ++l) {
      if (t <= 42.0) {
        CHECK(now.w[l] == initial.w[l]);  // exactly: no flow in discrete mode
      } else {
        CHECK(relative_error((now.w[l] - initial.w[l]) / eta, -g.w[l]) <= gamma * gamma);
        CHECK(relative_error((now.b[l] - initial.b[l]) / eta, -g.b[l]) <= gamma * gamma);
      }
    }
    if (t > 40.0 && t <= 42.0) {
      // The held forward pass and its targets: τ_2 = h_2 + γ(y − h_2).
      const auto h2 = model.h(rec.states[i], 2);
      CHECK(max_abs_diff(model.target(rec.states[i], 2), h2 + gamma * (y - h2)) <= 1e-15);
      CHECK(rec.values[i][rec.index("forward_residual")] < 1e-10);
      CHECK(rec.values[i][rec.index("alignment/cosine/layer1")] > 1.0 - gamma * gamma);
    }
    if (t < 40.0 || t > 42.0) {
      CHECK(std::isnan(rec.values[i][rec.index("alignment/cosine/layer1")]));  // no update here
    }
  }
}

TEST_CASE("gaitprop continuous mode: relaxed targets are the algebraic ones, the flow the update") {
  // Target phase [40, 100): τ_r τ̇_{l−1} = T_l(τ_l) − τ_{l−1} is a cascade of unit-rate
  // relaxations; after 60 τ_r the transient is below 60³e^{−60}/6 ≈ 1e-21. What is left is the
  // solver's error: local tolerance 1e-12·|τ|, carried down the cascade by ‖∂T_l/∂τ_l‖ =
  // ‖γ W⁻¹ diag(σ'(ā)²/σ'(σ⁻¹(v)))‖ ≤ G: bound 100·rtol·(1 + G + G² + G³)·max|τ|.
  // The weights flow meanwhile (η > 0): the targets use the pass frozen at t = 40.
  const double gamma = 0.5, eta = 0.05, rtol = 1e-12;
  const std::string toml = fmt::format(R"(
[network]
layers = [3, 3, 3, 3]
activation = "asinh"
seed = 11
init = {{ weights = "normal", scale = 1.0, bias = "normal", bias_scale = 0.3 }}
[model]
type = "gaitprop"
gamma = {}
eta = {}
[input]
value = [0.7, -1.1, 0.4]
target = [1.0, -0.5, 0.3]
phases = [{{ name = "forward", duration = 40.0 }}, {{ name = "target", duration = 60.0 }}]
[integrator]
rtol = {}
atol = 1e-14
t_end = 100.0
[output]
sample_dt = 100.0
)", gamma, eta, rtol);
  const Experiment ex = experiment_from_toml(toml);
  Simulation sim(ex);
  const auto& model = dynamic_cast<const GaitpropModel&>(*sim.model);
  Recorder rec;
  State s;
  REQUIRE(sim.run(rec, s).outcome == Outcome::success);
  State start(s.size());
  model.initial_state(start);
  const Layers frozen = layers_of(model, sim.network, start);  // W, b constant before t = 40
  const Eigen::Map<const Eigen::VectorXd> u(ex.input.value.data(), 3);
  const Eigen::Map<const Eigen::VectorXd> y(ex.input.target.data(), 3);

  // The algebraic targets from the held h, with an inverse of our own (full-pivot LU).
  const auto& act = frozen.act;
  std::vector<Eigen::VectorXd> h(1, u), a(1), tau(4);
  for (std::size_t l = 1; l <= 3; ++l) {
    h.emplace_back(model.h(s, l));
    a.push_back(frozen.w[l] * h[l - 1] + frozen.b[l]);
  }
  tau[3] = h[3] + gamma * (y - h[3]);
  double gain = 0.0, scale = 0.0;
  for (std::size_t l = 3; l >= 1; --l) {
    const Eigen::VectorXd d = elementwise(act.df, a[l]);
    const Eigen::VectorXd v = h[l] + gamma * d.cwiseProduct(d).cwiseProduct(tau[l] - h[l]);
    const Eigen::FullPivLU<Eigen::MatrixXd> lu(Eigen::MatrixXd(frozen.w[l]));
    tau[l - 1] = lu.solve(elementwise(act.inverse, v) - frozen.b[l]);
    const Eigen::VectorXd dinv = elementwise([&](double x) { return 1.0 / act.df(act.inverse(x)); }, v);
    const Eigen::VectorXd slope = d.cwiseProduct(d).cwiseProduct(dinv);
    const Eigen::MatrixXd jac = gamma * lu.inverse() * slope.asDiagonal();
    gain = std::max(gain, Eigen::JacobiSVD<Eigen::MatrixXd>(jac).singularValues()[0]);
    scale = std::max(scale, tau[l - 1].cwiseAbs().maxCoeff());
  }
  const double bound = 100 * rtol * (1 + gain + gain * gain + gain * gain * gain) * scale;
  CAPTURE(gain);
  CAPTURE(bound);
  for (std::size_t l = 0; l <= 3; ++l) {
    CAPTURE(l);
    CHECK(max_abs_diff(model.target(s, l), tau[l]) <= bound);
  }
  for (std::size_t l = 1; l <= 3; ++l) CHECK(max_abs_diff(tau[l], h[l]) > 0.01);  // not trivial

  // The discrete mode's targets on the same held pass (weights reset to the frozen ones).
  {
    const Experiment dx = experiment_from_toml(toml, {"model.mode=\"discrete\""});
    Simulation dsim(dx);
    const auto& discrete = dynamic_cast<const GaitpropModel&>(*dsim.model);
    State d = s;
    State reset(s.size());
    discrete.initial_state(reset);
    const StateLayout& layout = discrete.layout();
    for (std::size_t l = 1; l <= 3; ++l) {
      layout.vector(d, block_of(discrete, "W", l)) = layout.vector(reset, block_of(discrete, "W", l));
      layout.vector(d, block_of(discrete, "b", l)) = layout.vector(reset, block_of(discrete, "b", l));
    }
    dsim.drive.enter_segment(1, dsim.signal.boundaries()[1]);
    discrete.enter_segment(d, dsim.signal.boundaries()[1]);
    for (std::size_t l = 0; l <= 3; ++l) {
      CHECK(max_abs_diff(discrete.target(d, l), model.target(s, l)) <= bound);
    }
  }

  // Ẇ_l = η γ^{−(L−l+1)} (σ'(ā_l) ⊙ (τ_l − h_l)) h_{l−1}ᵀ at the relaxed targets (λ = 0).
  State ds(s.size());
  sim.model->rhs(s, ds, ex.integrator.t_end);
  for (std::size_t l = 1; l <= 3; ++l) {
    CAPTURE(l);
    const Eigen::VectorXd delta = eta * std::pow(gamma, -static_cast<double>(4 - l)) *
                                  elementwise(act.df, a[l]).cwiseProduct(tau[l] - h[l]);
    const RowMatrix expected = delta * h[l - 1].transpose();
    const RowMatrix flow = model.layout().matrix(std::as_const(ds), block_of(model, "W", l));
    // The target error τ_l − h_l (≳ γ^{L−l+1}·0.1) carries the bound's absolute error.
    CHECK(relative_error(flow, expected) <= 1e-6);
  }
}

TEST_CASE("gaitprop orthogonality regulariser: gradient against finite differences") {
  // R(W) = Σ_{i≠j} (W Wᵀ)_ij², written here as a plain double sum.
  auto penalty = [](const RowMatrix& w) {
    double r = 0.0;
    for (Eigen::Index i = 0; i < w.rows(); ++i) {
      for (Eigen::Index j = 0; j < w.rows(); ++j) {
        if (i != j) r += std::pow(w.row(i).dot(w.row(j)), 2);
      }
    }
    return r;
  };
  Random rng(42);
  RowMatrix w(5, 5);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = rng.normal() / std::sqrt(5.0);
  CHECK(std::abs(GaitpropModel::orthogonality_penalty(w) - penalty(w)) <= 1e-14 * penalty(w));
  // R is quartic: central differences with step 1e-6 err by h²|R'''|/6 + ε R/h ≲ 1e-9.
  const double step = 1e-6;
  RowMatrix fd(5, 5);
  for (Eigen::Index i = 0; i < 5; ++i) {
    for (Eigen::Index j = 0; j < 5; ++j) {
      RowMatrix plus = w, minus = w;
      plus(i, j) += step;
      minus(i, j) -= step;
      fd(i, j) = (penalty(plus) - penalty(minus)) / (2 * step);
    }
  }
  const RowMatrix grad = GaitpropModel::orthogonality_gradient(w);
  CHECK(relative_error(grad, fd) <= 1e-8);

  // In the RHS: with no target error (τ = h at the phase start, no target) the weight flow is
  // exactly −η λ ∇R.
  const Experiment ex = experiment_from_toml(R"(
[network]
layers = [5, 5, 5]
activation = "asinh"
seed = 4
init = { weights = "normal", scale = 1.0 }
[model]
type = "gaitprop"
gamma = 0.5
eta = 0.3
lambda_orth = 0.7
[input]
value = [0.1, 0.2, -0.3, 0.4, -0.5]
phases = [{ name = "forward", duration = 1.0 }, { name = "target", duration = 1.0 }]
[integrator]
t_end = 2.0
)");
  Simulation sim(ex);
  const auto& model = dynamic_cast<const GaitpropModel&>(*sim.model);
  State s(static_cast<std::size_t>(model.layout().size()));
  model.initial_state(s);
  const Layers p = layers_of(model, sim.network, s);
  write_pass(model, forward_pass(p, sim.drive.at(0.0)), s);
  sim.drive.enter_segment(1, 1.0);
  model.enter_segment(s, 1.0);
  State ds(s.size());
  model.rhs(s, ds, 1.0);
  for (std::size_t l = 1; l <= 2; ++l) {
    const RowMatrix flow = model.layout().matrix(std::as_const(ds), block_of(model, "W", l));
    RowMatrix fd_l(5, 5);
    for (Eigen::Index i = 0; i < 5; ++i) {
      for (Eigen::Index j = 0; j < 5; ++j) {
        RowMatrix plus = p.w[l], minus = p.w[l];
        plus(i, j) += step;
        minus(i, j) -= step;
        fd_l(i, j) = (penalty(plus) - penalty(minus)) / (2 * step);
      }
    }
    CHECK(relative_error(flow, -0.3 * 0.7 * fd_l) <= 1e-8);
  }
}

TEST_CASE("gaitprop orthogonality regulariser alone decreases ‖W Wᵀ − I‖") {
  // No target: τ = h exactly at the output and (up to the settled forward pass) below, so in the
  // target phases the weights follow the gradient flow Ẇ = −η∇R of R = λΣ_{i≠j}M_ij², M = W Wᵀ:
  // R never increases (dR/dt = −η‖∇R‖²). With O = offdiag M and r_i = Σ_{j≠i} M_ij²,
  //   d‖M − I‖²_F/dt = −16ηλ [Σ_i r_i (2M_ii − 1) + tr(O³)]
  // (Ṁ = −4ηλ(OM + MO)): the defect falls while the bracket is positive and rises while it is
  // negative (rows shorter than 1/√2: the off-diagonal penalty also shrinks the rows). Both signs
  // are checked between samples where the bracket keeps its sign; long rows (scale 1.5) make the
  // defect fall overall.
  const Experiment ex = experiment_from_toml(R"(
[network]
layers = [4, 4, 4]
activation = "asinh"
seed = 8
init = { weights = "normal", scale = 1.5 }
[model]
type = "gaitprop"
gamma = 0.5
eta = 0.02
lambda_orth = 0.5
[input]
value = [0.5, -0.2, 0.3, 0.1]
phases = [{ name = "forward", duration = 30.0 }, { name = "target", duration = 20.0 }]
[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 100.0
[output]
sample_dt = 1.0
)");
  Simulation sim(ex);
  const auto& model = dynamic_cast<const GaitpropModel&>(*sim.model);
  MetricRecorder rec(*sim.model);
  State s;
  REQUIRE(sim.run(ex.integrator, Simulation::sample_times_of(ex), rec, s).outcome == Outcome::success);
  for (std::size_t l = 1; l <= 2; ++l) {
    CAPTURE(l);
    const std::size_t defect = rec.index(fmt::format("orthogonality/layer{}", l));
    std::vector<double> bracket, penalty;
    for (std::size_t i = 0; i < rec.times.size(); ++i) {
      const RowMatrix w = model.weights(rec.states[i], l);
      const RowMatrix m = w * w.transpose();
      RowMatrix o = m;
      o.diagonal().setZero();
      double b = (o * o * o).trace();
      for (Eigen::Index k = 0; k < 4; ++k) b += o.row(k).squaredNorm() * (2 * m(k, k) - 1);
      bracket.push_back(b);
      penalty.push_back(GaitpropModel::orthogonality_penalty(w));
      const double expected = (m - RowMatrix::Identity(4, 4)).norm();
      CHECK(rec.values[i][defect] == doctest::Approx(expected).epsilon(1e-12));
    }
    int falling = 0, rising = 0;
    for (std::size_t i = 1; i < rec.times.size(); ++i) {
      CAPTURE(rec.times[i]);
      CHECK(penalty[i] <= penalty[i - 1] * (1 + 1e-12));
      const double change = rec.values[i][defect] - rec.values[i - 1][defect];
      const double tol = 1e-12 * rec.values[i][defect];
      if (bracket[i - 1] > 0 && bracket[i] > 0) {
        CHECK(change <= tol);
        falling += change < -tol;
      } else if (bracket[i - 1] < 0 && bracket[i] < 0) {
        CHECK(change >= -tol);
        rising += change > tol;
      }
    }
    CAPTURE(falling);
    CAPTURE(rising);
    const double first = rec.values.front()[defect], last = rec.values.back()[defect];
    CAPTURE(first);
    CAPTURE(last);
    CHECK(falling > 0);  // measured 23 and 34 intervals (of 40 in target phases)
    if (l == 1) CHECK(rising > 0);  // measured 16: layer 1's rows become short
    CHECK(last < 0.8 * first);
    CHECK(penalty.back() < 0.1 * penalty.front());
  }
}

TEST_CASE("gaitprop results are bit-identical with 1 and 2 threads") {
  // 2 layers of 128: L·n² = 32768 multiply-adds, the parallel path of the RHS (with the n³
  // regulariser products).
  std::string y;
  for (int i = 0; i < 128; ++i) y += fmt::format("{}{}", i == 0 ? "" : ", ", 0.5 * std::sin(0.7 * i));
  const Experiment ex = experiment_from_toml(fmt::format(R"(
[network]
layers = [128, 128, 128]
activation = "asinh"
seed = 6
init = {{ weights = "orthogonal", bias = "normal", bias_scale = 0.2 }}
[model]
type = "gaitprop"
gamma = 0.5
eta = 0.1
lambda_orth = 0.1
[input]
kind = "sine"
amplitude = 1.0
frequency = 0.3
target = [{}]
phases = [{{ name = "forward", duration = 1.0 }}, {{ name = "target", duration = 1.0 }}]
[integrator]
t_end = 2.0
[output]
sample_dt = 0.5
)", y));
  const auto one = sample_states_with_threads(ex, 1);
  const auto two = sample_states_with_threads(ex, 2);
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);  // exact equality
}

TEST_CASE("gaitprop config errors name the key") {
  auto error_of = [](const std::string& toml) -> std::string {
    try {
      const Experiment ex = experiment_from_toml(toml);
      Simulation sim(ex);
    } catch (const InputError& e) {
      return e.what();
    }
    FAIL("no error thrown");
    return {};
  };
  const std::string base = R"(
[network]
layers = [2, 2, 2]
activation = "asinh"
[model]
type = "gaitprop"
[input]
value = [0.5, -0.5]
phases = [{ name = "forward", duration = 1.0 }, { name = "target", duration = 1.0 }]
[integrator]
t_end = 2.0
)";
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = base;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  CHECK(error_of(with("layers = [2, 2, 2]", "layers = [2, 3, 2]")) ==
        "network.layers: model 'gaitprop' inverts every layer, so all layers need the same width, "
        "but layer1 has 3 neurons and layer0 has 2");
  CHECK(error_of(with("\"asinh\"", "\"relu\"")) ==
        "network.activation: model 'gaitprop' inverts every layer, but layer1 uses 'relu', which "
        "is not invertible (choose e.g. asinh or leaky_relu)");
  CHECK(error_of(with("phases = [{ name = \"forward\", duration = 1.0 }, { name = \"target\", "
                      "duration = 1.0 }]", "")) ==
        "input.phases: model 'gaitprop' needs exactly the phases \"forward\" and \"target\", e.g. "
        "phases = [{ name = \"forward\", duration = 20.0 }, { name = \"target\", duration = 5.0 }] "
        "(got: no phases)");
  CHECK(error_of(with("\"target\", duration", "\"nudge\", duration"))
            .find("(got: \"forward\", \"nudge\")") != std::string::npos);
  CHECK(error_of(with("type = \"gaitprop\"", "type = \"gaitprop\"\ngamma = 0")).find(
            "model.gamma: must be > 0, got 0") != std::string::npos);
  CHECK(error_of(with("type = \"gaitprop\"", "type = \"gaitprop\"\neta = -1")).find(
            "model.eta: must be >= 0, got -1") != std::string::npos);
  CHECK(error_of(with("type = \"gaitprop\"", "type = \"gaitprop\"\nlambda_orth = -0.5")).find(
            "model.lambda_orth: must be >= 0, got -0.5") != std::string::npos);
  CHECK(error_of(with("type = \"gaitprop\"", "type = \"gaitprop\"\nmode = \"online\"")).find(
            "unknown mode 'online' (choose one of: continuous, discrete)") != std::string::npos);
}

TEST_CASE("example gaitprop_patterns.toml (shortened): the loss over the patterns falls") {
  const std::string path = std::string(LEARNFLOW_SOURCE_DIR) + "/examples/gaitprop_patterns.toml";
  const Experiment ex = load_experiment(path, {"integrator.t_end=2000.0", "output.sample_dt=100.0"});
  Simulation sim(ex);
  MetricRecorder rec(*sim.model);
  State s;
  REQUIRE(sim.run(ex.integrator, Simulation::sample_times_of(ex), rec, s).outcome == Outcome::success);
  const std::size_t dataset_loss = rec.index("dataset_loss");
  const double first = rec.values.front()[dataset_loss], last = rec.values.back()[dataset_loss];
  CAPTURE(first);
  CAPTURE(last);
  CHECK(last < 0.5 * first);
}
