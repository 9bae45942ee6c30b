// Model "leaky": closed-form solutions and fixed points it must reach (DESIGN §4).
#include <Eigen/Dense>
#include <cmath>

#include "models/leaky.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// The fixed point of a layered network with c = 1: the feedforward pass, computed directly.
Eigen::VectorXd feedforward(const Network& net, const Eigen::VectorXd& input) {
  Eigen::VectorXd x = input, out;
  for (std::size_t l = 1; l < net.populations.size(); ++l) {
    const Projection& proj = net.projections[l - 1];
    Eigen::VectorXd a = proj.dense * x + net.bias[l];
    out.resize(a.size());
    activate(net.populations[l].activation, a, out);
    x = out;
  }
  return x;
}

const char* chain_toml = R"(
[network]
layers = [3, 4, 5, 4, 2]
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
t_end = 6.0
[output]
sample_dt = 0.25
)";

}  // namespace

TEST_CASE("a linear layered chain follows the closed form of the forward wave") {
  // ẋ = −c x + M x + B u + b with M strictly block-lower (nilpotent, M^L = 0 for L state
  // layers), so x(t) = x* − e^{−ct} Σ_{k<L} (t^k/k!) M^k (x* − x(0)), x* = (cI − M)⁻¹(B u + b).
  const Experiment ex = experiment_from_toml(chain_toml);
  Simulation sim(ex);
  const LinearChain chain(sim);
  const Eigen::Index n = sim.model->layout().size();

  Recorder rec;
  State final_state;
  const IntegrationResult r = sim.run(rec, final_state);
  REQUIRE(r.outcome == Outcome::success);
  REQUIRE(rec.times.size() == 25);
  double worst = 0.0;
  for (std::size_t i = 0; i < rec.times.size(); ++i) {
    const double t = rec.times[i];
    CHECK(chain.truncation(t).isZero(0.0));  // M^L = 0 exactly: the series is finite
    const Eigen::VectorXd exact = chain.at(t);
    const Eigen::Map<const Eigen::VectorXd> x(rec.states[i].data(), n);
    worst = std::max(worst, max_abs_diff(x, exact));
  }
  // Global error of a tolerance-controlled run: a small multiple of rtol·|x| summed over steps.
  CHECK(worst < 1e-8);
}

TEST_CASE("a tanh layered network with c = 1 settles to the feedforward pass") {
  const Experiment ex = experiment_from_toml(R"(
[network]
layers = [4, 6, 5, 3]
activation = "tanh"
seed = 3
init = { weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 }
[input]
kind = "constant"
value = [0.9, -0.3, 0.4, -1.2]
[integrator]
rtol = 1e-12
atol = 1e-14
t_end = 60.0
[output]
sample_dt = 60.0
)");
  Simulation sim(ex);
  Recorder rec;
  State final_state;
  REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
  const Eigen::Map<const Eigen::VectorXd> u(ex.input.value.data(), 4);
  const Eigen::VectorXd expected = feedforward(sim.network, u);
  const StateLayout& layout = sim.model->layout();
  const auto out = layout.vector(final_state, layout.find("x", "layer3"));
  // Distance to the fixed point decays like t^{L−1} e^{−t}: ~1e-21 at t = 60, far below rtol.
  CHECK(max_abs_diff(out, expected) < 1e-10);
}

TEST_CASE("a contracting cyclic digraph settles to its fixed point") {
  // x = tanh(W x + U u + b) with ‖W‖₂ < 1 has a unique fixed point; Newton's method on
  // F(x) = x − tanh(W x + U u + b) finds it independently of the ODE.
  const Experiment ex = experiment_from_toml(R"(
[network]
seed = 5
init = { weights = "normal", scale = 0.6, bias = "normal", bias_scale = 0.2 }
[[network.population]]
name = "u"
size = 3
role = "input"
[[network.population]]
name = "h"
size = 6
activation = "tanh"
[[network.projection]]
from = "u"
to = "h"
[[network.projection]]
name = "recurrent"
from = "h"
to = "h"
edges = [[0,1,0.4],[1,2,-0.5],[2,3,0.6],[3,4,0.3],[4,5,-0.7],[5,0,0.5],[2,0,0.2],[4,1,-0.3]]
[input]
kind = "constant"
value = [1.0, -0.5, 0.3]
[integrator]
rtol = 1e-12
atol = 1e-14
t_end = 80.0
[output]
sample_dt = 80.0
)");
  Simulation sim(ex);
  const Projection& U = sim.network.projections[0];
  const RowMatrix W = RowMatrix(sim.network.projections[1].csr);
  REQUIRE(sim.network.projections[1].sparse);
  CHECK(W.operatorNorm() < 1.0);
  CHECK(W(1, 0) == 0.4);  // edge [src 0, dst 1]: row = target, column = source
  const Eigen::Map<const Eigen::VectorXd> u(ex.input.value.data(), 3);
  const Eigen::VectorXd drive = U.dense * u + sim.network.bias[1];

  Eigen::VectorXd x = Eigen::VectorXd::Zero(6);
  for (int it = 0; it < 50; ++it) {
    const Eigen::VectorXd a = W * x + drive;
    const Eigen::VectorXd F = x - a.array().tanh().matrix();
    const Eigen::VectorXd d = (1.0 - a.array().tanh().square()).matrix();
    const Eigen::MatrixXd J = Eigen::MatrixXd::Identity(6, 6) - d.asDiagonal() * W;
    x -= J.partialPivLu().solve(F);
  }
  const Eigen::VectorXd a = W * x + drive;
  REQUIRE((x - a.array().tanh().matrix()).norm() < 1e-15);

  Recorder rec;
  State final_state;
  REQUIRE(sim.run(rec, final_state).outcome == Outcome::success);
  const auto h = sim.model->layout().vector(final_state, 0);
  // Contraction rate ≥ 1 − ‖W‖₂ > 0.2: after t = 80 the transient is below 1e-7·e^{−16}.
  CHECK(max_abs_diff(h, x) < 1e-10);
}

TEST_CASE("results are bit-identical with 1 and 2 threads") {
  // Large enough for the parallel path of the RHS (≥ 32768 weights).
  const Experiment ex = experiment_from_toml(R"(
[network]
layers = [64, 256, 256, 10]
seed = 9
[input]
kind = "sine"
amplitude = 1.0
frequency = 0.3
[integrator]
t_end = 3.0
[output]
sample_dt = 0.5
)");
  const auto one = sample_states_with_threads(ex, 1);
  const auto two = sample_states_with_threads(ex, 2);
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);  // exact equality
}
