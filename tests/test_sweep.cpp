// Sweep files (sim/sweep.hpp; issue 10): the points a sweep file expands to, their order and
// names, the values passed on exactly, and the errors that name the key. The runs themselves,
// the index, restarts and MPI are tested end to end by tests/python/test_sweep.py.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "sim/core/errors.hpp"
#include "sim/sweep.hpp"

using namespace lf;

namespace {

const std::string xor_base = std::string(LEARNFLOW_SOURCE_DIR) + "/examples/xor_costate.toml";

// Writes a sweep file of the XOR example with `table` as its [sweep] table; returns its path.
std::string sweep_file(const std::string& table, const std::string& name = "sweep.toml") {
  const auto dir = std::filesystem::temp_directory_path() / "learnflow_test_sweep";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path) << fmt::format("base = \"{}\"\n\n[sweep]\n{}\n", xor_base, table);
  return path;
}

std::string config_error_key(const std::string& table) {
  try {
    load_sweep(sweep_file(table));
  } catch (const ConfigError& e) {
    return e.key();
  }
  FAIL("no ConfigError thrown");
  return {};
}

}  // namespace

TEST_CASE("a grid with a zip expands in order: keys alphabetical, the last part fastest") {
  const Sweep s = load_sweep(sweep_file(
      "set = { \"integrator.t_end\" = 100.0 }\n"
      "grid = { \"network.seed\" = [1, 2], \"model.gamma\" = [4.0, 8.5] }\n"
      "zip = { \"input.present\" = [10.0, 20.0, 40.0], \"network.activation\" = [\"tanh\", \"relu\", \"logistic\"] }"));
  REQUIRE(s.points.size() == 2 * 2 * 3);
  CHECK(s.base == xor_base);
  CHECK(s.keys == std::vector<std::string>{"model.gamma", "network.seed", "input.present",
                                           "network.activation"});
  CHECK(s.points[0].name == "point-0000");
  CHECK(s.points[11].name == "point-0011");
  // point 7 = gamma index 1, seed index 0, zip row 1 (mixed radix 2, 2, 3)
  const SweepPoint& p = s.points[7];
  CHECK(p.overrides == std::vector<std::string>{"integrator.t_end=100.0", "model.gamma=8.5",
                                                "network.seed=1", "input.present=20.0",
                                                "network.activation='relu'"});
  CHECK(p.values[0].numeric);
  CHECK(p.values[0].number == 8.5);
  CHECK_FALSE(p.values[3].numeric);
  CHECK(p.values[3].label == "relu");
}

TEST_CASE("random samples: deterministic by seed, in range, and their text reads back exactly") {
  const std::string table =
      "random = { n = 50, seed = 3, \"model.gamma\" = { log_uniform = [0.01, 100.0] }, "
      "\"model.c\" = { uniform = [-1.0, 1.0] }, \"network.seed\" = { int_uniform = [5, 7] }, "
      "\"network.activation\" = { choice = [\"tanh\", \"relu\"] } }";
  const Sweep a = load_sweep(sweep_file(table));
  const Sweep b = load_sweep(sweep_file(table, "copy.toml"));
  REQUIRE(a.points.size() == 50);
  std::set<double> seeds, gammas;
  std::set<std::string> activations;
  for (std::size_t i = 0; i < a.points.size(); ++i) {
    CHECK(a.points[i].overrides == b.points[i].overrides);
    // keys alphabetical: model.c, model.gamma, network.activation, network.seed
    const auto& v = a.points[i].values;
    CHECK(v[0].number >= -1.0);
    CHECK(v[0].number < 1.0);
    CHECK(v[1].number >= 0.01);
    CHECK(v[1].number < 100.0);
    CHECK(std::stod(v[1].toml) == v[1].number);  // shortest text, the same double
    CHECK(std::stod(v[0].toml) == v[0].number);
    activations.insert(v[2].label);
    seeds.insert(v[3].number);
    gammas.insert(v[1].number);
  }
  CHECK(activations == std::set<std::string>{"relu", "tanh"});
  CHECK(seeds == std::set<double>{5, 6, 7});
  CHECK(gammas.size() == 50);
  const Sweep other = load_sweep(sweep_file(
      std::string(table).replace(table.find("seed = 3"), 8, "seed = 4"), "other.toml"));
  CHECK(other.points[0].values[1].number != a.points[0].values[1].number);
}

TEST_CASE("a malformed sweep table is a ConfigError naming the key") {
  CHECK(config_error_key("zip = { \"model.gamma\" = [1.0, 2.0], \"network.seed\" = [1] }") ==
        "sweep.zip.network.seed");
  CHECK(config_error_key("grid = { \"model.gamma\" = [] }") == "sweep.grid.model.gamma");
  CHECK(config_error_key("random = { n = 2, \"model.c\" = { log_uniform = [0.0, 1.0] } }") ==
        "sweep.random.model.c");
  CHECK(config_error_key("random = { n = 0, \"model.c\" = { uniform = [0.0, 1.0] } }") ==
        "sweep.random.n");
  CHECK(config_error_key("gird = { \"model.gamma\" = [1.0] }") == "sweep.gird");
  CHECK(config_error_key("grid = { \"model.gamma\" = [1.0] }\nzip = { \"model.gamma\" = [2.0] }") ==
        "sweep");
  CHECK(config_error_key("set = { \"model.gamma\" = 1.0 }\ngrid = { \"model.gamma\" = [2.0] }") ==
        "sweep");
}

TEST_CASE("validate_sweep names the swept key and the point of a bad value") {
  const Sweep s = load_sweep(sweep_file("grid = { \"model.gamma\" = [8.0, -1.0] }"));
  try {
    validate_sweep(s);
    FAIL("no ConfigError thrown");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "model.gamma");
    CHECK(e.where() == s.file + ":4");
    CHECK(std::string(e.what()).find("point-0001") != std::string::npos);
  }
  const Sweep good = load_sweep(sweep_file("grid = { \"model.gamma\" = [8.0, 16.0] }"));
  const SweepCheck check = validate_sweep(good);
  CHECK(check.fingerprints.size() == 2);
  CHECK(check.fingerprints[0] != check.fingerprints[1]);
  CHECK(check.bytes > 0);
}

TEST_CASE("a point record reads back as written") {
  const auto path = (std::filesystem::temp_directory_path() / "learnflow_test_point.done").string();
  write_point_record(path, PointRecord{3, 1.25, 1, "node-7"});
  const PointRecord r = read_point_record(path);
  CHECK(r.status == 3);
  CHECK(r.wall_seconds == 1.25);
  CHECK(r.rank == 1);
  CHECK(r.host == "node-7");
  std::ofstream(path) << "status 0\n";
  CHECK_THROWS_AS(read_point_record(path), DataFileError);
  std::filesystem::remove(path);
}
