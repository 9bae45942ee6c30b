#include "sim/input.hpp"

#include <cassert>
#include <cmath>
#include <numbers>

namespace lf {

InputSignal::InputSignal(const InputSpec& spec, double t0, double t_end)
    : spec_(spec), size_(0) {
  boundaries_.push_back(t0);
  switch (spec.kind) {
    case InputKind::constant:
      size_ = static_cast<Eigen::Index>(spec.value.size());
      break;
    case InputKind::sine:
      size_ = static_cast<Eigen::Index>(spec.amplitude.size());
      break;
    case InputKind::step:
      size_ = static_cast<Eigen::Index>(spec.value.size());
      if (spec.t_step > t0 && spec.t_step < t_end) boundaries_.push_back(spec.t_step);
      break;
    case InputKind::sequence: {
      size_ = static_cast<Eigen::Index>(spec.sequence.front().size());
      // Switch k happens at t0 + k·present, computed by multiplication (no drift).
      sequence_index_.push_back(0);
      const std::size_t n = spec.sequence.size();
      for (std::size_t k = 1;; ++k) {
        const double t = t0 + static_cast<double>(k) * spec.present;
        if (!(t < t_end)) break;
        if (!spec.repeat && k >= n) break;  // the last vector is held until t_end
        boundaries_.push_back(t);
        sequence_index_.push_back(k % n);
      }
      break;
    }
  }
  boundaries_.push_back(t_end);
}

void InputSignal::value(std::size_t segment, double t, Eigen::Ref<Eigen::VectorXd> out) const {
  assert(segment < segments());
  switch (spec_.kind) {
    case InputKind::constant:
      out = Eigen::Map<const Eigen::VectorXd>(spec_.value.data(), size_);
      break;
    case InputKind::step: {
      // Segment 0 is before the step unless the step is at or before t0.
      const bool after = segment > 0 || spec_.t_step <= boundaries_.front();
      const auto& v = after ? spec_.value : spec_.before;
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
      const auto& v = spec_.sequence[sequence_index_[segment]];
      out = Eigen::Map<const Eigen::VectorXd>(v.data(), size_);
      break;
    }
  }
}

Drive::Drive(const InputSignal& signal) : signal_(&signal), value_(signal.size()) {
  enter_segment(0, signal.boundaries().front());
}

void Drive::enter_segment(std::size_t segment, double t) {
  segment_ = segment;
  signal_->value(segment_, t, value_);
}

const Eigen::VectorXd& Drive::at(double t) const {
  if (signal_->time_dependent()) signal_->value(segment_, t, value_);
  return value_;
}

}  // namespace lf
