// The library API: an experiment from a file, from TOML text and from a tree of values (the
// same Experiment), the Simulation assembly (the adjoint's forward model named by the registry),
// and the scoped per-run thread count (no process-wide OpenMP setting changes).
#include <omp.h>

#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "models/adjoint.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/threads.hpp"
#include "outputs/trajectory_writer.hpp"
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

TEST_CASE("HDF5's metadata checksum: Jenkins' lookup3, as libhdf5 computes it") {
  // Oracle: H5_checksum_metadata of libhdf5 1.10 (called through ctypes) on the same bytes.
  const auto sum = [](std::string_view text) {
    return hdf5_metadata_checksum(reinterpret_cast<const unsigned char*>(text.data()), text.size());
  };
  CHECK(sum("") == 0xdeadbeefU);
  CHECK(sum("a") == 0x58d68708U);
  CHECK(sum("abcdefghijkl") == 0x4012f87bU);   // one whole block, no tail
  CHECK(sum("abcdefghijklm") == 0x928128f9U);  // a block and one byte
  CHECK(sum("Four score and seven years ago") == 0x17770551U);
}

TEST_CASE("a run kept in memory writes nothing to disk and leaves an image that HDF5 opens") {
  TempDir dir;
  const std::string file = (dir.path() / "run.h5").string();
  Experiment ex = experiment_from_text(chain, (dir.path() / "chain.toml").string(),
                                       {"output.file=\"" + file + "\""});
  RunOptions options;
  options.in_memory = true;
  options.threads = 1;
  Run run(std::move(ex), options);
  const RunReport report = run.execute();
  CHECK(report.result.outcome == Outcome::success);
  CHECK(report.output_path.empty());
  CHECK(report.samples == 13);  // t = 0, 0.25, …, 3
  CHECK(std::filesystem::is_empty(dir.path()));  // not output.file, not a checkpoint
  REQUIRE(report.image.size() > 48);
  CHECK(std::string(report.image.begin(), report.image.begin() + 8) == "\x89HDF\r\n\x1a\n");
  // HDF5 verifies the superblock's checksum when it opens the image.
  const std::string copy = (dir.path() / "image.h5").string();
  {
    std::ofstream out(copy, std::ios::binary);
    out.write(reinterpret_cast<const char*>(report.image.data()),
              static_cast<std::streamsize>(report.image.size()));
  }
  const hid_t opened = H5Fopen(copy.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  CHECK(opened >= 0);
  if (opened >= 0) {
    CHECK(H5Lexists(opened, "/adjoint", H5P_DEFAULT) > 0);  // written after the backward sweep
    H5Fclose(opened);
  }
  // A run in memory has no file to resume.
  RunOptions resume = options;
  resume.resume = true;
  CHECK_THROWS_AS(Run(experiment_from_text(chain, (dir.path() / "chain.toml").string(), {}), resume), InputError);
}
