#pragma once
// A network (DESIGN §2): populations of neurons joined by weight projections on any directed
// graph, self-projections included. Weights are stored row-major (rows = target neurons), dense
// or CSR; biases per population. This is the initial parameter set of a run.
#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <string>
#include <vector>

#include "sim/experiment.hpp"
#include "sim/layout.hpp"

namespace lf {

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

// Builds the network of a spec: draws (seeded) or reads the initial weights and biases.
// Throws InputError for bad edges, CSV or HDF5 initialisation files.
Network build_network(const NetworkSpec& spec);

// Role names as written in configs and files.
const char* role_name(Role r);

}  // namespace lf
