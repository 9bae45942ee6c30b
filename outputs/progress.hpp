#pragma once
// The progress line on stderr: simulated time, step size, steps and an ETA from the rate of
// simulated time per wall second, redrawn at most every 0.2 s of wall time.
#include <chrono>
#include <cstdio>
#include <string>

#include "sim/core/outcome.hpp"

namespace lf {

class ProgressLine {
 public:
  ProgressLine(std::FILE* stream, double t0, double t_end);
  void update(double t, double dt, const SolverStats& stats);
  // Text drawn after the numbers (a training run: epoch, minibatch, last test accuracy).
  void set_status(std::string status) { status_ = std::move(status); }
  void finish();  // ends the line

 private:
  std::FILE* stream_;
  double t0_, t_end_;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
  std::string status_;
};

}  // namespace lf
