// Model "gnn" (models/gnn.hpp), each check against an independent oracle: the ODE's settled
// states against Jacobi iteration of the transition map; the Almeida–Pineda gradient against
// central finite differences of V at the fixed point; the costate flow at the settled state
// against that gradient; the contraction penalty's gradient against finite differences, and the
// penalised flow against finite differences of V + βP at the fixed point (the total derivative);
// permutation equivariance; 1 and 2 threads bit for bit; [graph] errors naming file and row.
#include <fmt/format.h>
#include <omp.h>

#include <Eigen/Dense>
#include <cmath>
#include <numeric>

#include "models/gnn.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/graph.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// A small cyclic digraph: the ring 0→1→2→3→4→0 with chords 0→2, 3→1 and 4→2; 2 features per node,
// 3 classes, nodes 0, 2 and 3 supervised.
struct SmallGraph {
  TempDir dir;
  std::string edges, features, labels, train;
  SmallGraph() {
    edges = dir.file("edges.csv", "src,dst\n0,1\n1,2\n2,3\n3,4\n4,0\n0,2\n3,1\n4,2\n");
    features = dir.file("features.csv", "0.5,-0.2\n-0.3,0.8\n0.9,0.1\n-0.7,-0.4\n0.2,0.6\n");
    labels = dir.file("labels.csv", "0\n1\n2\n1\n0\n");
    train = dir.file("train.csv", "1\n0\n1\n1\n0\n");
  }
  std::string toml(const std::string& model_extra, double t_end = 80.0) const {
    return fmt::format(R"(
[network]
seed = 7
init = {{ weights = "normal", scale = 0.8, bias = "normal", bias_scale = 0.3 }}
[model]
type = "gnn"
state = 3
{}
[graph]
edges = "{}"
features = "{}"
labels = "{}"
train_mask = "{}"
[integrator]
rtol = 1e-12
atol = 1e-14
t_end = {}
[output]
sample_dt = 1.0
)", model_extra, edges, features, labels, train, t_end);
  }
};

const GnnModel& gnn(const Simulation& sim) {
  const auto* m = dynamic_cast<const GnnModel*>(sim.model.get());
  REQUIRE(m != nullptr);
  return *m;
}

// V at the fixed point of the weights θ (flattened), by Jacobi from x = 0 to 1e-15.
double settled_loss(const GnnModel& m, const GnnModel::Weights& shape, const Eigen::VectorXd& theta) {
  GnnModel::Weights w = shape;
  w.set_flat(theta);
  const auto x = m.fixed_point(w, Eigen::MatrixXd::Zero(m.state_size(), m.nodes()), 1e-15, 100000);
  REQUIRE(x.has_value());
  return m.loss(w, *x);
}

double relative_error(const Eigen::VectorXd& a, const Eigen::VectorXd& reference) {
  return (a - reference).cwiseAbs().maxCoeff() / reference.cwiseAbs().maxCoeff();
}

}  // namespace

TEST_CASE("gnn: the settled ODE is the Jacobi fixed point, and its costate gives the exact gradient") {
  const SmallGraph g;
  for (const std::string& loss : {"cross_entropy", "squared"}) {
    CAPTURE(loss);
    Simulation sim(experiment_from_toml(g.toml(fmt::format("learn = false\nloss = \"{}\"\n", loss))));
    const GnnModel& m = gnn(sim);
    Recorder recorder;
    State s;
    REQUIRE(sim.run(recorder, s).outcome == Outcome::success);
    const GnnModel::Weights w = m.weights(s);
    // The map x ↦ F(x)/c contracts here (ℓ∞ factor below 1: 0.85), so Jacobi converges to the
    // unique fixed point and the ODE reaches it (the bound e^{−80(1−factor)} is pessimistic: the
    // linearisation's spectral radius is far below the ℓ∞ norm).
    const double factor = m.jacobian_row_sums(w, m.node_states(s)).maxCoeff();
    CHECK(factor < 1.0);
    const auto jacobi = m.fixed_point(w, Eigen::MatrixXd::Zero(3, 5), 1e-15, 100000);
    REQUIRE(jacobi.has_value());
    CHECK((m.node_states(s) - *jacobi).cwiseAbs().maxCoeff() <= 1e-10);

    // Almeida–Pineda (sparse LU) against central differences of V(x*(θ)), h = 1e-5: truncation
    // O(h²) ~ 1e-10 and rounding ~ 1e-16/h ~ 1e-11, relative to the largest component.
    const GnnModel::Weights exact = m.exact_gradient(w, *jacobi);
    const Eigen::VectorXd theta = w.flat();
    Eigen::VectorXd fd(theta.size());
    const double h = 1e-5;
    for (Eigen::Index i = 0; i < theta.size(); ++i) {
      Eigen::VectorXd plus = theta, minus = theta;
      plus[i] += h;
      minus[i] -= h;
      fd[i] = (settled_loss(m, w, plus) - settled_loss(m, w, minus)) / (2 * h);
    }
    CHECK(relative_error(exact.flat(), fd) <= 1e-6);

    // /gradient of the run (results) is that gradient.
    Eigen::VectorXd written(theta.size());
    Eigen::Index at = 0;
    std::size_t k = 0;
    for (const ParameterArray& a : m.results(s)) {
      CHECK(a.name == "/gradient/" + GnnModel::parameter_names()[k++]);
      for (const double v : a.values) written[at++] = v;
    }
    CHECK(relative_error(written, exact.flat()) <= 1e-12);

    // The costate flow at the settled (x, λ) is −dV/dθ: λ relaxed like x, to ~e^{−80(1−factor)}.
    const GnnModel::Weights flow = m.costate_flow(w, m.node_states(s), m.node_costates(s));
    CHECK(relative_error(-flow.flat(), exact.flat()) <= 1e-8);
    CHECK(relative_error(-flow.flat(), fd) <= 1e-6);
  }
}

