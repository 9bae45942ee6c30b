#include "models/projection_ops.hpp"

namespace lf {

WeightView network_weights(const Network& net, std::size_t k) {
  const Projection& p = net.projections[k];
  return {&p, p.sparse ? p.csr.valuePtr() : p.dense.data()};
}

void add_rows_times(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                    const Eigen::Ref<const Eigen::VectorXd>& x, Eigen::Ref<Eigen::VectorXd> out) {
  if (w.projection->sparse) {
    out.noalias() += w.sparse().middleRows(r0, n) * x;
  } else {
    out.noalias() += w.dense().middleRows(r0, n) * x;
  }
}

void add_columns_transposed_times(const WeightView& w, Eigen::Index c0, Eigen::Index n,
                                  const Eigen::Ref<const Eigen::VectorXd>& v,
                                  Eigen::Ref<Eigen::VectorXd> out) {
  if (w.projection->sparse) {
    // CSR has no column access: scan every row, keeping the entries in [c0, c0+n). The order of
    // additions into out[j] is the row order, whatever the chunking.
    const auto s = w.sparse();
    for (Eigen::Index r = 0; r < s.outerSize(); ++r) {
      for (Eigen::Map<const SparseRowMatrix>::InnerIterator it(s, r); it; ++it) {
        const Eigen::Index j = it.col() - c0;
        if (j >= 0 && j < n) out[j] += it.value() * v[r];
      }
    }
  } else {
    out.noalias() += w.dense().middleCols(c0, n).transpose() * v;
  }
}

Eigen::Index row_offset(const Projection& p, Eigen::Index r) {
  return p.sparse ? p.csr.outerIndexPtr()[r] : r * p.dense.cols();
}

void outer_rows(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                const Eigen::Ref<const Eigen::VectorXd>& delta,
                const Eigen::Ref<const Eigen::VectorXd>& x, double scale, double decay, double* out) {
  const Projection& p = *w.projection;
  if (p.sparse) {
    const int* outer = p.csr.outerIndexPtr();
    const int* inner = p.csr.innerIndexPtr();
    for (Eigen::Index r = r0; r < r0 + n; ++r) {
      for (int k = outer[r]; k < outer[r + 1]; ++k) {
        out[k - outer[r0]] = scale * delta[r] * x[inner[k]] - decay * w.values[k];
      }
    }
  } else {
    const Eigen::Index cols = p.dense.cols();
    Eigen::Map<RowMatrix> block(out, n, cols);
    block.noalias() = scale * delta.segment(r0, n) * x.transpose();
    if (decay != 0.0) block -= decay * w.dense().middleRows(r0, n);
  }
}

}  // namespace lf
