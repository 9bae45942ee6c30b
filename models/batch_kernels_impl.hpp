#pragma once
// The bodies of the batched products (models/batch_kernels.hpp), compiled into the baseline
// library and, with other -march flags and hidden symbols, into one shared library per
// instruction set. Eigen's matrix products do the work; what differs is the code the compiler
// makes of them.
#include <Eigen/Core>

#include "models/batch_kernels.hpp"

namespace lf::batch_kernels_impl {
namespace {

using Stride = Eigen::OuterStride<>;
using ConstRowMap =
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Stride>;
using ConstColMap = Eigen::Map<const Eigen::MatrixXd, 0, Stride>;
using ColMap = Eigen::Map<Eigen::MatrixXd, 0, Stride>;
using RowMap = Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// Products this small (rows + depth + columns < 20: Eigen's EIGEN_GEMM_TO_COEFFBASED_THRESHOLD)
// Eigen computes coefficient by coefficient, with reductions that peel elements up to the packet
// alignment of the data. With the wider sets' 32- and 64-byte packets over 16-byte-aligned heap
// blocks that alignment, and so the summation order and the bits, changed from one allocation to
// the next: a resumed run differed from the uninterrupted one (gaitprop's metrics on 8-wide
// layers). The wider sets compute them here instead, in a fixed order; the baseline keeps
// Eigen's (16-byte packets: always aligned alike), whose bits the reference files hold.
#if defined(LEARNFLOW_KERNEL_ARCH)
constexpr bool fixed_order_small = true;
#else
constexpr bool fixed_order_small = false;
#endif
constexpr std::ptrdiff_t small_product = 20;

void add_product(const double* w, std::ptrdiff_t ldw, std::ptrdiff_t n, std::ptrdiff_t k,
                 const double* x, std::ptrdiff_t ldx, std::ptrdiff_t batch, double* out,
                 std::ptrdiff_t ldo) {
  if (fixed_order_small && k + n + batch < small_product) {
    for (std::ptrdiff_t b = 0; b < batch; ++b) {
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        double sum = 0.0;
        for (std::ptrdiff_t j = 0; j < k; ++j) sum += w[i * ldw + j] * x[b * ldx + j];
        out[b * ldo + i] += sum;
      }
    }
    return;
  }
  ColMap o(out, n, batch, Stride(ldo));
  o.noalias() += ConstRowMap(w, n, k, Stride(ldw)) * ConstColMap(x, k, batch, Stride(ldx));
}

void add_transposed_product(const double* w, std::ptrdiff_t ldw, std::ptrdiff_t m, std::ptrdiff_t n,
                            const double* v, std::ptrdiff_t ldv, std::ptrdiff_t batch, double* out,
                            std::ptrdiff_t ldo) {
  if (fixed_order_small && m + n + batch < small_product) {
    for (std::ptrdiff_t b = 0; b < batch; ++b) {
      for (std::ptrdiff_t j = 0; j < n; ++j) {
        double sum = 0.0;
        for (std::ptrdiff_t i = 0; i < m; ++i) sum += w[i * ldw + j] * v[b * ldv + i];
        out[b * ldo + j] += sum;
      }
    }
    return;
  }
  ColMap o(out, n, batch, Stride(ldo));
  o.noalias() +=
      ConstRowMap(w, m, n, Stride(ldw)).transpose() * ConstColMap(v, m, batch, Stride(ldv));
}

void outer_product(const double* d, std::ptrdiff_t ldd, std::ptrdiff_t n, const double* x,
                   std::ptrdiff_t ldx, std::ptrdiff_t k, std::ptrdiff_t batch, double scale,
                   double* out) {
  if (fixed_order_small && batch + n + k < small_product) {
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      for (std::ptrdiff_t j = 0; j < k; ++j) {
        double sum = 0.0;
        for (std::ptrdiff_t b = 0; b < batch; ++b) sum += d[b * ldd + i] * x[b * ldx + j];
        out[i * k + j] = scale * sum;
      }
    }
    return;
  }
  RowMap o(out, n, k);
  o.noalias() = scale * ConstColMap(d, n, batch, Stride(ldd)) *
                ConstColMap(x, k, batch, Stride(ldx)).transpose();
}

}  // namespace
}  // namespace lf::batch_kernels_impl

// The kernel set of the including translation unit, named NAME.
#define LEARNFLOW_BATCH_KERNEL_SET(NAME)                                                   \
  ::lf::BatchKernels {                                                                     \
    NAME, ::lf::batch_kernels_impl::add_product,                                           \
        ::lf::batch_kernels_impl::add_transposed_product,                                  \
        ::lf::batch_kernels_impl::outer_product                                            \
  }