TEST_CASE("gnn: the contraction penalty's gradient against finite differences") {
  const SmallGraph g;
  Simulation sim(experiment_from_toml(g.toml("contraction = 0.05\nactivation = \"tanh\"\n")));
  const GnnModel& m = gnn(sim);
  State s(static_cast<std::size_t>(m.layout().size()));
  m.initial_state(s);
  const GnnModel::Weights w = m.weights(s);
  const auto x = m.fixed_point(w, Eigen::MatrixXd::Zero(3, 5), 1e-14, 100000);
  REQUIRE(x.has_value());
  const double p = m.penalty(w, *x);
  CHECK(p > 0.0);
  // P = Σ max(0, R_vr − μ)² from the row sums of |J|, recomputed here from a dense Jacobian by
  // central differences of F (an independent route to R).
  const Eigen::Index n = 15;
  Eigen::MatrixXd jacobian(n, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    Eigen::MatrixXd plus = *x, minus = *x;
    plus.reshaped()[j] += 1e-6;
    minus.reshaped()[j] -= 1e-6;
    jacobian.col(j) = (m.transition(w, plus) - m.transition(w, minus)).reshaped() / 2e-6;
  }
  const Eigen::VectorXd sums = jacobian.cwiseAbs().rowwise().sum();
  CHECK((sums - m.jacobian_row_sums(w, *x).reshaped()).cwiseAbs().maxCoeff() <= 1e-8);
  CHECK(std::abs(p - (sums.array() - 0.05).max(0.0).square().sum()) <= 1e-8 * p);

  const Eigen::VectorXd theta = w.flat();
  const Eigen::VectorXd exact = m.penalty_gradient(w, *x).flat();
  Eigen::VectorXd fd(theta.size());
  const double h = 1e-6;
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    GnnModel::Weights plus = w, minus = w;
    Eigen::VectorXd tp = theta, tm = theta;
    tp[i] += h;
    tm[i] -= h;
    plus.set_flat(tp);
    minus.set_flat(tm);
    fd[i] = (m.penalty(plus, *x) - m.penalty(minus, *x)) / (2 * h);
  }
  CHECK(relative_error(exact, fd) <= 1e-6);
}

// V + βP at the fixed point of the weights θ (flattened): the objective whose total derivative the
// penalised flow follows.
double settled_objective(const GnnModel& m, const GnnModel::Weights& shape, const Eigen::VectorXd& theta) {
  GnnModel::Weights w = shape;
  w.set_flat(theta);
  const auto x = m.fixed_point(w, Eigen::MatrixXd::Zero(m.state_size(), m.nodes()), 1e-15, 100000);
  REQUIRE(x.has_value());
  return m.loss(w, *x) + m.params().contraction_weight * m.penalty(w, *x);
}

