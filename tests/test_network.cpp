// Network construction: seeded initialisation schemes, graphs from edge lists and CSV files.
#include <Eigen/Dense>

#include "sim/core/errors.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

NetworkSpec layered(const std::string& scheme, double scale = 1.0) {
  NetworkSpec spec;
  spec.populations = {{"a", 40, Role::input, Activation::tanh},
                      {"b", 30, Role::hidden, Activation::tanh}};
  ProjectionSpec p;
  p.name = "ab";
  p.from = "a";
  p.to = "b";
  spec.projections = {p};
  spec.init.weights = scheme;
  spec.init.scale = scale;
  spec.seed = 42;
  return spec;
}

}  // namespace

TEST_CASE("initialisation is seeded and has the documented scale") {
  const Network n1 = build_network(layered("normal"));
  const Network n2 = build_network(layered("normal"));
  CHECK(n1.projections[0].dense == n2.projections[0].dense);  // same seed, same bits
  NetworkSpec other = layered("normal");
  other.seed = 43;
  CHECK(build_network(other).projections[0].dense != n1.projections[0].dense);

  // normal: variance scale²/fan_in; 1200 draws estimate it within ~3·sqrt(2/1200) ≈ 12%.
  const RowMatrix& w = n1.projections[0].dense;
  CHECK(w.squaredNorm() / w.size() == doctest::Approx(1.0 / 40).epsilon(0.12));
  const RowMatrix wu = build_network(layered("uniform")).projections[0].dense;
  CHECK(wu.squaredNorm() / wu.size() == doctest::Approx(1.0 / 40).epsilon(0.12));
  CHECK(wu.cwiseAbs().maxCoeff() <= std::sqrt(3.0 / 40));

  // orthogonal: rows orthonormal (30 ≤ 40), times the scale.
  const RowMatrix q = build_network(layered("orthogonal", 2.0)).projections[0].dense;
  CHECK((q * q.transpose() - 4.0 * Eigen::MatrixXd::Identity(30, 30)).norm() < 1e-12);
  CHECK(build_network(layered("zeros")).projections[0].dense.isZero(0.0));
}

TEST_CASE("graphs from CSV edge lists, with errors naming file and line") {
  TempDir dir;
  const std::string csv = dir.file("graph.csv", "src,dst,weight\n0,1,0.5\n# comment\n1,0,-0.25\n");
  const std::string toml = R"(
[network]
[[network.population]]
name = "h"
size = 2
[[network.projection]]
name = "hh"
from = "h"
to = "h"
edges = ")" + csv + R"("
[integrator]
t_end = 1.0
)";
  const Network net = build_network(experiment_from_toml(toml).network);
  const Projection& p = net.projections[0];
  REQUIRE(p.sparse);
  CHECK(p.csr.nonZeros() == 2);
  CHECK(p.csr.coeff(1, 0) == 0.5);
  CHECK(p.csr.coeff(0, 1) == -0.25);

  dir.file("graph.csv", "src,dst,weight\n0,1,0.5\n\n1,2,-0.25\n");
  try {
    build_network(experiment_from_toml(toml).network);
    FAIL("no error");
  } catch (const DataFileError& e) {
    CHECK(std::string(e.what()) == csv + ":4: edge 1 -> 2 of projection 'hh': population 'h' has "
                                         "no neuron 2 (size 2)");
  }
  dir.file("graph.csv", "0,1,0.5\n1,x,2\n");
  CHECK_THROWS_WITH_AS(experiment_from_toml(toml), (csv + ":2: field 2 is not a finite number: 'x'").c_str(),
                       DataFileError);
}
