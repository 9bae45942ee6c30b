// Checkpoints and --resume (issue 8): the checkpoint file round-trips every entry, and a run that
// is stopped after every single step and resumed each time from its checkpoint writes the file of
// the run that was never stopped, bit for bit, for every stepper and for models with event state.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <hdf5.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "helpers.hpp"
#include "outputs/checkpoint_file.hpp"
#include "sim/run.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// Every dataset of a file (values as raw bytes) and the /solver counts, read with the HDF5 C API.
std::map<std::string, std::vector<double>> contents(const std::string& path) {
  std::map<std::string, std::vector<double>> out;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(file >= 0);
  H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE,
           [](hid_t root, const char* name, const H5O_info_t* info, void* data) -> herr_t {
             if (info->type != H5O_TYPE_DATASET) return 0;
             const hid_t set = H5Dopen2(root, name, H5P_DEFAULT);
             const hid_t type = H5Dget_type(set);
             if (H5Tget_class(type) == H5T_FLOAT) {
               const hid_t space = H5Dget_space(set);
               std::vector<double> v(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
               if (!v.empty()) H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
               (*static_cast<std::map<std::string, std::vector<double>>*>(data))[name] = v;
               H5Sclose(space);
             }
             H5Tclose(type);
             H5Dclose(set);
             return 0;
           },
           &out, H5O_INFO_BASIC);
  const hid_t solver = H5Gopen2(file, "/solver", H5P_DEFAULT);
  for (const char* name : {"steps", "rejected", "rhs_evals"}) {
    std::int64_t v = -1;
    const hid_t attr = H5Aopen(solver, name, H5P_DEFAULT);
    H5Aread(attr, H5T_NATIVE_INT64, &v);
    H5Aclose(attr);
    out[std::string("solver/") + name] = {static_cast<double>(v)};
  }
  H5Gclose(solver);
  H5Fclose(file);
  return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// Runs `toml` uninterrupted, and again stopped after every step (integrator.max_wall_seconds
// tiny) and resumed until it completes; the two files must hold the same bits.
void check_resumed_every_step(const std::string& toml, const std::vector<std::string>& sets) {
  const TempDir dir;
  const std::string reference = (dir.path() / "reference.h5").string();
  const std::string stepped = (dir.path() / "stepped.h5").string();
  {
    Run run(experiment_from_toml(toml, sets), RunOptions{reference, 1});
    REQUIRE(run.execute().result.outcome == Outcome::success);
  }
  std::vector<std::string> stop = sets;
  stop.push_back("integrator.max_wall_seconds=1e-12");
  int invocations = 0;
  bool sweep_stopped = false;
  for (bool resume = false;; resume = true) {
    RunOptions options{stepped, 1};
    options.resume = resume;
    Run run(experiment_from_toml(toml, stop), options);
    const RunReport report = run.execute();
    ++invocations;
    if (report.result.outcome == Outcome::success) {
      // The adjoint's backward sweep stops at its first step too.
      sweep_stopped = report.adjoint.has_value();
      if (sweep_stopped) REQUIRE(report.adjoint->outcome == Outcome::wall_limit);
      break;
    }
    REQUIRE(report.result.outcome == Outcome::wall_limit);
    REQUIRE(!report.checkpoint.empty());
    REQUIRE(invocations < 100000);
  }
  if (sweep_stopped) {
    // Redone from the checkpoint at the end of the forward sweep, once more without the limit.
    RunOptions options{stepped, 1};
    options.resume = true;
    Run last(experiment_from_toml(toml, sets), options);
    const RunReport done = last.execute();
    REQUIRE(done.result.outcome == Outcome::success);
    REQUIRE(done.adjoint->outcome == Outcome::success);
  }
  CHECK(!std::filesystem::exists(checkpoint_path(stepped)));
  const auto a = contents(reference), b = contents(stepped);
  CHECK(a.size() == b.size());
  for (const auto& [name, values] : a) {
    INFO(name);
    REQUIRE(b.count(name) == 1);
    CHECK(same_bits(values, b.at(name)));
  }
  MESSAGE(invocations << " invocations");
  CHECK(invocations > 10);  // Bulirsch–Stoer: one per input segment (12), the others per step
}

constexpr const char* xor_costate = R"(
[network]
layers = [2, 3, 1]
activation = "logistic"
plastic = true
seed = 3
init = { weights = "normal", bias = "normal", bias_scale = 0.5 }
[model]
type = "costate"
gamma = 8.0
[input]
kind = "sequence"
present = 2.0
values = [[0, 0], [0, 1], [1, 0], [1, 1]]
targets = [[0], [1], [1], [0]]
[integrator]
t_end = 24.0
[output]
sample_dt = 0.25
)";

