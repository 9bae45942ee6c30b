// Model "eqprop": the EP update against the true gradient of C(u⁰(θ)) by central finite
// differences (one-sided error O(β), symmetric O(β²), over β, β/2, β/4; logistic, and
// hard_sigmoid away from its kinks); recurrent backprop (the alignment metric's reference) against
// the same finite differences; F non-increasing along free and nudged relaxations; the early
// nudged transient against −H⁻¹(I − e^{−Ht/τ}) ∂C/∂u; the end-of-phase update's wiring; XOR
// learnt; thread independence; config errors naming the key.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <boost/numeric/odeint/integrate/integrate_times.hpp>
#include <boost/numeric/odeint/stepper/generation.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_dopri5.hpp>
#include <cmath>
#include <functional>

#include "models/eqprop.hpp"
#include "sim/core/errors.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// A 2-3-2 network with a constant input and target, phases free and nudged.
std::string small_network(const std::string& activation, const std::string& init, double beta,
                          const std::string& extra_model = "") {
  return fmt::format(R"(
[network]
layers = [2, 3, 2]
activation = "{}"
seed = 3
init = {}
[model]
type = "eqprop"
beta = {}
{}
[input]
value = [0.6, 0.3]
target = [0.8, 0.2]
phases = [{{ name = "free", duration = 20.0 }}, {{ name = "nudged", duration = 10.0 }}]
[integrator]
rtol = 1e-9
atol = 1e-11
t_end = 60.0
[output]
sample_dt = 0.5
)", activation, init, beta, extra_model);
}

const EqpropModel& eqprop(const Simulation& sim) {
  const auto* m = dynamic_cast<const EqpropModel*>(sim.model.get());
  REQUIRE(m != nullptr);
  return *m;
}