TEST_CASE("gnn: with the penalty the settled flow is the total derivative of V + βP at the fixed point") {
  // μ = 0.05 with these weights: many R_vr exceed μ (P > 0), while the ℓ∞ factor stays below 1 so
  // the fixed point exists and is unique. The weights are drawn from a normal law (no A_rk at the
  // kink of |·|; tanh's σ' > 0 everywhere), and max(0, ·)² is C¹, so central differences apply.
  const SmallGraph g;
  Simulation sim(experiment_from_toml(
      g.toml("learn = false\ncontraction = 0.05\ncontraction_weight = 0.7\nkappa = 0.01\n")));
  const GnnModel& m = gnn(sim);
  Recorder recorder;
  State s;
  REQUIRE(sim.run(recorder, s).outcome == Outcome::success);
  const GnnModel::Weights w = m.weights(s);
  const auto x = m.fixed_point(w, Eigen::MatrixXd::Zero(3, 5), 1e-15, 100000);
  REQUIRE(x.has_value());
  CHECK(m.jacobian_row_sums(w, *x).maxCoeff() < 1.0);
  CHECK(m.penalty(w, *x) > 1e-3);
  // Central differences of V + βP, re-solving the fixed point for every perturbed θ, h = 1e-5:
  // truncation O(h²) ~ 1e-10, rounding ~ 1e-16/h ~ 1e-11, relative to the largest component.
  const Eigen::VectorXd theta = w.flat();
  Eigen::VectorXd fd(theta.size());
  const double h = 1e-5;
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    Eigen::VectorXd plus = theta, minus = theta;
    plus[i] += h;
    minus[i] -= h;
    fd[i] = (settled_objective(m, w, plus) - settled_objective(m, w, minus)) / (2 * h);
  }
  const Eigen::VectorXd exact = m.exact_gradient(w, *x).flat();
  CHECK(relative_error(exact, fd) <= 1e-6);
  // Without the costate's penalty source (P's gradient at x held fixed, the former flow) it is
  // not: 0.15 relative error here.
  GnnParams without = m.params();
  without.contraction = 0.0;  // the costate of V alone
  const GnnModel plain(without, 7, sim.drive);
  const Eigen::VectorXd fixed_x =
      -plain.costate_flow(w, *x, plain.exact_costate(w, *x)).flat() + 0.7 * m.penalty_gradient(w, *x).flat();
  CHECK(relative_error(fixed_x, fd) > 1e-3);
  // The ODE's settled flow, γθ̇ + κθ = −d(V + βP)/dθ: λ relaxed with the penalty's source.
  const Eigen::VectorXd flow = m.weight_flow(s).flat() + 0.01 * theta;
  CHECK(relative_error(-flow, exact) <= 1e-8);
  CHECK(relative_error(-flow, fd) <= 1e-6);
  // /gradient (results) is the total derivative.
  Eigen::VectorXd written(theta.size());
  Eigen::Index at = 0;
  for (const ParameterArray& a : m.results(s)) {
    for (const double v : a.values) written[at++] = v;
  }
  CHECK(relative_error(written, exact) <= 1e-12);
}

TEST_CASE("gnn: renumbering the nodes permutes states and outputs and keeps the loss") {
  const SmallGraph g;
  Simulation sim(experiment_from_toml(g.toml("learn = false\n")));
  const GnnModel& m = gnn(sim);
  State s(static_cast<std::size_t>(m.layout().size()));
  m.initial_state(s);
  const GnnModel::Weights w = m.weights(s);
  const std::vector<Eigen::Index> permutation = {3, 0, 4, 1, 2};
  GnnParams params = m.params();
  params.graph = std::make_shared<const Graph>(permute_nodes(m.graph(), permutation));
  const GnnModel permuted(params, 7, sim.drive);
  const auto x = m.fixed_point(w, Eigen::MatrixXd::Zero(3, 5), 1e-15, 100000);
  const auto y = permuted.fixed_point(w, Eigen::MatrixXd::Zero(3, 5), 1e-15, 100000);
  REQUIRE(x.has_value());
  REQUIRE(y.has_value());
  const Eigen::MatrixXd ox = m.readout(w, *x), oy = permuted.readout(w, *y);
  for (Eigen::Index v = 0; v < 5; ++v) {
    CHECK((y->col(permutation[v]) - x->col(v)).cwiseAbs().maxCoeff() <= 1e-13);
    CHECK((oy.col(permutation[v]) - ox.col(v)).cwiseAbs().maxCoeff() <= 1e-13);
  }
  CHECK(std::abs(m.loss(w, *x) - permuted.loss(w, *y)) <= 1e-13 * m.loss(w, *x));
  CHECK(relative_error(permuted.exact_gradient(w, *y).flat(), m.exact_gradient(w, *x).flat()) <= 1e-11);
}