constexpr const char* gaitprop_phases = R"(
[network]
layers = [3, 3, 3]
activation = "tanh"
seed = 5
init = { weights = "orthogonal", bias = "zeros" }
[model]
type = "gaitprop"
gamma = 0.1
eta = 0.05
[input]
kind = "sequence"
phases = [{ name = "forward", duration = 3.0 }, { name = "target", duration = 2.0 }]
values = [[1, 0, 0.5], [0, 1, -0.5]]
targets = [[0.5, -0.5, 0.2], [-0.3, 0.4, 0.1]]
[integrator]
t_end = 20.0
[output]
sample_dt = 0.5
)";

constexpr const char* dtp_phases = R"(
[network]
layers = [3, 4, 2]
activation = "tanh"
seed = 7
[model]
type = "dtp"
eta = 0.05
[input]
kind = "sequence"
phases = [{ name = "forward", duration = 4.0 }, { name = "target", duration = 6.0 }]
values = [[0.5, -0.2, 0.1], [-0.4, 0.3, 0.2]]
targets = [[0.2, -0.1], [-0.3, 0.3]]
[integrator]
t_end = 40.0
[output]
sample_dt = 1.0
)";

constexpr const char* eqprop_phases = R"(
[network]
layers = [2, 3, 1]
activation = "hard_sigmoid"
seed = 3
init = { weights = "normal", scale = 1.5, bias = "normal", bias_scale = 0.5 }
[model]
type = "eqprop"
beta = 0.4
eta = 0.3
[input]
kind = "sequence"
phases = [{ name = "free", duration = 3.0 }, { name = "nudged", duration = 2.0 }]
values = [[0.0, 1.0], [1.0, 1.0]]
targets = [[1.0], [0.0]]
[integrator]
t_end = 20.0
[output]
sample_dt = 0.5
)";

// A training run: minibatches of a shuffled data set (digits, from Debian's python3-sklearn),
// resets between minibatches, evaluations on the held-out set after every epoch.
constexpr const char* training = R"(
[network]
layers = [64, 8, 10]
activation = "tanh"
output_activation = "linear"
plastic = true
seed = 2
[model]
type = "costate"
gamma = 50.0
loss = "cross_entropy"
[data]
name = "digits"
test_fraction = 0.95
split_seed = 3
[train]
epochs = 2
batch = 30
present = 4.0
[integrator]
rtol = 1e-4
atol = 1e-6
)";

}  // namespace

TEST_CASE("the checkpoint file holds every entry, replaced atomically") {
  const TempDir dir;
  const std::string path = (dir.path() / "run.h5.checkpoint").string();
  Snapshot snapshot;
  snapshot.put("state", {1.0, -2.5, std::nan(""), 1e-310});
  snapshot.put("loop/t", 3.25);
  snapshot.put("empty", std::vector<double>{});
  snapshot.put_nested("model/rates", {{1.0, 2.0}, {}, {3.0}});
  snapshot.put_text("run/config", "[model]\ntype = \"costate\"\n");
  snapshot.put_text("observer/first_divergence", "");
  write_checkpoint(path, snapshot);
  write_checkpoint(path, snapshot);  // replaced: the rename goes over the previous one
  CHECK(!std::filesystem::exists(path + ".partial"));
  const Snapshot back = read_checkpoint(path);
  CHECK(back.arrays().size() == snapshot.arrays().size());
  for (const auto& [name, values] : snapshot.arrays()) {
    INFO(name);
    CHECK(same_bits(back.get(name), values));
  }
  CHECK(back.texts() == snapshot.texts());
  CHECK(back.nested("model/rates") == std::vector<std::vector<double>>{{1.0, 2.0}, {}, {3.0}});
  CHECK_THROWS_AS(back.get("missing"), InputError);
  CHECK_THROWS_AS(read_checkpoint(path + ".absent"), DataFileError);
}

