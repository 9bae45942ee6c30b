// Exact adjoint mode: the gradient of J = ∫₀ᵀ V dt from the backward sweep against central
// finite differences of J, each J computed by a forward integration of its own.
#include <cmath>

#include "models/adjoint.hpp"
#include "sim/adjoint_sweep.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// Inputs switch at t = 1.5 and 3 (breakpoints crossed in both directions), the target changes
// with them, and x starts at rest, so J gathers a transient as well as settled errors.
const char* adjoint_toml = R"(
[network]
layers = [2, 4, 3, 2]
activation = "tanh"
seed = 13
init = { weights = "normal", scale = 1.4, bias = "normal", bias_scale = 0.3 }
[model]
type = "costate"
mode = "adjoint"
tau_x = 0.7
c = 1.2
[input]
kind = "sequence"
present = 1.5
values = [[1.0, -0.5], [-0.3, 0.8], [0.6, 0.6]]
targets = [[0.5, -0.2], [-0.4, 0.3], [0.1, 0.7]]
[integrator]
rtol = 1e-12
atol = 1e-14
t_end = 4.0
[output]
sample_dt = 0.5
)";

// J = ∫V dt by a forward run, with weight `index` of projection k shifted by `shift`.
double loss_integral(const Experiment& ex, std::size_t k, Eigen::Index index, double shift) {
  Simulation sim(ex);
  RowMatrix& w = sim.network.projections[k].dense;
  w.data()[index] += shift;
  Recorder rec;
  State s;
  REQUIRE(sim.run(rec, s).outcome == Outcome::success);
  REQUIRE(sim.adjoint != nullptr);
  const AdjointForwardModel& forward = *sim.adjoint;
  return forward.layout().vector(s, forward.integral_block())[0];
}

// The backward sweep's gradient against central differences of J, each J a forward run of its own.
void check_gradient_against_differences(const std::vector<std::string>& overrides) {
  const Experiment ex = experiment_from_toml(adjoint_toml, overrides);
  Simulation sim(ex);
  REQUIRE(sim.adjoint != nullptr);
  const AdjointForwardModel& forward = *sim.adjoint;
  TrajectoryStore store(sim.signal.segments(), forward.neuron_count());
  Recorder rec;
  ForwardRecorder recorder(rec, forward, store);
  State s;
  const auto times = Simulation::sample_times_of(ex);
  REQUIRE(sim.run(ex.integrator, times, recorder, s).outcome == Outcome::success);
  const AdjointSweep sweep = sweep_backward(forward, sim.network, sim.signal, ex.integrator,
                                            times, store, s);
  REQUIRE(sweep.result.outcome == Outcome::success);
  CHECK(sweep.times == times);  // λ sampled at the forward sample times, increasing
  CHECK(sweep.loss_integral > 0.0);

  // Central differences with h = 1e-5: truncation h²|J'''|/6 ≈ 1e-11, rounding from the
  // integrations (rtol 1e-12) ≈ 1e-12·J/h ≈ 1e-7·J relative — below the 1e-6 asked for.
  const double h = 1e-5;
  for (std::size_t k = 0; k < sim.network.projections.size(); ++k) {
    CAPTURE(k);
    const Eigen::VectorXd& g = sweep.weight_gradient[k];
    Eigen::VectorXd fd(g.size());
    for (Eigen::Index i = 0; i < g.size(); ++i) {
      fd[i] = (loss_integral(ex, k, i, h) - loss_integral(ex, k, i, -h)) / (2 * h);
    }
    CHECK((g - fd).norm() <= 1e-6 * fd.norm());
  }
}

}  // namespace

TEST_CASE("adjoint mode: the gradient of the loss integral equals finite differences") {
  // dopri5: the gradient quadrature takes λ from the stepper's dense output. rk4 (no dense
  // output), dt = 1e-3: from the cubic Hermite interpolant of λ and dλ/ds at each step's ends
  // (O(dt⁴) ≈ 1e-12, like rk4's own error).
  SUBCASE("dopri5") { check_gradient_against_differences({}); }
  SUBCASE("rk4") {
    check_gradient_against_differences({"integrator.stepper=\"rk4\"", "integrator.dt0=1e-3"});
  }
}
