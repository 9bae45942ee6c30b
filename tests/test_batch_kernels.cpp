// The batched products of every instruction set this build has and this CPU runs
// (models/batch_kernels.hpp) against sums taken in long double, on odd sizes and strided blocks.
#include <doctest/doctest.h>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

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

TEST_CASE("the kernels' bits do not depend on where the operands lie in memory") {
  // Small products too (rows + depth + batch < 20, where Eigen would take its coefficient-based
  // product, whose reductions peel to the packet alignment): the same operands copied to every
  // offset of a 64-byte line must give the same bits, or a resumed run (whose buffers lie
  // elsewhere) would differ from the uninterrupted one. Wider sets build without that product.
  struct Size { std::ptrdiff_t n, k, batch; };
  for (const BatchKernels* set : batch_kernel_sets()) {
    for (const Size z : {Size{8, 8, 1}, Size{5, 9, 2}, Size{3, 13, 1}, Size{16, 40, 1}}) {
      CAPTURE(set->name);
      CAPTURE(z.n);
      CAPTURE(z.k);
      CAPTURE(z.batch);
      const Eigen::MatrixXd w = Eigen::MatrixXd::Random(z.n, z.k);
      const Eigen::MatrixXd x = Eigen::MatrixXd::Random(z.k, z.batch);
      const Eigen::MatrixXd v = Eigen::MatrixXd::Random(z.n, z.batch);
      std::vector<double> first_product, first_transposed, first_outer;
      for (std::size_t shift = 0; shift < 8; ++shift) {
        // Row-major W, column-major X and V, each starting `shift` doubles into its buffer.
        std::vector<double> wb(shift + static_cast<std::size_t>(w.size())), xb(shift + static_cast<std::size_t>(x.size())),
            vb(shift + static_cast<std::size_t>(v.size()));
        for (std::ptrdiff_t i = 0; i < z.n; ++i) {
          for (std::ptrdiff_t j = 0; j < z.k; ++j) wb[shift + static_cast<std::size_t>(i * z.k + j)] = w(i, j);
        }
        std::copy(x.data(), x.data() + x.size(), xb.begin() + static_cast<std::ptrdiff_t>(shift));
        std::copy(v.data(), v.data() + v.size(), vb.begin() + static_cast<std::ptrdiff_t>(shift));
        std::vector<double> product(shift + static_cast<std::size_t>(z.n * z.batch), 0.5),
            transposed(shift + static_cast<std::size_t>(z.k * z.batch), 0.5),
            outer(shift + static_cast<std::size_t>(z.n * z.k));
        set->add_product(wb.data() + shift, z.k, z.n, z.k, xb.data() + shift, z.k, z.batch,
                         product.data() + shift, z.n);
        set->add_transposed_product(wb.data() + shift, z.k, z.n, z.k, vb.data() + shift, z.n, z.batch,
                                    transposed.data() + shift, z.k);
        set->outer_product(vb.data() + shift, z.n, z.n, xb.data() + shift, z.k, z.k, z.batch, 0.7,
                           outer.data() + shift);
        product.erase(product.begin(), product.begin() + static_cast<std::ptrdiff_t>(shift));
        transposed.erase(transposed.begin(), transposed.begin() + static_cast<std::ptrdiff_t>(shift));
        outer.erase(outer.begin(), outer.begin() + static_cast<std::ptrdiff_t>(shift));
        if (shift == 0) {
          first_product = product;
          first_transposed = transposed;
          first_outer = outer;
        } else {
          CAPTURE(shift);
          CHECK(product == first_product);
          CHECK(transposed == first_transposed);
          CHECK(outer == first_outer);
        }
      }
    }
  }
}

}  // namespace
}  // namespace lf