TEST_CASE("a run resumed after every step equals the uninterrupted run, for every stepper") {
  for (const char* stepper : {"dopri5", "rkck54", "rkf78", "bs", "rk4", "euler"}) {
    SUBCASE(stepper) {
      std::vector<std::string> sets{fmt::format("integrator.stepper=\"{}\"", stepper)};
      if (std::string(stepper) == "rk4" || std::string(stepper) == "euler") {
        sets.emplace_back("integrator.dt0=0.05");
      }
      check_resumed_every_step(xor_costate, sets);
    }
  }
}

TEST_CASE("a run resumed after every step equals the uninterrupted run: models with event state") {
  SUBCASE("gaitprop (frozen forward pass)") { check_resumed_every_step(gaitprop_phases, {}); }
  SUBCASE("costate with inertia (velocity blocks)") {
    check_resumed_every_step(xor_costate, {"model.m_w=0.5", "model.m_x=0.2"});
  }
  SUBCASE("holonomic (a projection after every step, impacts at the switches)") {
    std::string holonomic = xor_costate;
    const auto begin = holonomic.find("[model]"), end = holonomic.find("[input]");
    holonomic.replace(begin, end - begin, "[model]\ntype = \"holonomic\"\nm_x = 0.3\nm_w = 2.0\ntheta = 0.2\n");
    check_resumed_every_step(holonomic, {});
    check_resumed_every_step(holonomic, {"model.m_x=0.0"});
    check_resumed_every_step(holonomic, {"model.input_switch=\"ramp\"", "model.ramp_width=0.5"});
  }
  SUBCASE("gaitprop, discrete updates") {
    check_resumed_every_step(gaitprop_phases, {"model.mode=\"discrete\""});
  }
  SUBCASE("dtp (open target phase, fitted rates)") { check_resumed_every_step(dtp_phases, {}); }
  SUBCASE("eqprop (stored free state u⁰)") {
    check_resumed_every_step(eqprop_phases, {});
    check_resumed_every_step(eqprop_phases, {"model.symmetric=true", "model.update=\"flow\""});
    check_resumed_every_step(eqprop_phases, {"network.activation=\"logistic\"", "model.symmetric=true"});
  }
  SUBCASE("costate, adjoint mode (stored forward trajectory)") {
    check_resumed_every_step(xor_costate, {"model.mode=\"adjoint\"", "network.plastic=false"});
    // Bulirsch–Stoer: checkpoints at segment starts and ends, the last one ending the forward sweep.
    check_resumed_every_step(xor_costate, {"model.mode=\"adjoint\"", "network.plastic=false",
                                           "integrator.stepper=\"bs\""});
  }
  SUBCASE("training: shuffled minibatches, resets, evaluations") {
    check_resumed_every_step(training, {});
    std::string backprop = training;
    const std::string costate = "type = \"costate\"\ngamma = 50.0";
    backprop.replace(backprop.find(costate), costate.size(), "type = \"backprop\"\neta = 0.2");
    check_resumed_every_step(backprop, {});
  }
  SUBCASE("phases that end on convergence (the schedule's shift)") {
    check_resumed_every_step(gaitprop_phases,
                             {"input.phases=[{name=\"forward\", until={residual=1e-3}, "
                              "max_duration=3.0}, {name=\"target\", duration=2.0}]"});
  }
}
