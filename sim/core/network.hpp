#pragma once
// A network (DESIGN §2): populations of neurons joined by weight projections on any directed
// graph, self-projections included. Weights are stored row-major (rows = target neurons), dense
// or CSR; biases per population. This is the initial parameter set of a run.
#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "sim/core/activation.hpp"
#include "sim/core/layout.hpp"

namespace lf {

// ---- The description of a network, as read from a config (plain data) ----

enum class Role { input, hidden, output };

// How the weights (and biases) of projections are initialised, seeded by network.seed.
struct InitSpec {
  std::string weights = "normal";  // normal | uniform | orthogonal | zeros | file
  double scale = 1.0;              // normal: N(0, scale²/fan_in); uniform: same variance
  std::string bias = "zeros";      // zeros | normal (N(0, bias_scale²)) | file
  double bias_scale = 1.0;
  std::string file;                // HDF5 file with /parameters/W/<proj>, /parameters/b/<pop>
  std::string which = "initial";   // "initial" (/parameters/W …) or "final" (/parameters/final/W …)
};

struct PopulationSpec {
  std::string name;
  long size = 0;
  Role role = Role::hidden;
  Activation activation = Activation::tanh;
};

struct EdgeSpec {
  long src = 0;  // neuron index in the source population
  long dst = 0;  // neuron index in the target population
  double weight = std::numeric_limits<double>::quiet_NaN();  // NaN: drawn from the init scheme
  std::string where;  // "file:line" of the edge, for messages
};

struct ProjectionSpec {
  std::string name;
  std::string from;
  std::string to;
  bool plastic = false;
  bool sparse = false;           // true when given as an edge list (CSR storage)
  std::vector<EdgeSpec> edges;
  std::string weights_csv;       // dense weight matrix from CSV (rows = targets), optional
  std::string key;               // config key of this projection, for messages
  // An undirected connection (energy-based models such as eqprop): with a reverse projection
  // (to → from, also symmetric) the two share one weight array, W_reverse = Wᵀ; on a
  // self-projection W = Wᵀ with a zero diagonal. The layered shorthand marks its projections
  // symmetric with an implied reverse (one undirected connection per pair of layers).
  bool symmetric = false;
};

struct NetworkSpec {
  std::vector<PopulationSpec> populations;
  std::vector<ProjectionSpec> projections;
  InitSpec init;
  std::uint64_t seed = 1;
};

// Initial parameters read from a file (network.init.file): any learnflow run file's
// /parameters/W/<projection> and /parameters/b/<population>.
struct ParameterFile {
  std::map<std::string, RowMatrix> weights;
  std::map<std::string, Eigen::VectorXd> biases;
  std::string group = "/parameters";  // where they were read ("/parameters/final"), for messages
};

// ---- The network a run simulates ----

using SparseRowMatrix = Eigen::SparseMatrix<double, Eigen::RowMajor, int>;

struct Population {
  std::string name;
  Eigen::Index size = 0;
  Role role = Role::hidden;
  Activation activation = Activation::tanh;
};

struct Projection {
  std::string name;
  std::size_t from = 0;  // index of the source population
  std::size_t to = 0;    // index of the target population
  bool plastic = false;
  bool sparse = false;
  RowMatrix dense;         // when !sparse: to.size × from.size
  SparseRowMatrix csr;     // when sparse
  bool symmetric = false;  // ProjectionSpec::symmetric
  std::ptrdiff_t reverse = -1;  // a symmetric pair: the index of the other projection (else −1)
  std::string key;         // its config key ("network.projection[2]", "network.layers"), for messages

  Eigen::Index rows() const { return sparse ? csr.rows() : dense.rows(); }
  Eigen::Index cols() const { return sparse ? csr.cols() : dense.cols(); }
};

struct Network {
  std::vector<Population> populations;
  std::vector<Projection> projections;
  std::vector<Eigen::VectorXd> bias;  // one per population (zero for inputs)
  std::uint64_t seed = 1;             // network.seed: models draw further streams from it

  std::size_t population_index(const std::string& name) const;
  // Projections whose target is population p, in declaration order.
  std::vector<std::size_t> incoming(std::size_t p) const;
};

// Builds the network of a spec: draws (seeded) the initial weights and biases, or takes them from
// `file` (read by the caller when spec.init asks for a file). Throws InputError for bad edges, CSV
// files, or parameters of the wrong shape.
Network build_network(const NetworkSpec& spec, const ParameterFile& file);

// Role names as written in configs and files.
const char* role_name(Role r);

}  // namespace lf