// A Direction flattened in the layout's order of the parameter blocks (connections, then biases
// by population).
Eigen::VectorXd flatten(const Network& net, const EqpropModel::Direction& d) {
  std::vector<double> v;
  for (const auto& w : d.weights) v.insert(v.end(), w.data(), w.data() + w.size());
  Eigen::Index at = 0;
  for (const Population& p : net.populations) {
    if (p.role == Role::input) continue;
    v.insert(v.end(), d.biases.data() + at, d.biases.data() + at + p.size);
    at += p.size;
  }
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

// The parameters as finite differences see them: each a set of state offsets moved together, and
// its position in the flattened Direction. A weight of a lateral (self) connection is the pair
// W_ij = W_ji (the energy's parameter): both entries move; the diagonal (W_ii = 0) is no parameter.
struct Parameter {
  std::vector<std::size_t> offsets;
  Eigen::Index flat;
};

std::vector<Parameter> parameters_of(const EqpropModel& m) {
  std::vector<Parameter> out;
  Eigen::Index flat = 0;
  std::size_t connection = 0;
  for (const Block& b : m.layout().blocks()) {
    if (b.kind != "W" && b.kind != "b") continue;
    const bool self = b.kind == "W" && m.connections()[connection++].self;
    for (Eigen::Index i = 0; i < b.size; ++i, ++flat) {
      const auto at = static_cast<std::size_t>(b.offset + i);
      if (!self) {
        out.push_back({{at}, flat});
        continue;
      }
      const Eigen::Index n = b.shape[1], r = i / n, c = i % n;
      if (r != c) out.push_back({{at, static_cast<std::size_t>(b.offset + c * n + r)}, flat});
    }
  }
  return out;
}

Eigen::VectorXd select(const Eigen::VectorXd& flat, const std::vector<Parameter>& params) {
  Eigen::VectorXd v(static_cast<Eigen::Index>(params.size()));
  for (std::size_t i = 0; i < params.size(); ++i) v[static_cast<Eigen::Index>(i)] = flat[params[i].flat];
  return v;
}

struct Oracle {
  std::vector<Parameter> params;
  Eigen::VectorXd fd;     // −dC/dθ by central differences of C(u⁰(θ))
  Eigen::VectorXd exact;  // recurrent backprop
  Eigen::MatrixXd u0;
};

// Settles the free phase to a residual of 1e-12 (dopri5 at 1e-13) at the network's parameters,
// and differentiates C(u⁰(θ)) by central differences with step h (error O(h²) ≈ 1e-10 plus
// 1e-12/h from the settled residual: ~1e-7 absolute).
Oracle gradient_oracle(const Simulation& sim, State s, double h) {
  const EqpropModel& m = eqprop(sim);
  const Eigen::MatrixXd x = sim.drive.at(0.0);
  const Eigen::MatrixXd y = sim.drive.target();
  const Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(m.neurons(), 1);
  Oracle o;
  o.params = parameters_of(m);
  o.u0 = m.relax(m.parameters_of(s), x, zero, 0.0, nullptr, 1e-13, 1e-12, 2000.0);
  o.exact = select(flatten(sim.network, m.exact_direction(m.parameters_of(s), x, o.u0, y)), o.params);
  o.fd.resize(static_cast<Eigen::Index>(o.params.size()));
  for (std::size_t i = 0; i < o.params.size(); ++i) {
    double c[2];
    for (int side = 0; side < 2; ++side) {
      State t = s;
      for (const std::size_t at : o.params[i].offsets) t[at] += side == 0 ? h : -h;
      const Eigen::MatrixXd u = m.relax(m.parameters_of(t), x, o.u0, 0.0, nullptr, 1e-13, 1e-12, 2000.0);
      c[side] = m.cost(u, y)(0);
    }
    o.fd[static_cast<Eigen::Index>(i)] = -(c[0] - c[1]) / (2.0 * h);
  }
  return o;
}

// The EP estimates at β (one-sided: ρρ(u^β) − ρρ(u⁰) over β; symmetric: over 2β from ∓β).
Eigen::VectorXd ep_estimate(const Simulation& sim, const State& s, const Oracle& o, double beta,
                            bool symmetric) {
  const EqpropModel& m = eqprop(sim);
  const Eigen::MatrixXd x = sim.drive.at(0.0);
  const Eigen::MatrixXd y = sim.drive.target();
  const auto p = m.parameters_of(s);
  const Eigen::MatrixXd plus = m.relax(p, x, o.u0, beta, &y, 1e-13, 1e-12, 2000.0);
  const Eigen::MatrixXd minus = symmetric ? m.relax(p, x, o.u0, -beta, &y, 1e-13, 1e-12, 2000.0) : o.u0;
  return select(flatten(sim.network, m.ep_direction(x, plus, minus, symmetric ? 2.0 * beta : beta)), o.params);
}

// The errors of the estimates at β, β/2, β/4 against the finite differences fall by 2 (one-sided)
// or 4 (symmetric) per halving: the leading error term of u^β in β is O(β) resp. O(β²) (the
// symmetric difference cancels the even terms). Ratios within 15% of 2 and 4: the next term is
// O(β) relative to the leading one, β ≤ 0.2 here; the finite differences' error (~1e-7) is below
// 1e-3 of the smallest estimate error. `prepare` may change the initial state.
void check_orders(const std::string& label, const std::string& toml, double beta0,
                  const std::function<void(const Simulation&, State&)>& prepare = {}) {
  const Experiment ex = experiment_from_toml(toml);
  Simulation sim(ex);
  sim.drive.enter_segment(0, 0.0);
  REQUIRE(sim.drive.has_target());
  State s(static_cast<std::size_t>(sim.model->layout().size()));
  sim.model->initial_state(s);
  if (prepare) prepare(sim, s);
  const Oracle o = gradient_oracle(sim, s, 1e-5);
  // Recurrent backprop is the exact gradient (the alignment metric's reference).
  CHECK((o.exact - o.fd).norm() <= 1e-6 * o.fd.norm());
  for (const bool symmetric : {false, true}) {
    CAPTURE(symmetric);
    double errors[3];
    for (int i = 0; i < 3; ++i) {
      const double beta = beta0 / std::pow(2.0, i);
      errors[i] = (ep_estimate(sim, s, o, beta, symmetric) - o.fd).norm();
      MESSAGE(fmt::format("{} {} β = {}: |EP − grad| = {:.3e} (|grad| = {:.3e})", label,
                          symmetric ? "symmetric" : "one-sided", beta, errors[i], o.fd.norm()));
      CHECK(errors[i] > 1e3 * 1e-7);
    }
    const double order = symmetric ? 4.0 : 2.0;
    CHECK(errors[0] / errors[1] == doctest::Approx(order).epsilon(0.15));
    CHECK(errors[1] / errors[2] == doctest::Approx(order).epsilon(0.15));
  }
}

}  // namespace

