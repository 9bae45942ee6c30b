#include "sim/waves.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "outputs/h5file.hpp"

namespace lf {

namespace {
constexpr double flat_tolerance = 1e-9;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
}  // namespace

std::optional<double> half_change_time(std::span<const double> time, std::span<const double> d,
                                       double scale) {
  if (time.size() < 2 || d.size() != time.size()) return std::nullopt;
  for (const double v : d) {
    if (!std::isfinite(v)) return std::nullopt;
  }
  const double final_change = d.back() - d.front();
  if (std::abs(final_change) <= flat_tolerance * std::max(1.0, scale)) return std::nullopt;
  const double half = 0.5 * final_change;
  for (std::size_t i = 1; i < d.size(); ++i) {
    const double b = d[i] - d.front();
    if (half > 0 ? b < half : b > half) continue;
    // The segment from (t_{i-1}, a) to (t_i, b) reaches `half`.
    const double a = d[i - 1] - d.front();
    const double frac = b == a ? 1.0 : std::clamp((half - a) / (b - a), 0.0, 1.0);
    return time[i - 1] + frac * (time[i] - time[i - 1]);
  }
  return std::nullopt;  // not reached: the last value always reaches its own half
}

std::vector<double> example_arrivals(std::span<const double> time,
                                     const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                                                          Eigen::RowMajor>>& samples,
                                     Eigen::Index size) {
  const Eigen::Index rows = samples.rows();
  const Eigen::Index examples = size > 0 ? samples.cols() / size : 0;
  std::vector<double> arrivals(static_cast<std::size_t>(examples), nan);
  if (rows < 2 || static_cast<std::size_t>(rows) != time.size()) return arrivals;
  std::vector<double> d(static_cast<std::size_t>(rows));
  for (Eigen::Index v = 0; v < examples; ++v) {
    const auto columns = samples.middleCols(v * size, size);
    for (Eigen::Index r = 0; r < rows; ++r) d[r] = (columns.row(r) - columns.row(0)).norm();
    const double scale = std::max(columns.row(0).norm(), columns.row(rows - 1).norm());
    if (const auto h = half_change_time(time, d, scale)) arrivals[static_cast<std::size_t>(v)] = *h;
  }
  return arrivals;
}

double quantile_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) return nan;
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double frac = position - static_cast<double>(below);
  return sorted[below] + frac * (sorted[above] - sorted[below]);
}

WaveArrival wave_arrival(std::span<const double> time,
                         const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                                              Eigen::RowMajor>>& samples) {
  WaveArrival result{std::nullopt, {nan, nan, nan}};
  const Eigen::Index rows = samples.rows(), n = samples.cols();
  if (rows < 2 || static_cast<std::size_t>(rows) != time.size() || n == 0) return result;
  std::vector<double> d(static_cast<std::size_t>(rows));
  for (Eigen::Index r = 0; r < rows; ++r) d[r] = (samples.row(r) - samples.row(0)).norm();
  result.arrival = half_change_time(time, d, std::max(samples.row(0).norm(), samples.row(rows - 1).norm()));
  std::vector<double> halves;
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index r = 0; r < rows; ++r) d[r] = std::abs(samples(r, i) - samples(0, i));
    const double scale = std::max(std::abs(samples(0, i)), std::abs(samples(rows - 1, i)));
    if (const auto h = half_change_time(time, d, scale)) halves.push_back(*h);
  }
  std::sort(halves.begin(), halves.end());
  result.neuron_quartiles = {quantile_sorted(halves, 0.5), quantile_sorted(halves, 0.25),
                             quantile_sorted(halves, 0.75)};
  return result;
}

FrontFit front_speed(std::span<const double> depth, std::span<const double> delay) {
  const std::size_t n = std::min(depth.size(), delay.size());
  FrontFit fit{nan, nan, n};
  if (n < 2) return fit;
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += depth[i];
    my += delay[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sxx += (depth[i] - mx) * (depth[i] - mx);
    sxy += (depth[i] - mx) * (delay[i] - my);
    syy += (delay[i] - my) * (delay[i] - my);
  }
  if (sxx == 0.0) return fit;
  const double slope = sxy / sxx;  // time per layer
  fit.speed = slope == 0.0 ? std::numeric_limits<double>::infinity() : 1.0 / slope;
  if (syy > 0.0) fit.r2 = sxy * sxy / (sxx * syy);
  return fit;
}

double segment_start(const RunFileSummary& summary, std::size_t k) {
  if (summary.boundaries.size() >= 2 && k < summary.boundaries.size() - 1) return summary.boundaries[k];
  const auto it = summary.phases.find("start");
  return it != summary.phases.end() && k < it->second.size() ? it->second[k]
                                                              : std::numeric_limits<double>::quiet_NaN();
}

std::vector<FrontFit> stored_front_speeds(const RunFileSummary& summary, const std::string& kind) {
  std::vector<FrontFit> fits;
  if (summary.waves.empty()) return fits;
  const std::size_t segments = summary.waves.front().arrival.size();
  for (std::size_t k = 0; k < segments; ++k) {
    std::vector<double> depth, delay;
    for (const auto& w : summary.waves) {
      if (w.kind != kind || k >= w.arrival.size() || !std::isfinite(w.arrival[k])) continue;
      depth.push_back(static_cast<double>(w.depth));
      delay.push_back(w.arrival[k] - segment_start(summary, k));
    }
    fits.push_back(front_speed(depth, delay));
  }
  return fits;
}

}  // namespace lf
