#include "sim/core/input.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

namespace lf {

InputSignal::InputSignal(const InputSpec& spec, double t0, double t_end)
    : spec_(spec), size_(0) {
  // Breakpoints strictly inside (t0, t_end); each family is computed by multiplication from t0
  // (no drift), and the same formula gives the same double where families coincide.
  std::vector<double> points{t0};
  auto add = [&](double t) {
    if (t > t0 && t < t_end) points.push_back(t);
  };
  switch (spec.kind) {
    case InputKind::constant: size_ = static_cast<Eigen::Index>(spec.value.size()); break;
    case InputKind::sine: size_ = static_cast<Eigen::Index>(spec.amplitude.size()); break;
    case InputKind::step:
      size_ = static_cast<Eigen::Index>(spec.value.size());
      add(spec.t_step);
      break;
    case InputKind::sequence:
      size_ = static_cast<Eigen::Index>(spec.sequence.front().size());
      for (std::size_t k = 1; t0 + static_cast<double>(k) * spec.present < t_end; ++k) {
        if (!spec.repeat && k >= spec.sequence.size()) break;  // the last vector is held
        add(t0 + static_cast<double>(k) * spec.present);
      }
      break;
  }
  if (spec.kind != InputKind::sequence) add(spec.target_t0);
  const double period = phase_period();
  if (period > 0.0) {
    for (std::size_t m = 0; t0 + static_cast<double>(m) * period < t_end; ++m) {
      double offset = 0.0;
      for (const double d : spec.phase_durations) {
        add(t0 + static_cast<double>(m) * period + offset);
        offset += d;
      }
    }
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  boundaries_ = std::move(points);
  boundaries_.push_back(t_end);

  // What each segment shows, from its start time (tolerance: rounding of the breakpoints).
  for (std::size_t k = 0; k + 1 < boundaries_.size(); ++k) {
    const double since = boundaries_[k] - t0;
    if (spec.kind == InputKind::sequence) {
      auto item = static_cast<std::size_t>(std::floor(since / spec.present + 1e-9));
      const std::size_t n = spec.sequence.size();
      sequence_index_.push_back(spec.repeat ? item % n : std::min(item, n - 1));
    }
    std::size_t phase = 0;
    if (period > 0.0) {
      const double within = since - std::floor(since / period + 1e-9) * period;
      double offset = 0.0;
      for (std::size_t j = 0; j < spec.phase_durations.size(); ++j) {
        if (within + 1e-9 * period >= offset) phase = j;
        offset += spec.phase_durations[j];
      }
    }
    phase_.push_back(phase);
  }
  target_size_ = static_cast<Eigen::Index>(
      spec.kind == InputKind::sequence ? (spec.targets.empty() ? 0 : spec.targets.front().size())
                                       : spec.target.size());
}

double InputSignal::phase_period() const {
  if (spec_.phase_durations.empty()) return 0.0;
  if (spec_.kind == InputKind::sequence) return spec_.present;
  double period = 0.0;
  for (const double d : spec_.phase_durations) period += d;
  return period;
}

InputSignal InputSignal::reversed() const {
  InputSignal r = *this;
  r.reversed_ = !reversed_;
  const double sum = boundaries_.front() + boundaries_.back();
  for (std::size_t i = 0; i < boundaries_.size(); ++i) {
    r.boundaries_[i] = sum - boundaries_[boundaries_.size() - 1 - i];
  }
  // Keep the ends exact (t0 and t_end swap roles only in the interior).
  r.boundaries_.front() = boundaries_.front();
  r.boundaries_.back() = boundaries_.back();
  return r;
}

void InputSignal::value(std::size_t segment, double t, Eigen::Ref<Eigen::VectorXd> out) const {
  assert(segment < segments());
  const std::size_t k = original(segment);
  if (reversed_) t = boundaries_.front() + boundaries_.back() - t;
  switch (spec_.kind) {
    case InputKind::constant:
      out = Eigen::Map<const Eigen::VectorXd>(spec_.value.data(), size_);
      break;
    case InputKind::step: {
      const auto& v = starts_at_or_after(k, spec_.t_step) ? spec_.value : spec_.before;
      out = Eigen::Map<const Eigen::VectorXd>(v.data(), size_);
      break;
    }
    case InputKind::sine:
      for (Eigen::Index i = 0; i < size_; ++i) {
        out[i] = spec_.offset[i] + spec_.amplitude[i] * std::sin(2.0 * std::numbers::pi *
                                                                 spec_.frequency[i] * t +
                                                                 spec_.phase[i]);
      }
      break;
    case InputKind::sequence: {
      const auto& v = spec_.sequence[sequence_index_[k]];
      out = Eigen::Map<const Eigen::VectorXd>(v.data(), size_);
      break;
    }
  }
}

bool InputSignal::target(std::size_t segment, Eigen::Ref<Eigen::VectorXd> out) const {
  const std::size_t k = original(segment);
  if (spec_.kind == InputKind::sequence) {
    if (spec_.targets.empty()) return false;
    const auto& y = spec_.targets[sequence_index_[k]];
    out = Eigen::Map<const Eigen::VectorXd>(y.data(), target_size_);
    return true;
  }
  if (spec_.target.empty() || !starts_at_or_after(k, spec_.target_t0)) return false;
  out = Eigen::Map<const Eigen::VectorXd>(spec_.target.data(), target_size_);
  return true;
}

bool InputSignal::starts_at_or_after(std::size_t original_segment, double t) const {
  // The start of an original segment, in original time.
  const double start = reversed_ ? boundaries_.front() + boundaries_.back() -
                                       boundaries_[segments() - original_segment]
                                 : boundaries_[original_segment];
  return start >= t;
}

Drive::Drive(const InputSignal& signal)
    : signal_(&signal), value_(signal.size()), target_(signal.target_size()) {
  enter_segment(0, signal.boundaries().front());
}

void Drive::enter_segment(std::size_t segment, double t) {
  segment_ = segment;
  signal_->value(segment_, t, value_);
  has_target_ = signal_->target(segment_, target_);
}

const Eigen::VectorXd& Drive::at(double t) const {
  if (signal_->time_dependent()) signal_->value(segment_, t, value_);
  return value_;
}

}  // namespace lf
