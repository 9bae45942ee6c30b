// The batch axis: B copies of one example follow the single example's trajectory in every
// model; the batched costate flow is the mean of the single-example flows and −(1/γ)∂(mean V)/∂W
// (finite differences computed here); the schedule's minibatches are per-epoch permutations.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <cmath>
#include <set>

#include "models/costate.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// A CSV of `rows` (features) and one of `targets`, in a temp dir; returns the [data] table.
std::string data_table(const TempDir& dir, const std::string& name,
                       const std::vector<std::vector<double>>& rows,
                       const std::vector<std::vector<double>>& targets) {
  auto csv = [](const std::vector<std::vector<double>>& table) {
    std::string text;
    for (const auto& row : table) {
      for (std::size_t j = 0; j < row.size(); ++j) text += fmt::format("{}{:.17g}", j ? "," : "", row[j]);
      text += "\n";
    }
    return text;
  };
  const std::string x = dir.file(name + "_x.csv", csv(rows));
  const std::string y = dir.file(name + "_y.csv", csv(targets));
  return fmt::format("[data]\ntrain = \"{}\"\ntrain_targets = \"{}\"\ntest_fraction = 0.0\n", x, y);
}

// The configs of the four learning models on small networks (3 inputs), with [train] left out.
struct ModelCase {
  const char* name;
  const char* toml;
  std::vector<double> target;  // of the one example
};

const ModelCase model_cases[] = {
    {"costate", R"(
[network]
layers = [3, 5, 4, 2]
plastic = true
seed = 3
init = { weights = "normal", scale = 1.2, bias = "normal", bias_scale = 0.3 }
[model]
type = "costate"
gamma = 4.0
[integrator]
stepper = "rk4"
dt0 = 0.05
)", {0.4, -0.3}},
    {"dtp", R"(
[network]
layers = [3, 4, 3]
seed = 4
init = { weights = "normal", scale = 1.0, bias = "normal", bias_scale = 0.2 }
[model]
type = "dtp"
update = "flow"
eta = 0.5
decoder_rate = 0.1
[integrator]
stepper = "rk4"
dt0 = 0.05
)", {0.2, 0.1, -0.3}},
    {"gaitprop", R"(
[network]
layers = [3, 3, 3]
activation = "asinh"
seed = 5
init = { weights = "orthogonal" }
[model]
type = "gaitprop"
gamma = 0.1
eta = 0.05
lambda_orth = 0.1
[integrator]
stepper = "rk4"
dt0 = 0.05
)", {0.3, -0.2, 0.1}},
    {"backprop", R"(
[network]
layers = [3, 5, 2]
plastic = true
seed = 6
[model]
type = "backprop"
eta = 0.3
)", {0.5, -0.5}},
};

std::string train_table(long batch, const char* model) {
  const bool phased = std::string(model) == "dtp" || std::string(model) == "gaitprop";
  return fmt::format("[train]\nepochs = 3\nbatch = {}\nshuffle = false\n{}\n[output]\nsample_dt = 0.5\n"
                     "record = {{ x = \"all\", lambda = \"all\", h = \"all\", target = \"all\", "
                     "W = \"all\", b = \"all\", Omega = \"all\" }}\n",
                     batch, phased ? "phases = [{ name = \"forward\", duration = 6.0 }, { name = "
                                     "\"target\", duration = 3.0 }]"
                                   : "present = 9.0");
}

}  // namespace

TEST_CASE("a batch of B copies of one example follows the single example's trajectory") {
  // Fixed steps (rk4): the batched equations against the single example's, to rounding. (With
  // adaptive steps the step sizes follow the rounding of the error estimate too, and the copies
  // drift apart further: up to 4.5e-12 over these runs with dopri5 at rtol 1e-10.)
  const TempDir dir;
  const std::vector<double> example{0.6, -0.4, 0.25};
  constexpr long copies = 4;
  for (const ModelCase& c : model_cases) {
    const std::string model_name = c.name;
    CAPTURE(model_name);
    const std::string one = data_table(dir, std::string(c.name) + "_one", {example}, {c.target});
    const std::string many = data_table(dir, std::string(c.name) + "_many",
                                        std::vector<std::vector<double>>(copies, example),
                                        std::vector<std::vector<double>>(copies, c.target));
    const Experiment single_ex = experiment_from_toml(std::string(c.toml) + one + train_table(1, c.name));
    const Experiment batch_ex = experiment_from_toml(std::string(c.toml) + many + train_table(copies, c.name));
    REQUIRE(single_ex.integrator.t_end == batch_ex.integrator.t_end);  // one minibatch per epoch
    Simulation single(single_ex), batch(batch_ex);
    Recorder single_rec, batch_rec;
    State single_final, batch_final;
    REQUIRE(single.run(single_rec, single_final).outcome == Outcome::success);
    REQUIRE(batch.run(batch_rec, batch_final).outcome == Outcome::success);
    REQUIRE(single_rec.times == batch_rec.times);
    const StateLayout& sl = single.model->layout();
    const StateLayout& bl = batch.model->layout();
    REQUIRE(sl.blocks().size() == bl.blocks().size());
    double worst = 0.0;
    for (std::size_t i = 0; i < single_rec.times.size(); ++i) {
      for (BlockId id = 0; id < sl.blocks().size(); ++id) {
        const Block& b = sl.block(id);
        REQUIRE(bl.block(id).name() == b.name());
        if (b.per_example()) {
          const auto s = sl.examples(single_rec.states[i], id);
          const auto m = bl.examples(batch_rec.states[i], id);
          for (Eigen::Index col = 0; col < copies; ++col) {
            worst = std::max(worst, (m.col(col) - s.col(0)).cwiseAbs().maxCoeff());
          }
        } else {
          worst = std::max(worst, (bl.vector(batch_rec.states[i], id) -
                                   sl.vector(single_rec.states[i], id)).cwiseAbs().maxCoeff());
        }
      }
    }
    MESSAGE(model_name, ": largest difference from the single example ", worst);
    CHECK(worst <= 1e-13);
  }
}

