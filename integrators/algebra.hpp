#pragma once
// The vector algebra of learnflow's steppers: odeint's range-algebra interface over std::vector,
// with loops run in parallel by OpenMP when the state is long enough to repay a parallel region.
// Every operation is elementwise (and norm_inf is a max), so results do not depend on the thread
// count.
#include <boost/numeric/odeint/algebra/norm_result_type.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "sim/core/threads.hpp"

namespace lf {

struct ParallelAlgebra {
  // States shorter than this are processed by one thread.
  static constexpr std::ptrdiff_t parallel_min_size = 32768;

  template <class Op, class S0, class... S>
  static void apply(Op op, S0& s0, S&... s) {
    const auto n = static_cast<std::ptrdiff_t>(s0.size());
    // No OpenMP construct at all below the threshold: even an inactive parallel region costs a
    // futex call in libgomp, which dominates the step of a small network.
    if (n < parallel_min_size) {
      // A local copy of the operation: with `op` itself GCC 12 reloaded its coefficients in the
      // loop ("latch block not empty") and did not vectorise it (dense output took ~20% of a
      // run sampled at every 0.01). Elementwise either way, so the bits are the same.
      Op f = op;
      for (std::ptrdiff_t i = 0; i < n; ++i) f(s0[i], s[i]...);
      return;
    }
#pragma omp parallel for schedule(static) num_threads(thread_count())
    for (std::ptrdiff_t i = 0; i < n; ++i) op(s0[i], s[i]...);
  }

  template <class S0, class Op>
  static void for_each1(S0& s0, Op op) { apply(op, s0); }
  template <class S0, class S1, class Op>
  static void for_each2(S0& s0, S1& s1, Op op) { apply(op, s0, s1); }
  template <class S0, class S1, class S2, class Op>
  static void for_each3(S0& s0, S1& s1, S2& s2, Op op) { apply(op, s0, s1, s2); }
  template <class S0, class S1, class S2, class S3, class Op>
  static void for_each4(S0& s0, S1& s1, S2& s2, S3& s3, Op op) { apply(op, s0, s1, s2, s3); }
  template <class S0, class S1, class S2, class S3, class S4, class Op>
  static void for_each5(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, Op op) { apply(op, s0, s1, s2, s3, s4); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class Op>
  static void for_each6(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, Op op) { apply(op, s0, s1, s2, s3, s4, s5); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class Op>
  static void for_each7(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class Op>
  static void for_each8(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class S8, class Op>
  static void for_each9(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, S8& s8, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7, s8); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class S8, class S9, class Op>
  static void for_each10(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, S8& s8, S9& s9, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class S8, class S9, class S10, class Op>
  static void for_each11(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, S8& s8, S9& s9, S10& s10, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class S8, class S9, class S10, class S11, class Op>
  static void for_each12(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, S8& s8, S9& s9, S10& s10, S11& s11, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class S8, class S9, class S10, class S11, class S12, class Op>
  static void for_each13(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, S8& s8, S9& s9, S10& s10, S11& s11, S12& s12, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class S8, class S9, class S10, class S11, class S12, class S13, class Op>
  static void for_each14(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, S8& s8, S9& s9, S10& s10, S11& s11, S12& s12, S13& s13, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13); }
  template <class S0, class S1, class S2, class S3, class S4, class S5, class S6, class S7, class S8, class S9, class S10, class S11, class S12, class S13, class S14, class Op>
  static void for_each15(S0& s0, S1& s1, S2& s2, S3& s3, S4& s4, S5& s5, S6& s6, S7& s7, S8& s8, S9& s9, S10& s10, S11& s11, S12& s12, S13& s13, S14& s14, Op op) { apply(op, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14); }

  template <class S>
  static typename boost::numeric::odeint::norm_result_type<S>::type norm_inf(const S& s) {
    double result = 0.0;
    for (const double v : s) result = std::max(result, std::abs(v));
    return result;
  }
};

}  // namespace lf
