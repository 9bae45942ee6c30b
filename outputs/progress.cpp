#include "outputs/progress.hpp"

#include "sim/core/diagnostics.hpp"

namespace lf {

ProgressLine::ProgressLine(std::FILE* stream, double t0, double t_end)
    : stream_(stream), t0_(t0), t_end_(t_end), start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void ProgressLine::update(double t, double dt, const SolverStats& stats) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double done = (t - t0_) / (t_end_ - t0_);
  const double eta = done > 0 ? elapsed * (1.0 - done) / done : 0.0;
  eprint(stream_, "\r  t = {:.6g} / {:.6g} ({:3.0f}%)  dt = {:.3g}  steps = {}  rejected = {}  "
         "ETA {:.1f} s{}{}   ", t, t_end_, 100.0 * done, dt, stats.steps, stats.rejected, eta,
         status_.empty() ? "" : "  ", status_);
  std::fflush(stream_);
  drawn_ = true;
}

void ProgressLine::finish() {
  if (drawn_) eprint(stream_, "\n");
  drawn_ = false;
}

}  // namespace lf