TEST_CASE("batched costate at the settled state: the flow is the mean of the examples' flows and −(1/γ)∂(mean V)/∂W") {
  // Frozen weights (plastic = false: the flow is computed but not integrated), five examples
  // settled for 60 τ: x is the forward pass and λ the backprop error of each example.
  const TempDir dir;
  const std::vector<std::vector<double>> rows{{0.6, -0.4, 0.25}, {-0.3, 0.8, 0.1}, {0.9, 0.2, -0.7},
                                              {0.0, -0.5, 0.5}, {0.3, 0.3, 0.3}};
  const std::vector<std::vector<double>> targets{{0.7, 0.3}, {0.0, 1.0}, {0.5, 0.5}, {1.0, 0.0},
                                                 {0.2, 0.8}};
  const std::string toml = R"(
[network]
layers = [3, 5, 4, 2]
seed = 8
init = { weights = "normal", scale = 1.3, bias = "normal", bias_scale = 0.4 }
[model]
type = "costate"
gamma = 2.5
loss = "cross_entropy"
[integrator]
rtol = 1e-12
atol = 1e-14
[train]
epochs = 1
shuffle = false
present = 60.0
)";
  auto with_batch = [&](int batch) { return toml + fmt::format("batch = {}\n", batch); };
  // Training runs need a plastic projection; the flows of frozen weights are what is compared,
  // so the costate model is built on the same network with plasticity switched off afterwards.
  auto frozen = [](Experiment ex) {
    for (auto& p : ex.network.projections) p.plastic = false;
    return ex;
  };
  const Experiment batch_ex = frozen(experiment_from_toml(
      with_batch(5) + data_table(dir, "five", rows, targets),
      {"network.plastic=true"}));
  Simulation batch(batch_ex);
  Recorder rec;
  State settled;
  REQUIRE(batch.run(rec, settled).outcome == Outcome::success);
  const auto& model = dynamic_cast<const CostateModel&>(*batch.model);
  const double t = batch_ex.integrator.t_end;
  const std::vector<Eigen::VectorXd> flows = model.weight_flow(settled, t);

  // (1) The mean of the single-example flows, each from a B = 1 run of its own example.
  std::vector<Eigen::VectorXd> mean(flows.size());
  for (std::size_t b = 0; b < rows.size(); ++b) {
    const Experiment one_ex = frozen(experiment_from_toml(
        with_batch(1) + data_table(dir, fmt::format("one{}", b), {rows[b]}, {targets[b]}),
        {"network.plastic=true"}));
    Simulation one(one_ex);
    Recorder one_rec;
    State one_settled;
    REQUIRE(one.run(one_rec, one_settled).outcome == Outcome::success);
    const auto one_flows = dynamic_cast<const CostateModel&>(*one.model).weight_flow(one_settled, t);
    for (std::size_t k = 0; k < flows.size(); ++k) {
      if (b == 0) mean[k] = Eigen::VectorXd::Zero(flows[k].size());
      mean[k] += one_flows[k] / static_cast<double>(rows.size());
    }
  }
  for (std::size_t k = 0; k < flows.size(); ++k) {
    CAPTURE(k);
    CHECK((flows[k] - mean[k]).norm() <= 1e-12 * mean[k].norm());
  }

  // (2) −(1/γ) ∂(mean V)/∂W by central differences of the mean loss of the settled network,
  // computed here: forward pass with tanh, cross-entropy on the outputs.
  const Network& net = batch.network;
  auto mean_loss = [&](const std::vector<RowMatrix>& w) {
    double sum = 0.0;
    for (std::size_t b = 0; b < rows.size(); ++b) {
      Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(rows[b].data(), 3);
      for (std::size_t l = 1; l < net.populations.size(); ++l) {
        x = (w[l - 1] * x + net.bias[l]).array().tanh();
      }
      const Eigen::Map<const Eigen::VectorXd> y(targets[b].data(), 2);
      const double m = x.maxCoeff();
      const double log_sum = m + std::log((x.array() - m).exp().sum());
      sum += -(y.array() * (x.array() - log_sum)).sum();
    }
    return sum / static_cast<double>(rows.size());
  };
  std::vector<RowMatrix> w;
  for (const Projection& p : net.projections) w.push_back(p.dense);
  const double h = 1e-6, gamma = 2.5;
  for (std::size_t k = 0; k < w.size(); ++k) {
    Eigen::VectorXd fd(w[k].size());
    for (Eigen::Index i = 0; i < w[k].size(); ++i) {
      auto up = w, down = w;
      up[k].data()[i] += h;
      down[k].data()[i] -= h;
      fd[i] = -(mean_loss(up) - mean_loss(down)) / (2 * h) / gamma;
    }
    CAPTURE(k);
    CHECK((flows[k] - fd).norm() <= 1e-8 * fd.norm());
  }
}

