#include "models/projection_ops.hpp"

#include "models/batch_kernels.hpp"

#include <string_view>

namespace lf {
namespace {

using Vector = Eigen::Map<Eigen::VectorXd>;
using ConstVector = Eigen::Map<const Eigen::VectorXd>;

// Column 0 of a batch of one, as a vector: the B = 1 paths below are the matrix-vector code.
ConstVector column(const Eigen::Ref<const Eigen::MatrixXd>& m) { return {m.data(), m.rows()}; }
Vector column(Eigen::Ref<Eigen::MatrixXd>& m) { return {m.data(), m.rows()}; }

// Whether a batch of one (a dense matrix-vector product) takes the kernels of the CPU's
// instruction set: when they are not the baseline's. With the baseline set (any CPU with
// LEARNFLOW_KERNELS=baseline) B = 1 runs the matrix-vector code below, whose bits are those of
// learnflow before the kernels were dispatched (tests/data/reference).
bool vector_by_kernels() {
  static const bool dispatched = std::string_view(batch_kernels().name) != "baseline";
  return dispatched;
}

}  // namespace

WeightView network_weights(const Network& net, std::size_t k) {
  const Projection& p = net.projections[k];
  return {&p, p.sparse ? p.csr.valuePtr() : p.dense.data()};
}

void add_rows_times(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                    const Eigen::Ref<const Eigen::MatrixXd>& x, Eigen::Ref<Eigen::MatrixXd> out) {
  if (x.cols() == 1 && (w.projection->sparse || !vector_by_kernels())) {
    Vector o = column(out);
    if (w.projection->sparse) {
      o.noalias() += w.sparse().middleRows(r0, n) * column(x);
    } else {
      o.noalias() += w.dense().middleRows(r0, n) * column(x);
    }
    return;
  }
  if (w.projection->sparse) {
    out.noalias() += w.sparse().middleRows(r0, n) * x;
  } else {
    const Eigen::Index cols = w.projection->cols();
    batch_kernels().add_product(w.values + r0 * cols, cols, n, cols, x.data(), x.outerStride(),
                                x.cols(), out.data(), out.outerStride());
  }
}

void add_columns_transposed_times(const WeightView& w, Eigen::Index c0, Eigen::Index n,
                                  const Eigen::Ref<const Eigen::MatrixXd>& v,
                                  Eigen::Ref<Eigen::MatrixXd> out) {
  if (w.projection->sparse) {
    // CSR has no column access: scan every row, keeping the entries in [c0, c0+n). The order of
    // additions into out(j, b) is the row order, whatever the chunking.
    const auto s = w.sparse();
    for (Eigen::Index b = 0; b < v.cols(); ++b) {
      for (Eigen::Index r = 0; r < s.outerSize(); ++r) {
        for (Eigen::Map<const SparseRowMatrix>::InnerIterator it(s, r); it; ++it) {
          const Eigen::Index j = it.col() - c0;
          if (j >= 0 && j < n) out(j, b) += it.value() * v(r, b);
        }
      }
    }
    return;
  }
  if (v.cols() == 1 && !vector_by_kernels()) {
    Vector o = column(out);
    o.noalias() += w.dense().middleCols(c0, n).transpose() * column(v);
    return;
  }
  const Eigen::Index cols = w.projection->cols();
  batch_kernels().add_transposed_product(w.values + c0, cols, w.projection->rows(), n, v.data(),
                                         v.outerStride(), v.cols(), out.data(), out.outerStride());
}

Eigen::Index row_offset(const Projection& p, Eigen::Index r) {
  return p.sparse ? p.csr.outerIndexPtr()[r] : r * p.dense.cols();
}

void outer_rows(const WeightView& w, Eigen::Index r0, Eigen::Index n,
                const Eigen::Ref<const Eigen::MatrixXd>& delta,
                const Eigen::Ref<const Eigen::MatrixXd>& x, double scale, double decay, double* out) {
  const Projection& p = *w.projection;
  const Eigen::Index examples = delta.cols();
  if (p.sparse) {
    const int* outer = p.csr.outerIndexPtr();
    const int* inner = p.csr.innerIndexPtr();
    if (examples == 1) {
      const ConstVector d = column(delta), xs = column(x);
      for (Eigen::Index r = r0; r < r0 + n; ++r) {
        for (int k = outer[r]; k < outer[r + 1]; ++k) {
          out[k - outer[r0]] = scale * d[r] * xs[inner[k]] - decay * w.values[k];
        }
      }
      return;
    }
    const double mean_scale = scale / static_cast<double>(examples);
    for (Eigen::Index r = r0; r < r0 + n; ++r) {
      for (int k = outer[r]; k < outer[r + 1]; ++k) {
        double sum = 0.0;
        for (Eigen::Index b = 0; b < examples; ++b) sum += delta(r, b) * x(inner[k], b);
        out[k - outer[r0]] = mean_scale * sum - decay * w.values[k];
      }
    }
    return;
  }
  const Eigen::Index cols = p.dense.cols();
  Eigen::Map<RowMatrix> block(out, n, cols);
  if (examples == 1 && !vector_by_kernels()) {
    block.noalias() = scale * column(delta).segment(r0, n) * column(x).transpose();
  } else {
    batch_kernels().outer_product(delta.data() + r0, delta.outerStride(), n, x.data(),
                                  x.outerStride(), cols, examples,
                                  scale / static_cast<double>(examples), out);
  }
  if (decay != 0.0) block -= decay * w.dense().middleRows(r0, n);
}

std::vector<ParameterArray> network_parameters(const Network& net, std::span<const WeightView> w,
                                               std::span<const Eigen::VectorXd> b) {
  std::vector<ParameterArray> out;
  for (std::size_t k = 0; k < net.projections.size(); ++k) {
    const Projection& q = net.projections[k];
    const RowMatrix dense = q.sparse ? RowMatrix(w[k].sparse()) : RowMatrix(w[k].dense());
    out.push_back({"W/" + q.name, {q.rows(), q.cols()},
                   std::vector<double>(dense.data(), dense.data() + dense.size())});
  }
  for (std::size_t p = 0; p < net.populations.size(); ++p) {
    if (net.populations[p].role == Role::input) continue;
    out.push_back({"b/" + net.populations[p].name, {b[p].size()},
                   std::vector<double>(b[p].data(), b[p].data() + b[p].size())});
  }
  return out;
}

}  // namespace lf
