// The batched products of every instruction set this build has and this CPU runs
// (models/batch_kernels.hpp) against sums taken in long double, on odd sizes and strided blocks.
#include <doctest/doctest.h>

#include <Eigen/Core>

#include <cmath>
#include <string>

#include "models/batch_kernels.hpp"
#include "sim/core/network.hpp"

namespace lf {
namespace {

// Largest |a − b| over the largest |b|: the error of a product relative to its scale.
double relative_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

TEST_CASE("every batched-product kernel set computes the products of the long-double oracle") {
  // A batch of one too: on CPUs with a wider set than the baseline, B = 1 runs these kernels.
  for (const Eigen::Index batch : {Eigen::Index{5}, Eigen::Index{1}}) {
    CAPTURE(batch);
    Eigen::Index n = 37, k = 131;
    RowMatrix w = RowMatrix::Random(n + 3, k + 4);   // a block of it: row stride k + 4
    Eigen::MatrixXd x = Eigen::MatrixXd::Random(k + 2, batch);  // column stride k + 2
    Eigen::MatrixXd v = Eigen::MatrixXd::Random(n + 3, batch);
    Eigen::MatrixXd d = Eigen::MatrixXd::Random(n + 1, batch);
    const Eigen::Index r0 = 2, c0 = 3;

    // Oracles: W[r0.., c0..] · X[0..k), W[:, c0..c0+n)ᵀ... in long double.
    Eigen::MatrixXd product(n, batch), transposed(k, batch), outer(n, k);
    for (Eigen::Index b = 0; b < batch; ++b) {
      for (Eigen::Index i = 0; i < n; ++i) {
        long double s = 1.0L;  // the products add to what is there: start from ones
        for (Eigen::Index j = 0; j < k; ++j) s += static_cast<long double>(w(r0 + i, c0 + j)) * x(j, b);
        product(i, b) = static_cast<double>(s);
      }
      for (Eigen::Index j = 0; j < k; ++j) {
        long double s = 1.0L;
        for (Eigen::Index i = 0; i < n + 3; ++i) s += static_cast<long double>(w(i, c0 + j)) * v(i, b);
        transposed(j, b) = static_cast<double>(s);
      }
    }
    const double scale = 0.3;
    for (Eigen::Index i = 0; i < n; ++i) {
      for (Eigen::Index j = 0; j < k; ++j) {
        long double s = 0.0L;
        for (Eigen::Index b = 0; b < batch; ++b) s += static_cast<long double>(d(1 + i, b)) * x(j, b);
        outer(i, j) = static_cast<double>(scale * s);
      }
    }

    const auto sets = batch_kernel_sets();
    REQUIRE(!sets.empty());
    CHECK(std::string(sets.front()->name) == "baseline");
    for (const BatchKernels* set : sets) {
      CAPTURE(set->name);
      Eigen::MatrixXd out = Eigen::MatrixXd::Ones(n + 2, batch);  // rows [0, n): column stride n + 2
      set->add_product(&w(r0, c0), w.cols(), n, k, x.data(), x.rows(), batch, out.data(), out.rows());
      CHECK(relative_error(out.topRows(n), product) < 1e-14);
      CHECK((out.bottomRows(2).array() == 1.0).all());  // rows outside the block untouched

      Eigen::MatrixXd out_t = Eigen::MatrixXd::Ones(k, batch);
      set->add_transposed_product(&w(0, c0), w.cols(), n + 3, k, v.data(), v.rows(), batch,
                                  out_t.data(), out_t.rows());
      CHECK(relative_error(out_t, transposed) < 1e-14);

      RowMatrix out_o(n, k);
      set->outer_product(d.data() + 1, d.rows(), n, x.data(), x.rows(), k, batch, scale, out_o.data());
      CHECK(relative_error(out_o, outer) < 1e-14);
    }
  }
  // The set in use is one of them, and the same on every call.
  const BatchKernels& chosen = batch_kernels();
  CHECK(&chosen == &batch_kernels());
  bool listed = false;
  for (const BatchKernels* set : batch_kernel_sets()) listed = listed || set == &chosen;
  CHECK(listed);
}

}  // namespace
}  // namespace lf