TEST_CASE("minibatches: each epoch is a permutation of the training set, new per epoch, seeded") {
  auto data = std::make_shared<DataSet>();
  constexpr Eigen::Index n = 23;
  data->train.inputs = Eigen::MatrixXd::Zero(2, n);
  data->train.targets = Eigen::MatrixXd::Zero(1, n);
  data->error_rows = 1;
  InputSpec spec;
  spec.kind = InputKind::dataset;
  spec.data = data;
  spec.present = 1.0;
  spec.train.epochs = 4;
  spec.train.batch = 5;  // ⌈23/5⌉ = 5 minibatches, the last filled up with the epoch's first two
  auto orders = [&](std::uint64_t seed) {
    spec.train.seed = seed;
    const InputSignal signal(spec, 0.0, 20.0);
    REQUIRE(signal.minibatches_per_epoch() == 5);
    std::vector<std::vector<std::size_t>> epochs;
    for (std::size_t e = 0; e < 4; ++e) {
      std::vector<std::size_t> order;
      for (std::size_t m = 0; m < 5; ++m) {
        const auto ex = signal.minibatch_examples(e * 5 + m);
        order.insert(order.end(), ex.begin(), ex.end());
      }
      // Every example once, then the fill-up repeats the epoch's first two.
      const std::set<std::size_t> seen(order.begin(), order.begin() + n);
      CHECK(seen.size() == static_cast<std::size_t>(n));
      CHECK(*seen.rbegin() == static_cast<std::size_t>(n - 1));
      CHECK(order[n] == order[0]);
      CHECK(order[n + 1] == order[1]);
      epochs.push_back(order);
    }
    return epochs;
  };
  const auto a = orders(7), again = orders(7), other = orders(8);
  CHECK(a == again);
  CHECK(a != other);
  for (std::size_t e = 1; e < a.size(); ++e) CHECK(a[e] != a[e - 1]);
  // Segment → minibatch: boundaries at k·present, and the schedule resets only when asked.
  spec.train.seed = 7;
  const InputSignal signal(spec, 0.0, 20.0);
  REQUIRE(signal.segments() == 20);
  CHECK(signal.minibatch(7) == 7);
  CHECK(signal.starts_minibatch(7));
  CHECK_FALSE(signal.resets(7));
  spec.train.reset = true;
  CHECK(InputSignal(spec, 0.0, 20.0).resets(7));
}

TEST_CASE("training runs give the same bits with 1 and 2 threads (batched parallel RHS)") {
  // Minibatches of 30 digits on 64-wide layers: ~120,000 multiply-adds per product pass, the
  // parallel path (several chunks of 64 rows, handed out dynamically). Every model.
  const std::string data = R"(
[data]
name = "digits"
limit = 150
test_fraction = 0.2
)";
  const std::string output = R"(
[output]
sample_dt = 5.0
record = { x = "all", lambda = "all", h = "all", target = "all", W = "all", b = "all", Omega = "all" }
)";
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"costate", R"(
[network]
layers = [64, 64, 64, 10]
plastic = true
[model]
type = "costate"
gamma = 50.0
loss = "cross_entropy"
[train]
epochs = 1
batch = 30
present = 10.0
)"},
      {"dtp", R"(
[network]
layers = [64, 64, 10]
[model]
type = "dtp"
update = "flow"
eta = 0.1
decoder_rate = 0.05
[train]
epochs = 1
batch = 30
phases = [{ name = "forward", duration = 5.0 }, { name = "target", duration = 5.0 }]
)"},
      {"gaitprop", R"(
[network]
layers = [64, 64, 64]
activation = "asinh"
init = { weights = "orthogonal" }
[model]
type = "gaitprop"
eta = 0.05
lambda_orth = 0.01
[train]
epochs = 1
batch = 30
phases = [{ name = "forward", duration = 8.0 }, { name = "target", duration = 2.0 }]
)"}};
  for (const auto& [name, toml] : configs) {
    CAPTURE(name);
    // GAIT-prop's square layers: the first 10 of 64 outputs carry the classes.
    const Experiment ex = experiment_from_toml(toml + data + (name == "gaitprop" ? "classes = 10\n" : "") + output);
    const auto one = sample_states_with_threads(ex, 1);
    const auto two = sample_states_with_threads(ex, 2);
    REQUIRE(one.size() == two.size());
    REQUIRE(one.size() > 2);
    for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);  // exact equality
    CHECK(one.back() != one.front());
  }
}
