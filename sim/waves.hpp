#pragma once
// Wave analytics: when does a population's activity arrive after an input switch? (issue 9)
//
// Arrival of a population in a segment that starts at t_s: the first time the norm of its change
// since the switch, d(t) = ‖x(t) − x(t_s)‖₂ (over all its neurons, and all examples of a batch),
// reaches half of d at the segment's last sample, linearly interpolated between samples. The
// norm, unlike the population's mean, cannot cancel: the arrivals of a layered network grow
// with depth. Undefined when there are fewer than 2 samples, a value is not finite, or the
// change is flat: d_end <= 1e-9·max(1, ‖x(t_s)‖, ‖x_end‖).
// Half-time of a neuron: the same with d_i(t) = |x_i(t) − x_i(t_s)|; a population reports the
// median and quartiles of its neurons' half-times (neurons with a flat change left out).
// tools/plot/waves.py implements the same definitions on the recorded samples.
#include <Eigen/Core>
#include <array>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lf {

struct RunFileSummary;  // outputs/h5file.hpp

// The first time the series d (d[0] at time[0] is the reference, normally 0) reaches half of
// its last value, given the flatness `scale` (d_end <= 1e-9·scale is flat).
std::optional<double> half_change_time(std::span<const double> time, std::span<const double> d,
                                       double scale);

// A population's wave in one segment, from `samples` (one row per sample time, the first row the
// state at the switch).
struct WaveArrival {
  std::optional<double> arrival;
  std::array<double, 3> neuron_quartiles;  // median, 25 % and 75 % of the half-times (NaN: none)
};
WaveArrival wave_arrival(std::span<const double> time,
                         const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                                              Eigen::RowMajor>>& samples);

// Per example of a per-example block (a node of a graph): the arrival of example v, the first time
// d_v(t) = ‖x_v(t) − x_v(t_s)‖₂ over its `size` values reaches half of d_v at the last sample
// (half_change_time, the population's definition restricted to one example). `samples` has one
// row per time and the examples side by side (columns v·size … v·size + size − 1). NaN where
// undefined.
std::vector<double> example_arrivals(std::span<const double> time,
                                     const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                                                          Eigen::RowMajor>>& samples,
                                     Eigen::Index size);

// The linear quantile (numpy's default) of sorted values, q in [0, 1].
double quantile_sorted(std::span<const double> sorted, double q);

// The wave front's speed: the least-squares line delay = a + depth / speed through the points
// (depth, delay) of the populations with an arrival. NaN speed with fewer than 2 points or no
// spread in depth; r2 the coefficient of determination (NaN when the delays do not vary).
struct FrontFit {
  double speed;  // layers per unit time (negative: the front moves towards lower depth)
  double r2;
  std::size_t points;
};
FrontFit front_speed(std::span<const double> depth, std::span<const double> delay);

// From a run file's stored arrivals (/waves): the start of measured segment k (the schedule's
// boundary, or /metrics/phase/start for segments that end on convergence), and per measured
// segment the front's fit of one kind ("x", "h", "lambda") over the populations with an arrival.
double segment_start(const RunFileSummary& summary, std::size_t k);
std::vector<FrontFit> stored_front_speeds(const RunFileSummary& summary, const std::string& kind);

}  // namespace lf
