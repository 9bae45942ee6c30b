// The library API: an experiment from a file, from TOML text and from a tree of values (the
// same Experiment), the Simulation assembly (the adjoint's forward model named by the registry),
// and the scoped per-run thread count (no process-wide OpenMP setting changes).
#include <omp.h>

#include <string>

#include "models/adjoint.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/threads.hpp"
#include "sim/run.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

const char* chain = R"(
[network]
layers = [2, 4, 3]
seed = 3
[model]
type = "costate"
mode = "adjoint"
[input]
kind = "sequence"
present = 1.5
values = [[0.5, -0.25], [-0.3, 0.8]]
targets = [[0.1, 0.2, -0.3], [-0.2, 0.4, 0.1]]
[integrator]
t_end = 3.0
[output]
sample_dt = 0.25
)";

}  // namespace

TEST_CASE("an experiment from text and from a table equals the one from its file") {
  TempDir dir;
  const std::string path = dir.file("chain.toml", chain);
  const std::vector<std::string> sets{"integrator.t_end=2.5", "model.gamma=4.0"};
  const Experiment file = load_experiment(path, sets);
  const Experiment text = experiment_from_text(chain, path, sets);
  const Experiment table = experiment_from_table(toml::parse(chain), path, sets);
  for (const Experiment* ex : {&text, &table}) {
    CHECK(ex->config_text == file.config_text);
    CHECK(ex->result_config == file.result_config);
    CHECK(ex->integrator.t_end == 2.5);
    CHECK(ex->input_files.empty());  // no file was read
  }
  REQUIRE(file.input_files.size() == 1);
  CHECK(file.input_files.front() == path);
  // A table built in code has no lines: an error names the origin alone.
  toml::table bad = toml::parse(chain);
  bad["integrator"].as_table()->insert_or_assign("rtol", -1.0);
  try {
    experiment_from_table(std::move(bad), "<dict>", {});
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "integrator.rtol");
    CHECK(e.where() == "<dict>");
    CHECK(std::string(e.what()) == "<dict>: integrator.rtol: must be > 0, got -1");
  }
}

TEST_CASE("the registry names the adjoint's forward model; other models need no backward sweep") {
  Simulation adjoint(experiment_from_toml(chain));
  REQUIRE(adjoint.adjoint != nullptr);
  CHECK(static_cast<const Model*>(adjoint.adjoint) == adjoint.model.get());
  Simulation diffusion(experiment_from_toml(chain, {"model.mode=diffusion"}));
  CHECK(diffusion.adjoint == nullptr);
  CHECK(diffusion.times == sample_times(0.0, 3.0, 0.25));
}

TEST_CASE("a thread count is scoped: nested, restored, and never set process-wide") {
  const int outside = omp_get_max_threads();
  CHECK(thread_count() == outside);
  {
    const ScopedThreadCount one(1);
    CHECK(thread_count() == 1);
    {
      const ScopedThreadCount three(3);
      CHECK(thread_count() == 3);
      const ScopedThreadCount unset(0);  // 0: keeps the count in force
      CHECK(thread_count() == 3);
    }
    CHECK(thread_count() == 1);
    int team = 0;
#pragma omp parallel num_threads(thread_count())
#pragma omp single
    team = omp_get_num_threads();
    CHECK(team == 1);
  }
  CHECK(thread_count() == outside);
  // A run with its own count leaves OpenMP's default as it was, and reports its count.
  TempDir dir;
  Run run(experiment_from_toml(chain), RunOptions{(dir.path() / "run.h5").string(), outside + 1});
  const RunReport report = run.execute();
  CHECK(report.result.outcome == Outcome::success);
  CHECK(report.threads == outside + 1);
  CHECK(omp_get_max_threads() == outside);
  CHECK(thread_count() == outside);
}
