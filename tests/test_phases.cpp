// Phases that end on convergence and divergence flags (integrators/driver.hpp, issue 9): a linear
// relaxation ends at t = log(r0/ε)/rate, the rest of the schedule moves earlier, and a
// relaxation whose residual grows is flagged (and can end the run).
#include <fmt/format.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>

#include "models/dtp.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

struct PhaseRecorder final : IntegrationObserver {
  std::vector<double> times;
  std::vector<State> states;
  std::vector<PhaseReport> phases;
  void sample(const State& s, double t) override {
    times.push_back(t);
    states.push_back(s);
  }
  void phase_end(const PhaseReport& p) override { phases.push_back(p); }
};

// One leaky population driven through linear weights: x(0) = 0, τ ẋ = −c x + W u + b, so the
// residual ‖ẋ‖ = r0 e^{−ct/τ} with r0 = ‖W u + b‖/τ, in every phase that starts from rest.
const char* relaxation_toml = R"(
[network]
layers = [2, 3]
activation = "linear"
seed = 3
init = { weights = "normal", scale = 1.0, bias = "normal", bias_scale = 0.2 }
[model]
c = 0.5
tau = 2.0
[input]
kind = "sequence"
values = [[0.7, -0.4], [-0.2, 0.9]]
phases = [{ name = "relax", until = { residual = 1e-4 }, max_duration = 60.0 }, { name = "hold", duration = 1.5 }]
[integrator]
rtol = 1e-12
atol = 1e-14
t_end = 123.0
[output]
sample_dt = 0.5
)";

}  // namespace

TEST_CASE("a phase ending on its residual ends at t = log(r0/ε)/rate and moves the schedule") {
  for (const char* stepper : {"dopri5", "rk4"}) {
    CAPTURE(stepper);
    std::vector<std::string> overrides{fmt::format("integrator.stepper=\"{}\"", stepper)};
    if (std::string(stepper) == "rk4") overrides.emplace_back("integrator.dt0=0.01");
    const Experiment ex = experiment_from_toml(relaxation_toml, overrides);
    Simulation sim(ex);
    const double c = 0.5, tau = 2.0, eps = 1e-4;
    const Projection& proj = sim.network.projections[0];
    const auto r0 = [&](const std::vector<double>& input) {
      const Eigen::Map<const Eigen::VectorXd> u(input.data(), 2);
      return (proj.dense * u + sim.network.bias[1]).norm() / tau;
    };
    PhaseRecorder rec;
    State final_state;
    const IntegrationResult result = sim.run(ex.integrator, Simulation::sample_times_of(ex), rec, final_state);
    REQUIRE(result.outcome == Outcome::success);
    REQUIRE(rec.phases.size() == 4);  // relax, hold, relax, hold
    // First relaxation from x = 0: r(t) = r0 e^{−(c/τ) t} reaches ε at log(r0/ε) τ/c.
    const double t1 = std::log(r0(ex.input.sequence[0]) / eps) * tau / c;
    REQUIRE(t1 < 60.0);
    CHECK(rec.phases[0].converged);
    CHECK(rec.phases[0].end == doctest::Approx(t1).epsilon(1e-8));
    CHECK(rec.phases[0].residual_end == doctest::Approx(eps).epsilon(1e-6));
    // The hold phase starts where the relaxation ended and lasts its duration.
    CHECK(rec.phases[1].start == rec.phases[0].end);
    CHECK(rec.phases[1].end == doctest::Approx(rec.phases[0].end + 1.5).epsilon(1e-14));
    CHECK_FALSE(rec.phases[1].converged);
    // The second input starts from wherever x is: the system is linear, so ẍ = −(c/τ) ẋ and
    // r(t) = r(t2) e^{−(c/τ)(t − t2)} exactly; the phase takes log(r(t2)/ε) τ/c.
    const double t2 = rec.phases[2].start;
    CHECK(t2 == rec.phases[1].end);
    CHECK(rec.phases[2].converged);
    CHECK(rec.phases[2].end - t2 ==
          doctest::Approx(std::log(rec.phases[2].residual_start / eps) * tau / c).epsilon(1e-8));
    // The run ends when the last (fixed) phase ends, earlier than the planned t_end.
    CHECK(result.t == doctest::Approx(rec.phases[2].end + 1.5).epsilon(1e-12));
    CHECK(result.t < 123.0);
    // Samples stay on the grid k·sample_dt and stop at the time reached.
    CHECK(rec.times.back() <= result.t);
    CHECK(std::fmod(rec.times.back(), 0.5) == 0.0);
    for (const PhaseReport& p : rec.phases) CHECK_FALSE(p.diverged);
  }
}