TEST_CASE("eqprop: the EP update converges to the gradient of C at the free fixed point, O(β) and O(β²)") {
  SUBCASE("logistic, layered") {
    check_orders("logistic", small_network("logistic", R"({ weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 })", 0.2), 0.2);
  }
  SUBCASE("tanh, a general graph: a symmetric pair and a lateral connection") {
    // in → h one-way, h ↔ out one connection (W/h_out, out_h its transpose), h → h lateral.
    const std::string graph = R"(
[network]
activation = "tanh"
seed = 6
init = { weights = "normal", scale = 1.2, bias = "normal", bias_scale = 0.3 }
[[network.population]]
name = "in"
size = 2
role = "input"
[[network.population]]
name = "h"
size = 3
[[network.population]]
name = "out"
size = 2
role = "output"
[[network.projection]]
from = "in"
to = "h"
[[network.projection]]
from = "h"
to = "out"
symmetric = true
[[network.projection]]
from = "h"
to = "h"
symmetric = true
[[network.projection]]
from = "out"
to = "h"
symmetric = true
[model]
type = "eqprop"
[input]
value = [0.6, -0.3]
target = [0.5, -0.4]
phases = [{ name = "free", duration = 20.0 }, { name = "nudged", duration = 10.0 }]
[integrator]
t_end = 30.0
)";
    check_orders("tanh graph", graph, 0.2);
  }
  SUBCASE("hard_sigmoid, every neuron away from its kinks") {
    // Small weights and biases 0.3: every pre-activation a stays inside (0, 1) for the free and
    // nudged states and for the finite differences (checked), where hard_sigmoid is linear.
    check_orders("hard_sigmoid", small_network("hard_sigmoid", R"({ weights = "normal", scale = 0.3, bias = "zeros" })", 0.2), 0.2,
                 [](const Simulation& sim, State& s) {
                   for (const Block& b : sim.model->layout().blocks()) {
                     if (b.kind == "b") std::fill_n(s.begin() + b.offset, b.size, 0.3);
                   }
                   const EqpropModel& m = eqprop(sim);
                   const Eigen::MatrixXd u0 = m.relax(m.parameters_of(s), sim.drive.at(0.0),
                                                      Eigen::MatrixXd::Zero(m.neurons(), 1), 0.0,
                                                      nullptr, 1e-13, 1e-12, 2000.0);
                   REQUIRE(u0.minCoeff() > 0.1);
                   REQUIRE(u0.maxCoeff() < 0.9);
                 });
  }
}

