#pragma once
// The dense matrix products of learnflow's models, compiled once per instruction set and chosen
// at run time: the baseline x86-64 build (SSE2) everywhere, and on x86-64 also x86-64-v3 (AVX2,
// FMA) and x86-64-v4 (AVX-512), each in its own shared library built from
// models/batch_kernels_impl.hpp with hidden symbols, so that Eigen's templates compiled for one
// instruction set never stand in for another's. The kernels differ in rounding (FMA, summation
// order), not in what they compute: results are the same bits for any thread count on one
// machine, and may differ in the last bits between machines whose CPUs get different kernels
// (`LEARNFLOW_KERNELS=baseline` makes any x86-64 machine compute the baseline's bits).
// Batches of one (matrix-vector products) come here too when the set in use is not the baseline
// (issue 11: the shipped binary gets the speed of -march=native); with the baseline set they run
// the matrix-vector code of models/projection_ops.cpp, whose bits are those of the reference
// files (tests/data/reference, compared under LEARNFLOW_KERNELS=baseline).
//
// This header is free of Eigen on purpose: the instruction-set libraries include it.
#include <cstddef>
#include <span>

namespace lf {

struct BatchKernels {
  const char* name;
  // out[n×B] += W[n×k] · X[k×B]; W row-major (row stride ldw), X and out column-major.
  void (*add_product)(const double* w, std::ptrdiff_t ldw, std::ptrdiff_t n, std::ptrdiff_t k,
                      const double* x, std::ptrdiff_t ldx, std::ptrdiff_t batch, double* out,
                      std::ptrdiff_t ldo);
  // out[n×B] += W[m×n]ᵀ · V[m×B]; W row-major (row stride ldw), V and out column-major.
  void (*add_transposed_product)(const double* w, std::ptrdiff_t ldw, std::ptrdiff_t m,
                                 std::ptrdiff_t n, const double* v, std::ptrdiff_t ldv,
                                 std::ptrdiff_t batch, double* out, std::ptrdiff_t ldo);
  // out[n×k] = scale · D[n×B] · X[k×B]ᵀ; out row-major and contiguous, D and X column-major.
  void (*outer_product)(const double* d, std::ptrdiff_t ldd, std::ptrdiff_t n, const double* x,
                        std::ptrdiff_t ldx, std::ptrdiff_t k, std::ptrdiff_t batch, double scale,
                        double* out);
};

// The kernel sets this build has and this CPU runs, baseline first.
std::span<const BatchKernels* const> batch_kernel_sets();

// The kernels in use, chosen on the first call: the set named by the environment variable
// LEARNFLOW_KERNELS (baseline, x86-64-v3, x86-64-v4) or else the widest this CPU runs. Throws
// InputError (exit status 2) naming the variable when it names a set this build or CPU lacks; call it
// before any parallel region (run_experiment does).
const BatchKernels& batch_kernels();

}  // namespace lf

// Exported by each instruction set's library (C linkage: one name per set, no Eigen types).
extern "C" const lf::BatchKernels* learnflow_batch_kernels_x86_64_v3();
extern "C" const lf::BatchKernels* learnflow_batch_kernels_x86_64_v4();