TEST_CASE("a phase whose maximum duration passes first is not converged, and keeps the schedule") {
  const Experiment ex = experiment_from_toml(relaxation_toml, {
      "input.phases=[{name = \"relax\", until = {residual = 1e-30}, max_duration = 10.0}, "
      "{name = \"hold\", duration = 1.5}]", "integrator.t_end=23.0"});
  Simulation sim(ex);
  PhaseRecorder rec;
  State final_state;
  REQUIRE(sim.run(ex.integrator, Simulation::sample_times_of(ex), rec, final_state).outcome == Outcome::success);
  REQUIRE(rec.phases.size() == 4);
  CHECK_FALSE(rec.phases[0].converged);
  CHECK(rec.phases[0].end == 10.0);
  CHECK(rec.phases[3].end == 23.0);
}

namespace {

// A DTP target phase whose decoders are perturbed pseudo-inverses: the target residual relaxes
// as τ_r ṙ = −J_{g∘f} r near the target, so it grows when J_{g∘f} has an eigenvalue with a
// negative real part (the model's predicted_rate < 0) and decays otherwise.
const char* dtp_toml = R"(
[network]
layers = [4, 4, 4]
activation = "tanh"
seed = 1
init = { weights = "orthogonal", scale = 1.0, bias = "normal", bias_scale = 0.1 }
[model]
type = "dtp"
beta = 0.1
update = "none"
decoders = "pinv"
decoder_noise = 0.3
[input]
kind = "sequence"
values = [[0.4, -0.2, 0.3, 0.1]]
targets = [[0.3, 0.1, -0.2, 0.2]]
phases = [{ name = "forward", duration = 20.0 }, { name = "target", duration = 20.0 }]
[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 40.0
[output]
sample_dt = 0.5
)";

}  // namespace

namespace {

// The DTP run of dtp_toml with exact pseudo-inverse decoders Ω_l = W_l⁺ (kept as state, learning
// at a negligible rate), multiplied by `sign`; returns the phase reports.
std::vector<PhaseReport> dtp_phases(double sign, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> overrides{"model.decoder_noise=0.0", "model.decoder_rate=1e-12"};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  const Experiment ex = experiment_from_toml(dtp_toml, overrides);
  Simulation sim(ex);
  State state(static_cast<std::size_t>(sim.model->layout().size()));
  sim.model->initial_state(state);
  for (const Block& b : sim.model->layout().blocks()) {
    if (b.kind == "Omega") {
      for (Eigen::Index i = b.offset; i < b.offset + b.size; ++i) state[i] *= sign;
    }
  }
  PhaseRecorder rec;
  const IntegrationResult result = integrate(*sim.model, sim.drive, state, ex.integrator,
                                             Simulation::sample_times_of(ex), rec);
  CHECK(result.outcome == (sign < 0 && ex.integrator.stop_on_divergence ? Outcome::diverged : Outcome::success));
  return rec.phases;
}

}  // namespace

TEST_CASE("a deliberately expansive decoder is flagged as diverged, a contracting one is not") {
  // Decoders g_l(h) = Ω_l σ(h) + c_l with Ω_l = W_l⁺ (no noise): near the forward pass J_{g∘f} = I, the
  // targets relax as τ_r ṙ = −r (contracting). With Ω_l negated J_{g∘f} = −I, ‖I − J‖ = 2,
  // and the residual grows like e^{t/τ_r} until the targets saturate.
  const auto contracting = dtp_phases(1.0);
  REQUIRE(contracting.size() == 2);
  CHECK_FALSE(contracting[0].diverged);
  CHECK_FALSE(contracting[1].diverged);
  CHECK(contracting[1].residual_end < 1e-3 * contracting[1].residual_start);
  const auto expansive = dtp_phases(-1.0);
  REQUIRE(expansive.size() == 2);
  CHECK_FALSE(expansive[0].diverged);  // the forward phase does not use the decoders
  CHECK(expansive[1].diverged);
  CHECK(expansive[1].residual_end > expansive[1].residual_start);
}

TEST_CASE("integrator.on_divergence = stop ends the run at the diverged phase") {
  const auto phases = dtp_phases(-1.0, {"integrator.on_divergence=\"stop\"",
                                        "input.values=[[0.4, -0.2, 0.3, 0.1], [0.1, 0.2, -0.3, 0.0]]",
                                        "input.targets=[[0.3, 0.1, -0.2, 0.2], [0.0, 0.1, 0.2, -0.1]]",
                                        "integrator.t_end=80.0"});
  REQUIRE(phases.size() == 2);  // the run stopped after the first target phase
  CHECK(phases[1].diverged);
}
