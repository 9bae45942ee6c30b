#pragma once
// The cubic Hermite interpolant within a step: the driver's state inside a step of a stepper
// without dense output, and the adjoint's λ inside a backward step of one (sim/adjoint_sweep.cpp).
#include <cstddef>

#include "sim/core/layout.hpp"  // State

namespace lf {

// The cubic Hermite interpolant at t of a step from (t0, x0, f0) to (t1, x1, f1).
inline void hermite(double t0, const State& x0, const State& f0, double t1, const State& x1,
                    const State& f1, double t, State& out) {
  const double h = t1 - t0, s = (t - t0) / h;
  const double h00 = (1 + 2 * s) * (1 - s) * (1 - s), h10 = s * (1 - s) * (1 - s);
  const double h01 = s * s * (3 - 2 * s), h11 = s * s * (s - 1);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = h00 * x0[i] + h10 * h * f0[i] + h01 * x1[i] + h11 * h * f1[i];
  }
}

}  // namespace lf
