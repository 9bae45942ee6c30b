#pragma once
// The progress line on stderr: simulated time, step size, steps and an ETA from the rate of
// simulated time per wall second, redrawn at most every 0.2 s of wall time.
#include <chrono>
#include <cstdio>

#include "sim/core/outcome.hpp"

namespace lf {

class ProgressLine {
 public:
  ProgressLine(std::FILE* stream, double t0, double t_end);
  void update(double t, double dt, const SolverStats& stats);
  void finish();  // ends the line

 private:
  std::FILE* stream_;
  double t0_, t_end_;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
};

}  // namespace lf