TEST_CASE("gnn: learning flows, alignment at the settled state, and 1 vs 2 threads bit for bit") {
  // A generated block model large enough for several node and edge chunks per thread.
  const std::string toml = R"(
[network]
seed = 2
init = { scale = 0.5 }
[model]
type = "gnn"
state = 4
gamma = 1000.0
contraction = 0.3
[graph]
generator = "sbm"
nodes = 300
blocks = 3
degree = 3
p_in = 0.9
seed = 5
features = "constant"
train_per_class = 5
[integrator]
t_end = 1.0
[output]
sample_dt = 0.5
)";
  const Experiment ex = experiment_from_toml(toml);
  const auto one = sample_states_with_threads(ex, 1);
  const auto two = sample_states_with_threads(ex, 2);
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);

  // The RHS's weight rates are the flow over γ, and the flow at a settled state is the exact
  // descent direction (alignment cosines 1).
  const SmallGraph g;
  Simulation sim(experiment_from_toml(g.toml("gamma = 1e9\nkappa = 0.01\ncontraction = 0.2\n", 80.0)));
  const GnnModel& m = gnn(sim);
  Recorder recorder;
  State s;
  REQUIRE(sim.run(recorder, s).outcome == Outcome::success);
  State ds(s.size());
  m.rhs(s, ds, 0.0);
  const GnnModel::Weights flow = m.weight_flow(s);
  State expected = s;
  m.set_weights(expected, flow);
  for (const char* name : {"A", "B", "C", "readout"}) {
    const BlockId id = m.layout().find("W", name);
    CHECK((m.layout().vector(ds, id) * 1e9 - m.layout().vector(expected, id)).cwiseAbs().maxCoeff() <=
          1e-12 * (1.0 + m.layout().vector(expected, id).cwiseAbs().maxCoeff()));
  }
  const auto names = m.metric_names();
  std::vector<double> values(names.size());
  m.metrics(s, 80.0, values);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("alignment/cosine/", 0) == 0) {
      CAPTURE(names[i]);
      CHECK(values[i] >= 1.0 - 1e-9);
    }
  }
}

TEST_CASE("gnn: [graph] errors name the file and row") {
  TempDir dir;
  const std::string labels = dir.file("labels.csv", "0\n1\n1\n");
  auto load = [&](const std::string& edges, const std::string& extra) {
    return experiment_from_toml(fmt::format(R"(
[model]
type = "gnn"
[graph]
edges = "{}"
labels = "{}"
{}
[integrator]
t_end = 1.0
)", dir.file("e.csv", edges), labels, extra));
  };
  const auto message = [&](const std::string& edges, const std::string& extra) {
    try {
      load(edges, extra);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message("0,1\n1,2\n", "train_per_class = 1").find("no error") != std::string::npos);
  const std::string missing = message("0,1\n1,5\n", "train_per_class = 1");
  CHECK(missing.find("e.csv:2") != std::string::npos);
  CHECK(missing.find("node 5") != std::string::npos);
  CHECK(message("0,1\n2,2\n", "train_per_class = 1").find("e.csv:2: self-loop 2 -> 2") != std::string::npos);
  CHECK(message("0,1\n2,2\n", "train_per_class = 1\nself_loops = true").find("no error") != std::string::npos);
  CHECK(message("0,1\n1,0\n", "train_per_class = 1\nundirected = true").find("e.csv:2: edge 1 -> 0 is listed twice") !=
        std::string::npos);
  const std::string features = dir.file("f.csv", "1,2\n3,4\n");
  CHECK(message("0,1\n", fmt::format("train_per_class = 1\nfeatures = \"{}\"", features))
            .find("2 rows of features for 3 nodes") != std::string::npos);
  const std::string ragged = dir.file("g.csv", "1,2\n3,4\n5\n");
  CHECK(message("0,1\n", fmt::format("train_per_class = 1\nfeatures = \"{}\"", ragged)).find("g.csv:3") !=
        std::string::npos);
  CHECK(message("0,1\n", "train_per_class = 1\nclasses = 1").find("labels.csv:2: label 1 is out of range [0, 1)") !=
        std::string::npos);
  const std::string empty = dir.file("m.csv", "0\n0\n0\n");
  CHECK(message("0,1\n", fmt::format("train_mask = \"{}\"", empty)).find("m.csv: the train mask is empty") !=
        std::string::npos);
}

TEST_CASE("gnn: the discrete reference takes one Almeida-Pineda gradient step per unit of time") {
  const SmallGraph g;
  Simulation sim(experiment_from_toml(g.toml("mode = \"discrete\"\neta = 0.3\nkappa = 0.01\n", 3.0),
                                      {"integrator.stepper=euler", "integrator.dt0=1.0"}));
  const GnnModel& m = gnn(sim);
  State start(static_cast<std::size_t>(m.layout().size()));
  m.initial_state(start);
  // Three steps by hand: θ ← θ − η (dV/dθ + κθ) at the Jacobi fixed point of θ.
  GnnModel::Weights w = m.weights(start);
  for (int k = 0; k < 3; ++k) {
    const auto x = m.fixed_point(w, Eigen::MatrixXd::Zero(3, 5), 1e-14, 100000);
    REQUIRE(x.has_value());
    w.set_flat(w.flat() - 0.3 * (m.exact_gradient(w, *x).flat() + 0.01 * w.flat()));
  }
  Recorder recorder;
  State s;
  REQUIRE(sim.run(recorder, s).outcome == Outcome::success);
  CHECK(m.layout().vector(s, m.layout().find("steps", "taken"))[0] == 3.0);
  CHECK(relative_error(m.weights(s).flat(), w.flat()) <= 1e-10);
}
