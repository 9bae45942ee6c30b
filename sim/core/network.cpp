#include "sim/core/network.hpp"

#include <fmt/format.h>

#include <Eigen/QR>
#include <cassert>
#include <cmath>

#include "sim/core/csv.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/random.hpp"

namespace lf {
namespace {

// Draws one weight of a projection with `fan_in` inputs from the scheme's distribution.
double draw_weight(const InitSpec& init, Random& rng, Eigen::Index fan_in) {
  const double sd = init.scale / std::sqrt(static_cast<double>(std::max<Eigen::Index>(fan_in, 1)));
  if (init.weights == "normal") return sd * rng.normal();
  if (init.weights == "uniform") return rng.uniform(-std::sqrt(3.0) * sd, std::sqrt(3.0) * sd);
  return 0.0;  // zeros
}

// A (rows × cols) matrix with orthonormal rows or columns, times `scale`: Q of the QR
// decomposition of a Gaussian matrix, with column signs fixed by diag(R) so it is unique.
RowMatrix orthogonal(Eigen::Index rows, Eigen::Index cols, double scale, Random& rng) {
  const Eigen::Index n = std::max(rows, cols), k = std::min(rows, cols);
  Eigen::MatrixXd g(n, k);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < k; ++j) g(i, j) = rng.normal();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(n, k);
  const Eigen::MatrixXd r = qr.matrixQR().topRows(k).triangularView<Eigen::Upper>();
  for (Eigen::Index j = 0; j < k; ++j) {
    if (r(j, j) < 0) q.col(j) = -q.col(j);
  }
  RowMatrix w = rows >= cols ? RowMatrix(q) : RowMatrix(q.transpose());
  return scale * w;
}

void check_shape(const std::string& what, const std::string& file, Eigen::Index rows,
                 Eigen::Index cols, Eigen::Index want_rows, Eigen::Index want_cols) {
  if (rows != want_rows || cols != want_cols) {
    throw DataFileError(file, 0, fmt::format("{}: {} has shape {}x{}, the network needs {}x{}",
                                             file, what, rows, cols, want_rows, want_cols));
  }
}

// Parameters read from network.init.file must be finite: a NaN weight used to start the run
// (issue 8). Names the dataset and the element.
void check_finite(const std::string& what, const std::string& file, const RowMatrix& values) {
  for (Eigen::Index i = 0; i < values.rows(); ++i) {
    for (Eigen::Index j = 0; j < values.cols(); ++j) {
      if (!std::isfinite(values(i, j))) {
        throw DataFileError(file, 0, fmt::format("{}: {}[{}, {}] is {} (parameters must be finite)",
                                                 file, what, i, j, values(i, j)));
      }
    }
  }
}

// Symmetric projections (ProjectionSpec::symmetric; the config checked that every one between two
// populations has exactly one symmetric reverse and that none is sparse): drawn weights are
// tied — the reverse of a pair takes the transpose of the projection declared first, and a
// self-projection is symmetrised, (W + Wᵀ)/√2 (the same variance off the diagonal), with a zero
// diagonal. Weights given explicitly (CSV, an init file) must already be so: else InputError
// naming the projection's key.
void tie_symmetric_weights(const NetworkSpec& spec, Network& net) {
  auto given = [&](std::size_t k) {
    return !spec.projections[k].weights_csv.empty() || spec.init.weights == "file";
  };
  for (std::size_t k = 0; k < net.projections.size(); ++k) {
    Projection& q = net.projections[k];
    if (!q.symmetric || q.sparse) continue;
    if (q.from == q.to) {
      if (given(k)) {
        const double asymmetry = (q.dense - q.dense.transpose()).cwiseAbs().maxCoeff();
        if (asymmetry != 0.0) {
          throw ConfigError(q.key + ".symmetric", "", fmt::format(
              "{}.symmetric: the given weights of projection '{}' are not symmetric (max |W - W^T| "
              "= {:g})", q.key, q.name, asymmetry));
        }
      } else {
        q.dense = RowMatrix((q.dense + q.dense.transpose()) / std::sqrt(2.0));
        q.dense.diagonal().setZero();
      }
      continue;
    }
    for (std::size_t r = k + 1; r < net.projections.size(); ++r) {
      Projection& back = net.projections[r];
      if (!back.symmetric || back.from != q.to || back.to != q.from) continue;
      q.reverse = static_cast<std::ptrdiff_t>(r);
      back.reverse = static_cast<std::ptrdiff_t>(k);
      if (given(r)) {
        const double asymmetry = (back.dense - q.dense.transpose()).cwiseAbs().maxCoeff();
        if (asymmetry != 0.0) {
          throw ConfigError(back.key + ".symmetric", "", fmt::format(
              "{}.symmetric: the given weights of projection '{}' are not the transpose of those "
              "of its reverse '{}' (max difference {:g})", back.key, back.name, q.name, asymmetry));
        }
      } else {
        back.dense = q.dense.transpose();
      }
    }
  }
}

}  // namespace

const char* role_name(Role r) {
  switch (r) {
    case Role::input: return "input";
    case Role::hidden: return "hidden";
    case Role::output: return "output";
  }
  return "?";
}

std::size_t Network::population_index(const std::string& name) const {
  for (std::size_t i = 0; i < populations.size(); ++i) {
    if (populations[i].name == name) return i;
  }
  assert(false && "unknown population");
  return populations.size();
}

