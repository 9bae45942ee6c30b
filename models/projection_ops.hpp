#pragma once
// Products with a projection's weights, whether they live in the network (fixed) or in the state
// (plastic), dense (row-major) or CSR, acting on a batch: an n×B matrix holds one column per
// example (B = 1: a vector). Every function touches only the rows (or columns) it is given, so
// that callers can split work into fixed chunks, independent of the thread count. With B = 1 each
// performs exactly the matrix-vector operations of the unbatched code (same kernels, same bits);
// with B > 1, matrix-matrix products (each column equal to the B = 1 result up to rounding).
#include <Eigen/Core>

#include <span>
#include <vector>

#include "sim/core/model.hpp"
#include "sim/core/network.hpp"

namespace lf {

// The current weights of one projection: `values` points to rows·cols doubles (dense, row-major)
// or to the nnz values of the network's CSR structure (sparse).
struct WeightView {
  const Projection* projection;
  const double* values;

  Eigen::Map<const RowMatrix> dense() const {
    return {values, projection->rows(), projection->cols()};
  }
  Eigen::Map<const SparseRowMatrix> sparse() const {
    const SparseRowMatrix& s = projection->csr;
    return {s.rows(), s.cols(), s.nonZeros(), s.outerIndexPtr(), s.innerIndexPtr(), values};
  }
  Eigen::Index size() const {
    return projection->sparse ? projection->csr.nonZeros() : projection->dense.size();
  }
};

// The network's own (initial) weights of projection k.
WeightView network_weights(const Network& net, std::size_t k);

// out += W[rows r0 .. r0+n) · X          X: cols×B, out: n×B
void add_rows_times(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                    const Eigen::Ref<const Eigen::MatrixXd>& x, Eigen::Ref<Eigen::MatrixXd> out);

// out += (W[:, columns c0 .. c0+n))ᵀ · V   V: rows×B, out: n×B
void add_columns_transposed_times(const WeightView& w, Eigen::Index c0, Eigen::Index n,
                                  const Eigen::Ref<const Eigen::MatrixXd>& v,
                                  Eigen::Ref<Eigen::MatrixXd> out);

// Rows r0 .. r0+n of the batch mean of the outer products, (1/B) Σ_b δ_b x_bᵀ (δ: rows×B, x:
// cols×B), restricted to the projection's structure (all entries when dense, the stored ones
// when sparse), written to `out` in the layout of `values` (out points to the first value of row
// r0), as scale·(mean δ xᵀ) − decay·W.
void outer_rows(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                const Eigen::Ref<const Eigen::MatrixXd>& delta,
                const Eigen::Ref<const Eigen::MatrixXd>& x, double scale, double decay, double* out);

// Offset of row r's first value in the layout of `values`.
Eigen::Index row_offset(const Projection& p, Eigen::Index r);

// The learned parameters of a network in its own conventions: "W/<projection>" [rows, cols] (dense,
// also for sparse projections) and "b/<population>" [n] for every non-input population.
std::vector<ParameterArray> network_parameters(const Network& net, std::span<const WeightView> w,
                                               std::span<const Eigen::VectorXd> b);

}  // namespace lf
