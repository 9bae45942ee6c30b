#pragma once
// Wave analytics: when does a population's activity arrive after an input switch?
// Arrival time of a population in segment [ts, te] (the same definition as tools/plot):
// m(t) = mean activity over the samples with ts <= t <= te; m0 = first, m1 = last, d = m1 − m0;
// undefined when fewer than 2 samples, any sample is not finite, or |d| <= 1e-9·max(1, |m0|,
// |m1|); otherwise the first
// time |m − m0| reaches |d|/2, linearly interpolated between the two samples around it.
#include <optional>
#include <span>

namespace lf {

std::optional<double> arrival_time(std::span<const double> time, std::span<const double> mean,
                                   double segment_begin, double segment_end);

}  // namespace lf
