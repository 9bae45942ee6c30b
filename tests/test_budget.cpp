// The size of a run, estimated before it starts (sim/budget.hpp; issue 8): the keys named when
// it does not fit, and the estimate of the output file against the file a run writes.
#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <tuple>

#include "sim/budget.hpp"
#include "sim/core/errors.hpp"
#include "sim/run.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

// The key and message of the ConfigError `f` throws.
template <class F>
std::pair<std::string, std::string> config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return {e.key(), e.what()};
  }
  FAIL("no ConfigError thrown");
  return {};
}

// A digraph u (2, input) -> h (n) -> y (1, output) with a dense recurrent projection h -> h.
std::string recurrent(long n, const std::string& extra = "") {
  return fmt::format(R"(
[[network.population]]
name = "u"
size = 2
role = "input"
[[network.population]]
name = "h"
size = {}
[[network.population]]
name = "y"
size = 1
role = "output"
[[network.projection]]
from = "u"
to = "h"
[[network.projection]]
from = "h"
to = "h"
[[network.projection]]
from = "h"
to = "y"
[input]
value = [0.5, -0.5]
[integrator]
t_end = 1.0
[output]
sample_dt = 0.1
{}
)", n, extra);
}

const KeyLocator nowhere = [](std::string_view) { return std::string("here"); };

}  // namespace

TEST_CASE("budget: the schedule's lengths are counted without building the lists") {
  const Experiment ex = experiment_from_toml(recurrent(4));
  const ScheduleSize size = schedule_size(ex);
  CHECK(sample_times(0.0, 1.0, 0.1).size() == 11);
  CHECK(size.samples == 11);
  for (const auto& [t0, t_end, dt] : {std::tuple{0.0, 10.0, 0.01}, std::tuple{-1.3, 7.7, 0.3},
                                      std::tuple{0.05, 0.95, 0.1}, std::tuple{1e6, 1e6 + 1, 0.1}}) {
    const Experiment e = experiment_from_toml(
        recurrent(4), {fmt::format("integrator.t0={}", t0), fmt::format("integrator.t_end={}", t_end),
                       fmt::format("output.sample_dt={}", dt)});
    CHECK(schedule_size(e).samples == static_cast<double>(sample_times(t0, t_end, dt).size()));
  }
  CHECK(size.segments == 2);
  CHECK(size.slots == 0);
  const Experiment seq = experiment_from_toml(R"(
[network]
layers = [2, 3, 1]
[input]
kind = "sequence"
values = [[0.5, -0.5], [1.0, 1.0]]
present = 2.0
phases = [{ name = "a", duration = 0.5 }, { name = "b", duration = 1.5 }]
[integrator]
t_end = 10.0
)");
  const Simulation sim(seq);
  CHECK(sim.signal.segments() == 10);  // 5 presentations of 2 phases
  CHECK(schedule_size(seq).segments >= 10);
  CHECK(schedule_size(seq).segments <= 17);  // presentations + phases + 2
}

