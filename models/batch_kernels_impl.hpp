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

void add_product(const double* w, std::ptrdiff_t ldw, std::ptrdiff_t n, std::ptrdiff_t k,
                 const double* x, std::ptrdiff_t ldx, std::ptrdiff_t batch, double* out,
                 std::ptrdiff_t ldo) {
  ColMap o(out, n, batch, Stride(ldo));
  o.noalias() += ConstRowMap(w, n, k, Stride(ldw)) * ConstColMap(x, k, batch, Stride(ldx));
}

void add_transposed_product(const double* w, std::ptrdiff_t ldw, std::ptrdiff_t m, std::ptrdiff_t n,
                            const double* v, std::ptrdiff_t ldv, std::ptrdiff_t batch, double* out,
                            std::ptrdiff_t ldo) {
  ColMap o(out, n, batch, Stride(ldo));
  o.noalias() +=
      ConstRowMap(w, m, n, Stride(ldw)).transpose() * ConstColMap(v, m, batch, Stride(ldv));
}

void outer_product(const double* d, std::ptrdiff_t ldd, std::ptrdiff_t n, const double* x,
                   std::ptrdiff_t ldx, std::ptrdiff_t k, std::ptrdiff_t batch, double scale,
                   double* out) {
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