TEST_CASE("eqprop: F never increases along the free and nudged relaxations") {
  // Within each segment (one phase of one pattern, parameters constant in discrete mode), F at
  // consecutive samples may rise only by the solver's error: rtol = atol = 1e-9 on u, |∂F/∂u| ≤ 2,
  // a few neurons: 1e-7 bounds it.
  for (const std::string activation : {"hard_sigmoid", "logistic", "tanh"}) {
    for (const bool symmetric : {false, true}) {
      CAPTURE(activation);
      CAPTURE(symmetric);
      const Experiment ex = experiment_from_toml(fmt::format(R"(
[network]
layers = [2, 5, 1]
activation = "{}"
seed = 4
init = {{ weights = "normal", scale = 2.0, bias = "normal", bias_scale = 0.5 }}
[model]
type = "eqprop"
beta = 0.5
eta = 0.3
symmetric = {}
[input]
kind = "sequence"
phases = [{{ name = "free", duration = 6.0 }}, {{ name = "nudged", duration = 4.0 }}]
values = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
targets = [[0.0], [1.0], [1.0], [0.0]]
[integrator]
rtol = 1e-9
atol = 1e-9
t_end = 80.0
[output]
sample_dt = 0.125
)", activation, symmetric));
      Simulation sim(ex);
      MetricRecorder rec(*sim.model);
      State final_state;
      REQUIRE(sim.run(ex.integrator, Simulation::sample_times_of(ex), rec, final_state).outcome ==
              Outcome::success);
      const std::size_t f = rec.index("total_energy");
      const auto& bounds = sim.signal.boundaries();
      std::size_t pairs = 0;
      double worst = -1e300;
      for (std::size_t i = 0; i + 1 < rec.times.size(); ++i) {
        const auto k = static_cast<std::size_t>(std::upper_bound(bounds.begin(), bounds.end(), rec.times[i]) - bounds.begin());
        if (k == 0 || k >= bounds.size() || rec.times[i] <= bounds[k - 1] || rec.times[i + 1] >= bounds[k]) continue;
        worst = std::max(worst, rec.values[i + 1][f] - rec.values[i][f]);
        ++pairs;
      }
      CHECK(pairs > 400);
      CHECK(worst <= 1e-7);
    }
  }
}

TEST_CASE("eqprop: the early nudged trajectory is recurrent backprop's transient") {
  // Linearised at u⁰, τ δ̇ = −H δ − β ∂C/∂u: (u^β(t) − u⁰)/β = −H⁻¹(I − e^{−Ht/τ}) ∂C/∂u + O(β)
  // (Scellier & Bengio 2019). β = 1e-5: the O(β) term is ~1e-5 relative; the integration error
  // (1e-13) over β ~1e-8.
  for (const double tau : {1.0, 2.5}) {
    CAPTURE(tau);
    const Experiment ex = experiment_from_toml(small_network(
        "logistic", R"({ weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 })", 1e-5,
        fmt::format("tau = {}", tau)));
    Simulation sim(ex);
    const EqpropModel& m = eqprop(sim);
    State s(static_cast<std::size_t>(m.layout().size()));
    m.initial_state(s);
    const auto p = m.parameters_of(s);
    const Eigen::MatrixXd x = sim.drive.at(0.0);
    Eigen::MatrixXd y(2, 1);
    y << 0.8, 0.2;
    const Eigen::Index n = m.neurons();
    const Eigen::MatrixXd u0 = m.relax(p, x, Eigen::MatrixXd::Zero(n, 1), 0.0, nullptr, 1e-13, 1e-13, 4000.0);
    const Eigen::MatrixXd h = m.hessian(p, x.col(0), u0.col(0));
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(h);
    REQUIRE(eig.eigenvalues().minCoeff() > 0.0);  // a strict minimum of E
    Eigen::VectorXd dc = Eigen::VectorXd::Zero(n);  // ∂C/∂u = u_out − y on the outputs
    dc.tail(2) = u0.col(0).tail(2) - y.col(0);

    namespace odeint = boost::numeric::odeint;
    const double beta = 1e-5;
    std::vector<double> state(u0.data(), u0.data() + n);
    const std::vector<double> times{0.0, 0.25, 0.5, 1.0, 2.0, 4.0};  // t/τ
    std::vector<double> real_times;
    for (const double t : times) real_times.push_back(t * tau);
    std::vector<Eigen::VectorXd> at;
    auto system = [&](const std::vector<double>& v, std::vector<double>& dv, double) {
      Eigen::Map<Eigen::MatrixXd> du(dv.data(), n, 1);
      m.flow(p, x, Eigen::Map<const Eigen::MatrixXd>(v.data(), n, 1), beta, &y, du);
      du /= tau;
    };
    odeint::integrate_times(odeint::make_dense_output(1e-14, 1e-14, odeint::runge_kutta_dopri5<std::vector<double>>()),
                            system, state, real_times.begin(), real_times.end(), 1e-3,
                            [&](const std::vector<double>& v, double) {
                              at.push_back(Eigen::Map<const Eigen::VectorXd>(v.data(), n));
                            });
    for (std::size_t i = 1; i < times.size(); ++i) {
      const Eigen::VectorXd decay = (-eig.eigenvalues().array() * times[i]).exp();
      const Eigen::VectorXd predicted =
          -(eig.eigenvectors() * ((1.0 - decay.array()) / eig.eigenvalues().array()).matrix().asDiagonal() *
            eig.eigenvectors().transpose() * dc);
      const Eigen::VectorXd observed = (at[i] - u0.col(0)) / beta;
      CAPTURE(times[i]);
      CHECK((observed - predicted).norm() <= 1e-4 * predicted.norm());
    }
  }
}

TEST_CASE("eqprop: the end of a nudged phase applies η times the EP estimate from u⁰ and u^β") {
  for (const bool symmetric : {false, true}) {
    CAPTURE(symmetric);
    const Experiment ex = experiment_from_toml(small_network(
        "logistic", R"({ weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 })", 0.3,
        fmt::format("eta = 0.7\nsymmetric = {}", symmetric)));
    Simulation sim(ex);
    const EqpropModel& m = eqprop(sim);
    Recorder rec;
    State final_state;
    REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
    auto sample = [&](double t) -> const State& {
      const auto it = std::find(rec.times.begin(), rec.times.end(), t);
      REQUIRE(it != rec.times.end());
      return rec.states[static_cast<std::size_t>(it - rec.times.begin())];
    };
    // Samples at t = 20 (u⁰: the state is continuous at the phase switch), t = 30 (u^β, the
    // nudged phase's last sample, before its exit event) and t = 30.5 (the updated parameters).
    const State& free_end = sample(20.0);
    const State& nudged_end = sample(30.0);
    const State& after = sample(30.5);
    const Eigen::MatrixXd x = sim.drive.at(0.0);
    const auto d = m.ep_direction(x, m.free_state(nudged_end),
                                  symmetric ? m.free_state(nudged_end, true) : m.free_state(free_end),
                                  symmetric ? 0.6 : 0.3);
    for (std::size_t k = 0; k < m.connections().size(); ++k) {
      const auto w = m.layout().vector(nudged_end, m.connections()[k].w);
      const auto w_after = m.layout().vector(after, m.connections()[k].w);
      const Eigen::VectorXd step = w_after - w;
      CHECK((step - 0.7 * d.weights[k]).norm() <= 1e-14 * (1.0 + w.norm()));
      CHECK(d.weights[k].norm() > 1e-3);
    }
    // Weights are constant within the phases (discrete update).
    for (const auto& c : m.connections()) {
      CHECK(m.layout().vector(free_end, c.w) == m.layout().vector(nudged_end, c.w));
    }
  }
}

TEST_CASE("eqprop: update = \"flow\" moves the weights by (η/β) Δ[ρρ] over the nudged phase as η → 0") {
  // Ẇ = (η/β) d/dt[ρ_i ρ_j] integrates to (η/β)(ρρ(u(T)) − ρρ(u⁰)) exactly; with the weights
  // moving, u(T) differs from the discrete run's u^β by O(η). Compare the flow's total step with
  // the discrete one: the difference falls ∝ η (ratio ≈ 2 per halving within 20%).
  double previous = 0.0;
  for (const double eta : {0.04, 0.02, 0.01}) {
    CAPTURE(eta);
    std::vector<Eigen::VectorXd> steps[2];
    for (const std::string update : {"discrete", "flow"}) {
      const Experiment ex = experiment_from_toml(small_network(
          "logistic", R"({ weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 })", 0.3,
          fmt::format("eta = {}\nupdate = \"{}\"", eta, update)));
      Simulation sim(ex);
      const EqpropModel& m = eqprop(sim);
      Recorder rec;
      State final_state;
      REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
      const auto at = [&](double t) {
        return static_cast<std::size_t>(std::find(rec.times.begin(), rec.times.end(), t) - rec.times.begin());
      };
      for (const auto& c : m.connections()) {
        steps[update == "flow"].push_back(m.layout().vector(rec.states[at(30.5)], c.w) -
                                          m.layout().vector(rec.states[at(20.0)], c.w));
      }
    }
    double diff = 0.0, norm = 0.0;
    for (std::size_t k = 0; k < steps[0].size(); ++k) {
      diff += (steps[1][k] - steps[0][k]).squaredNorm();
      norm += steps[0][k].squaredNorm();
    }
    const double relative = std::sqrt(diff / norm);
    MESSAGE(fmt::format("η = {}: |flow − discrete| / |discrete| = {:.3e}", eta, relative));
    CHECK(relative < 10.0 * eta);
    if (previous > 0.0) CHECK(previous / relative == doctest::Approx(2.0).epsilon(0.2));
    previous = relative;
  }
}

TEST_CASE("eqprop: XOR is learnt (examples/eqprop_xor.toml)") {
  const Experiment ex = load_experiment(std::string(LEARNFLOW_SOURCE_DIR) + "/examples/eqprop_xor.toml",
                                        {"output.sample_dt=60.0", "network.seed=2",
                                         "integrator.t_end=2400.0"});  // seed 2 learns by epoch 7
  Simulation sim(ex);
  MetricRecorder rec(*sim.model);
  State final_state;
  REQUIRE(sim.run(ex.integrator, Simulation::sample_times_of(ex), rec, final_state).outcome == Outcome::success);
  CHECK(rec.values.back()[rec.index("accuracy")] == 1.0);
  CHECK(rec.values.back()[rec.index("dataset_loss")] < 0.05);
  CHECK(rec.values.front()[rec.index("accuracy")] < 1.0);
}

TEST_CASE("eqprop: 1 and 2 threads give the same bits") {
  const Experiment ex = experiment_from_toml(small_network(
      "hard_sigmoid", R"({ weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 })", 0.3,
      "eta = 0.5\nsymmetric = true\nupdate = \"flow\""));
  const auto one = sample_states_with_threads(ex, 1);
  const auto two = sample_states_with_threads(ex, 2);
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
}

TEST_CASE("eqprop: a training run (minibatches of the digits) gives the same bits on 1 and 2 threads") {
  const Experiment ex = load_experiment(std::string(LEARNFLOW_SOURCE_DIR) + "/examples/eqprop_digits.toml",
                                        {"train.epochs=1", "data.test_fraction=0.9", "train.batch=8",
                                         "model.update=\"flow\""});
  const auto one = sample_states_with_threads(ex, 1);
  const auto two = sample_states_with_threads(ex, 2);
  REQUIRE(one.size() == two.size());
  REQUIRE(one.size() > 10);
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
}

TEST_CASE("eqprop config errors name the key") {
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
activation = "hard_sigmoid"
[[network.population]]
name = "in"
size = 2
role = "input"
[[network.population]]
name = "h"
size = 3
[[network.population]]
name = "out"
size = 1
role = "output"
[[network.projection]]
from = "in"
to = "h"
[[network.projection]]
from = "h"
to = "out"
symmetric = true
[[network.projection]]
from = "out"
to = "h"
symmetric = true
[model]
type = "eqprop"
beta = 0.5
[input]
value = [0.5, 0.5]
target = [1.0]
phases = [{ name = "free", duration = 1.0 }, { name = "nudged", duration = 1.0 }]
[integrator]
t_end = 2.0
)";
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = base;
    const auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    return t;
  };
  {  // the base is valid
    const Experiment ex = experiment_from_toml(base);
    Simulation sim(ex);
    CHECK(sim.model->layout().contains("W", "h_out"));
    CHECK_FALSE(sim.model->layout().contains("W", "out_h"));  // the reverse shares h_out's weights
    CHECK(sim.network.projections[2].dense == sim.network.projections[1].dense.transpose());
  }
  // An asymmetric pair: the reverse without symmetric = true.
  CHECK(error_of(with("to = \"h\"\nsymmetric = true", "to = \"h\"")).find(
            "network.projection[1].symmetric: projection 'h_out' (h -> out) is symmetric, so it "
            "needs exactly one reverse projection from 'out' to 'h' with symmetric = true (found 1 "
            "reverse, 0 of them symmetric)") != std::string::npos);
  CHECK(error_of(with("to = \"out\"\nsymmetric = true", "to = \"out\"")).find(
        "network.projection[2].symmetric: projection 'out_h' (out -> h) is symmetric, so it needs "
        "exactly one reverse projection from 'h' to 'out' with symmetric = true (found 1 reverse, 0 "
        "of them symmetric)") != std::string::npos);
  // No symmetric flag at all.
  {
    std::string t = with("to = \"out\"\nsymmetric = true", "to = \"out\"");
    t = t.replace(t.find("to = \"h\"\nsymmetric = true"), 25, "to = \"h\"");
    CHECK(error_of(t) == "network.projection[1].symmetric: model 'eqprop' needs symmetric weights "
                         "(an energy needs W_ij = W_ji): set symmetric = true on projection 'h_out' "
                         "and on its reverse from 'out' to 'h' (or use the layered shorthand)");
  }
  // A self-connection: a symmetric lateral projection given with a non-zero diagonal.
  {
    const TempDir dir;
    const std::string csv = dir.file("hh.csv", "0.5,0.1,0.2\n0.1,0,0.3\n0.2,0.3,0\n");
    const std::string t = with("[model]", fmt::format("[[network.projection]]\nfrom = \"h\"\nto = \"h\"\n"
                                                      "symmetric = true\nweights = \"{}\"\n[model]", csv));
    CHECK(error_of(t) == "network.projection[3]: model 'eqprop' needs W_ii = 0 (no neuron is "
                         "connected to itself), but projection 'h_h' has W[0, 0] = 0.5");
    const std::string asym = dir.file("hh2.csv", "0,0.1,0.2\n0.4,0,0.3\n0.2,0.3,0\n");
    CHECK(error_of(with("[model]", fmt::format("[[network.projection]]\nfrom = \"h\"\nto = \"h\"\n"
                                               "symmetric = true\nweights = \"{}\"\n[model]", asym)))
              .find("network.projection[3].symmetric: the given weights of projection 'h_h' are not "
                    "symmetric") != std::string::npos);
    // A valid lateral connection (zero diagonal) is accepted and shares nothing.
    const std::string ok = dir.file("hh3.csv", "0,0.1,0.2\n0.1,0,0.3\n0.2,0.3,0\n");
    const Experiment ex = experiment_from_toml(with("[model]", fmt::format(
        "[[network.projection]]\nfrom = \"h\"\nto = \"h\"\nsymmetric = true\nweights = \"{}\"\n[model]", ok)));
    Simulation sim(ex);
    CHECK(sim.model->layout().contains("W", "h_h"));
  }
  CHECK(error_of(with("beta = 0.5", "beta = 0.0")).find("model.beta: ") != std::string::npos);
  CHECK(error_of(with("beta = 0.5", "beta = -1.0")).find("model.beta: ") != std::string::npos);
  CHECK(error_of(with("beta = 0.5", "beta = 1.0\nsymmetric = true")).find(
            "model.beta: must be < 1 with symmetric = true") != std::string::npos);
  CHECK(error_of(with("beta = 0.5", "beta = 0.5\neta = -0.1")).find("model.eta: ") != std::string::npos);
  CHECK(error_of(with("beta = 0.5", "beta = 0.5\nupdate = \"flo\"")).find("model.update: ") != std::string::npos);
  CHECK(error_of(with("beta = 0.5", "beta = 0.5\nloss = \"cross_entropy\"")).find("model.loss: ") != std::string::npos);
  CHECK(error_of(with("\"nudged\"", "\"nudge\"")) ==
        "input.phases: model 'eqprop' needs exactly the phases \"free\" and \"nudged\", e.g. "
        "phases = [{ name = \"free\", duration = 20.0 }, { name = \"nudged\", duration = 10.0 }] "
        "(got: \"free\", \"nudge\")");
  CHECK(error_of(with("phases = [{ name = \"free\", duration = 1.0 }, { name = \"nudged\", duration = 1.0 }]", ""))
            .find("(got: no phases)") != std::string::npos);
  CHECK(error_of(with("activation = \"hard_sigmoid\"", "activation = \"relu\"")) ==
        "network.population[1].activation: model 'eqprop' needs a bounded activation with a "
        "continuous derivative (or hard_sigmoid, relaxed in projected form), so that the energy is "
        "bounded below and the relaxation smooth, but population 'h' uses 'relu' (choose "
        "hard_sigmoid, logistic or tanh)");
  CHECK(error_of(with("to = \"out\"\nsymmetric = true", "to = \"out\"\nsymmetric = true\nedges = [[0, 0]]"))
            .find("network.projection[1].symmetric: a symmetric projection is dense") != std::string::npos);
}