TEST_CASE("budget: memory beyond the machine's names the key behind the largest share") {
  // The recurrent projection h -> h (1e6 weights) dominates the network and the memory.
  const Experiment ex = experiment_from_toml(recurrent(1000));
  check_schedule(ex, nowhere, 1e9);  // fits in 1 GB
  auto [key, message] = config_error([&] { check_schedule(ex, nowhere, 1e6); });
  CHECK(key == "network.projection[1]");
  CHECK(message.starts_with("here: network.projection[1]: the run would need at least 7.") );
  CHECK(message.find("more than this machine's 977 KiB (the largest share: the network's 1e+06 "
                     "parameters, 7.") != std::string::npos);
  // A long sampled run: the sample times.
  const Experiment sampled = experiment_from_toml(recurrent(4), {"output.sample_dt=1e-6"});
  std::tie(key, message) = config_error([&] { check_schedule(sampled, nowhere, 1e6); });
  CHECK(key == "output.sample_dt");

  // With the model built: the recurrent weights again, then the state's copies of 100,000
  // neurons with few weights (the population sizes are the key).
  {
    const Simulation sim(ex);
    std::tie(key, message) =
        config_error([&] { check_run_size(ex, *sim.model, sim.network, sim.signal, 1e6); });
    CHECK(key == "network.projection[1]");
    CHECK(message.starts_with(ex.config_path + ": network.projection[1]: the run would need an "
                                               "estimated "));
  }
  const Experiment wide = experiment_from_toml(R"(
[[network.population]]
name = "u"
size = 2
role = "input"
[[network.population]]
name = "h"
size = 100000
role = "output"
[[network.projection]]
from = "u"
to = "h"
edges = [[0, 0], [1, 1]]
[input]
value = [0.5, -0.5]
[output]
waves = "none"
)");
  const Simulation sim(wide);
  const SizeEstimate size = check_run_size(wide, *sim.model, sim.network, sim.signal, 1e12);
  CHECK(size.memory_key == "network.population");
  CHECK(size.memory_share == "the state, 23 copies of 1e+05 values, 17.5 MiB");
  std::tie(key, message) =
      config_error([&] { check_run_size(wide, *sim.model, sim.network, sim.signal, 1e6); });
  CHECK(key == "network.population");
  // Measuring the wave arrivals keeps every sample of a segment (201 of 1e5 values).
  const Experiment waves = experiment_from_toml(wide.config_text, {"output.waves=\"all\""});
  const Simulation with_waves(waves);
  CHECK(check_run_size(waves, *with_waves.model, with_waves.network, with_waves.signal).memory_share ==
        "the 201 samples of a segment kept for its wave arrivals, 153 MiB");
}

TEST_CASE("budget: output.max_bytes refuses a run before its file exists") {
  Experiment ex = experiment_from_toml(recurrent(100), {"output.max_bytes=1e5"});
  CHECK(ex.max_output_bytes == 1e5);
  CHECK(experiment_from_toml(recurrent(4)).max_output_bytes == 50e9);  // the default
  const Simulation sim(ex);
  // 11 samples of x (101 values), the time and no metric (leaky): 1224 values, with the
  // parameters (initial only, twice counted as a bound) and the tables.
  auto [key, message] = config_error([&] { check_run_size(ex, *sim.model, sim.network, sim.signal); });
  CHECK(key == "output.max_bytes");
  CHECK(message.starts_with(ex.config_path + ": output.max_bytes: the output file would take an "
                                             "estimated "));
  CHECK(message.find("more than output.max_bytes = 100000 bytes (97.7 KiB): record less "
                     "(output.record, output.sample_dt), shorten the run, or raise the limit "
                     "(e.g. --set output.max_bytes=1e+06)") != std::string::npos);
  // Run refuses it before creating the file.
  TempDir dir;
  const std::string out = (dir.path() / "never.h5").string();
  CHECK_THROWS_AS(Run(ex, RunOptions{out}), ConfigError);
  CHECK_FALSE(std::filesystem::exists(out));
  ex.max_output_bytes = 1e9;
  Run(ex, RunOptions{out}).execute();
  CHECK(std::filesystem::exists(out));
}

TEST_CASE("budget: the file estimate is close to the file a run writes") {
  // All of x (1000 neurons) every 0.01 over [0, 10]: 1001 samples of 8 KB, 8 MB in all.
  const Experiment ex = experiment_from_toml(R"(
[network]
layers = [4, 500, 500]
init = { weights = "zeros" }
[input]
kind = "step"
t0 = 1.0
value = [1, 2, 3, 4]
[integrator]
t_end = 10.0
[output]
sample_dt = 0.01
)");
  const Simulation sim(ex);
  const SizeEstimate size = check_run_size(ex, *sim.model, sim.network, sim.signal);
  CHECK(size.samples == 1001);  // samples counted exactly
  CHECK(size.values_per_sample == 1001);  // the time and 1000 neurons
  TempDir dir;
  const std::string out = (dir.path() / "run.h5").string();
  Run(ex, RunOptions{out}).execute();
  const double written = static_cast<double>(std::filesystem::file_size(out));
  // The datasets' values in whole chunks, and 64 KiB for HDF5's own structures.
  CHECK(size.file >= written);
  CHECK(size.file <= 1.05 * written);
  CHECK(describe_size(size).starts_with("estimated memory: "));
  CHECK(format_bytes(340.0 * 1024 * 1024) == "340 MiB");
  CHECK(format_bytes(1.2 * 1024 * 1024 * 1024) == "1.2 GiB");
  CHECK(format_bytes(512) == "512 bytes");
}