std::vector<std::size_t> Network::incoming(std::size_t p) const {
  std::vector<std::size_t> in;
  for (std::size_t k = 0; k < projections.size(); ++k) {
    if (projections[k].to == p) in.push_back(k);
  }
  return in;
}

Network build_network(const NetworkSpec& spec, const ParameterFile& params) {
  Network net;
  net.seed = spec.seed;
  for (const auto& ps : spec.populations) {
    net.populations.push_back({ps.name, ps.size, ps.role, ps.activation});
  }
  for (std::size_t k = 0; k < spec.projections.size(); ++k) {
    const ProjectionSpec& ps = spec.projections[k];
    Projection proj;
    proj.name = ps.name;
    proj.from = net.population_index(ps.from);
    proj.to = net.population_index(ps.to);
    proj.plastic = ps.plastic;
    proj.sparse = ps.sparse;
    proj.symmetric = ps.symmetric;
    proj.key = ps.key;
    const Eigen::Index rows = net.populations[proj.to].size;
    const Eigen::Index cols = net.populations[proj.from].size;
    Random rng(derive_seed(spec.seed, k));  // one stream per projection

    if (ps.sparse) {
      std::vector<Eigen::Triplet<double, int>> triplets;
      std::vector<std::pair<long, long>> seen;
      Eigen::VectorXi fan_in = Eigen::VectorXi::Zero(rows);
      for (const EdgeSpec& e : ps.edges) {
        if (e.src >= cols || e.dst >= rows) {
          const bool bad_src = e.src >= cols;
          throw DataFileError(e.where, 0, fmt::format(
              "{}: edge {} -> {} of projection '{}': population '{}' has no neuron {} (size {})",
              e.where, e.src, e.dst, ps.name, bad_src ? ps.from : ps.to,
              bad_src ? e.src : e.dst, bad_src ? cols : rows));
        }
        fan_in[e.dst] += 1;
      }
      for (const EdgeSpec& e : ps.edges) {
        const double w = std::isnan(e.weight) ? draw_weight(spec.init, rng, fan_in[e.dst]) : e.weight;
        triplets.emplace_back(static_cast<int>(e.dst), static_cast<int>(e.src), w);
      }
      proj.csr.resize(rows, cols);
      // Duplicate edges are an input error, not a sum.
      proj.csr.setFromTriplets(triplets.begin(), triplets.end(), [&](double, double) -> double {
        throw DataFileError(ps.key, 0, fmt::format("{}: projection '{}' lists an edge twice",
                                                   ps.key, ps.name));
      });
      proj.csr.makeCompressed();
    } else if (!ps.weights_csv.empty()) {
      const CsvTable t = read_csv(ps.weights_csv, static_cast<std::size_t>(cols));
      check_shape("the weight matrix", ps.weights_csv, static_cast<Eigen::Index>(t.rows.size()),
                  cols, rows, cols);
      proj.dense.resize(rows, cols);
      for (Eigen::Index i = 0; i < rows; ++i)
        for (Eigen::Index j = 0; j < cols; ++j) proj.dense(i, j) = t.rows[i][j];
    } else if (spec.init.weights == "file") {
      const auto it = params.weights.find(ps.name);
      if (it == params.weights.end()) {
        throw DataFileError(spec.init.file, 0, fmt::format("{}: no dataset {}/W/{}",
                                                           spec.init.file, params.group, ps.name));
      }
      check_shape(params.group + "/W/" + ps.name, spec.init.file, it->second.rows(),
                  it->second.cols(), rows, cols);
      check_finite(params.group + "/W/" + ps.name, spec.init.file, it->second);
      proj.dense = it->second;
    } else if (spec.init.weights == "orthogonal") {
      proj.dense = orthogonal(rows, cols, spec.init.scale, rng);
    } else {
      proj.dense.resize(rows, cols);
      for (Eigen::Index i = 0; i < rows; ++i)
        for (Eigen::Index j = 0; j < cols; ++j) proj.dense(i, j) = draw_weight(spec.init, rng, cols);
    }
    net.projections.push_back(std::move(proj));
  }
  tie_symmetric_weights(spec, net);

  Random bias_rng(derive_seed(spec.seed, spec.projections.size()));
  for (const Population& pop : net.populations) {
    Eigen::VectorXd b = Eigen::VectorXd::Zero(pop.size);
    if (pop.role != Role::input && spec.init.bias == "normal") {
      for (Eigen::Index i = 0; i < pop.size; ++i) b[i] = spec.init.bias_scale * bias_rng.normal();
    } else if (pop.role != Role::input && spec.init.bias == "file") {
      const auto it = params.biases.find(pop.name);
      if (it == params.biases.end()) {
        throw DataFileError(spec.init.file, 0, fmt::format("{}: no dataset {}/b/{}",
                                                           spec.init.file, params.group, pop.name));
      }
      check_shape(params.group + "/b/" + pop.name, spec.init.file, it->second.size(), 1, pop.size, 1);
      for (Eigen::Index i = 0; i < pop.size; ++i) {
        if (!std::isfinite(it->second[i])) {
          throw DataFileError(spec.init.file, 0,
                              fmt::format("{}: {}/b/{}[{}] is {} (parameters must be finite)",
                                          spec.init.file, params.group, pop.name, i, it->second[i]));
        }
      }
      b = it->second;
    }
    net.bias.push_back(std::move(b));
  }
  return net;
}

}  // namespace lf
