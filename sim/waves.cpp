#include "sim/waves.hpp"

#include <algorithm>
#include <cmath>

namespace lf {

std::optional<double> arrival_time(std::span<const double> time, std::span<const double> mean,
                                   double segment_begin, double segment_end) {
  const auto first = std::lower_bound(time.begin(), time.end(), segment_begin) - time.begin();
  const auto last = std::upper_bound(time.begin(), time.end(), segment_end) - time.begin();
  if (last - first < 2) return std::nullopt;
  for (auto i = first; i < last; ++i) {
    if (!std::isfinite(mean[i])) return std::nullopt;
  }
  const double m0 = mean[first], m1 = mean[last - 1], change = m1 - m0;
  if (
      std::abs(change) <= 1e-9 * std::max({1.0, std::abs(m0), std::abs(m1)})) {
    return std::nullopt;
  }
  const double half = 0.5 * std::abs(change);
  for (auto i = first + 1; i < last; ++i) {
    const double dev = std::abs(mean[i] - m0);
    if (dev < half) continue;
    // Where does the segment from (t_{i-1}, m_{i-1}) to (t_i, m_i) reach |m − m0| = half?
    const double a = mean[i - 1] - m0, b = mean[i] - m0;
    const double target = b >= 0 ? half : -half;
    const double frac = b == a ? 1.0 : std::clamp((target - a) / (b - a), 0.0, 1.0);
    return time[i - 1] + frac * (time[i] - time[i - 1]);
  }
  return std::nullopt;
}

}  // namespace lf
