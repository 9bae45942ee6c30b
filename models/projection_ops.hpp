#pragma once
// Products with a projection's weights, whether they live in the network (fixed) or in the state
// (plastic), dense (row-major) or CSR. Every function touches only the rows (or columns) it is
// given, so that callers can split work into fixed chunks, independent of the thread count.
#include <Eigen/Core>

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

// out += W[rows r0 .. r0+n) · x
void add_rows_times(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                    const Eigen::Ref<const Eigen::VectorXd>& x, Eigen::Ref<Eigen::VectorXd> out);

// out += (W[:, columns c0 .. c0+n))ᵀ · v
void add_columns_transposed_times(const WeightView& w, Eigen::Index c0, Eigen::Index n,
                                  const Eigen::Ref<const Eigen::VectorXd>& v,
                                  Eigen::Ref<Eigen::VectorXd> out);

// Rows r0 .. r0+n of the outer product δ xᵀ, restricted to the projection's structure (all
// entries when dense, the stored ones when sparse), written to `out` in the layout of `values`
// (out points to the first value of row r0), as scale·(δ xᵀ) − decay·W.
void outer_rows(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                const Eigen::Ref<const Eigen::VectorXd>& delta,
                const Eigen::Ref<const Eigen::VectorXd>& x, double scale, double decay, double* out);

// Offset of row r's first value in the layout of `values`.
Eigen::Index row_offset(const Projection& p, Eigen::Index r);

}  // namespace lf
