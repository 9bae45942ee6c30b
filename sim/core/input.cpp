#include "sim/core/input.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

#include "sim/core/random.hpp"

namespace lf {

InputSignal::InputSignal(const InputSpec& spec, double t0, double t_end)
    : spec_(spec), size_(0) {
  // Breakpoints strictly inside (t0, t_end); each family is computed by multiplication from t0
  // (no drift), and the same formula gives the same double where families coincide.
  std::vector<double> points{t0};
  auto add = [&](double t) {
    if (t > t0 && t < t_end) points.push_back(t);
  };
  // Items (sequence vectors, minibatches) shown for `present` each from t0.
  std::size_t items = 0;
  switch (spec.kind) {
    case InputKind::constant: size_ = static_cast<Eigen::Index>(spec.value.size()); break;
    case InputKind::sine: size_ = static_cast<Eigen::Index>(spec.amplitude.size()); break;
    case InputKind::step:
      size_ = static_cast<Eigen::Index>(spec.value.size());
      add(spec.t_step);
      break;
    case InputKind::sequence:
      size_ = static_cast<Eigen::Index>(spec.sequence.front().size());
      items = spec.sequence.size();
      break;
    case InputKind::dataset: {
      assert(spec.data && spec.data->train.size() > 0 && spec.train.batch > 0);
      const ExampleSet& train = spec.data->train;
      size_ = train.inputs.rows();
      batch_ = spec.train.batch;
      const auto n = static_cast<std::size_t>(train.size());
      const auto b = static_cast<std::size_t>(batch_);
      minibatches_per_epoch_ = (n + b - 1) / b;
      for (long e = 0; e < spec.train.epochs; ++e) {
        std::vector<std::size_t> order(n);
        if (spec.train.shuffle) {
          Random rng(derive_seed(spec.train.seed, static_cast<std::uint64_t>(e)));
          order = random_permutation(n, rng);
        } else {
          for (std::size_t i = 0; i < n; ++i) order[i] = i;
        }
        for (std::size_t slot = 0; slot < minibatches_per_epoch_ * b; ++slot) {
          order_.push_back(order[slot % n]);  // the last minibatch wraps to the epoch's start
        }
      }
      items = minibatches_per_epoch_ * static_cast<std::size_t>(spec.train.epochs);
      break;
    }
  }
  const bool itemised = spec.kind == InputKind::sequence || spec.kind == InputKind::dataset;
  if (itemised) {
    for (std::size_t k = 1; t0 + static_cast<double>(k) * spec.present < t_end; ++k) {
      if (!(spec.kind == InputKind::sequence && spec.repeat) && k >= items) break;  // held
      add(t0 + static_cast<double>(k) * spec.present);
    }
  } else {
    add(spec.target_t0);
  }
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
    if (itemised) {
      auto item = static_cast<std::size_t>(std::floor(since / spec.present + 1e-9));
      presentation_.push_back(item);
      item_.push_back(spec.kind == InputKind::sequence && spec.repeat ? item % items
                                                                      : std::min(item, items - 1));
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
  switch (spec.kind) {
    case InputKind::sequence:
      target_size_ = static_cast<Eigen::Index>(spec.targets.empty() ? 0 : spec.targets.front().size());
      break;
    case InputKind::dataset:
      target_size_ = spec.data->train.targets.rows();
      break;
    default:
      target_size_ = static_cast<Eigen::Index>(spec.target.size());
  }
  error_rows_ = spec.kind == InputKind::dataset ? spec.data->error_rows : target_size_;
}

double InputSignal::phase_period() const {
  if (spec_.phase_durations.empty()) return 0.0;
  if (spec_.kind == InputKind::sequence || spec_.kind == InputKind::dataset) return spec_.present;
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

std::span<const std::size_t> InputSignal::minibatch_examples(std::size_t minibatch) const {
  const auto b = static_cast<std::size_t>(batch_);
  return std::span<const std::size_t>(order_).subspan(minibatch * b, b);
}

bool InputSignal::starts_presentation(std::size_t segment) const {
  if (presentation_.empty()) return false;
  return segment == 0 || presentation_[original(segment)] != presentation_[original(segment - 1)];
}

bool InputSignal::starts_minibatch(std::size_t segment) const {
  return spec_.kind == InputKind::dataset && starts_presentation(segment);
}

bool InputSignal::resets(std::size_t segment) const {
  return spec_.kind == InputKind::dataset && spec_.train.reset && starts_minibatch(segment);
}

void InputSignal::value(std::size_t segment, double t, Eigen::Ref<Eigen::MatrixXd> out) const {
  assert(segment < segments());
  const std::size_t k = original(segment);
  if (reversed_) t = boundaries_.front() + boundaries_.back() - t;
  using Vector = Eigen::Map<const Eigen::VectorXd>;
  switch (spec_.kind) {
    case InputKind::constant:
      out.col(0) = Vector(spec_.value.data(), size_);
      break;
    case InputKind::step: {
      const auto& v = starts_at_or_after(k, spec_.t_step) ? spec_.value : spec_.before;
      out.col(0) = Vector(v.data(), size_);
      break;
    }
    case InputKind::sine:
      for (Eigen::Index i = 0; i < size_; ++i) {
        out(i, 0) = spec_.offset[i] + spec_.amplitude[i] * std::sin(2.0 * std::numbers::pi *
                                                                    spec_.frequency[i] * t +
                                                                    spec_.phase[i]);
      }
      break;
    case InputKind::sequence:
      out.col(0) = Vector(spec_.sequence[item_[k]].data(), size_);
      break;
    case InputKind::dataset: {
      const auto examples = minibatch_examples(item_[k]);
      for (std::size_t j = 0; j < examples.size(); ++j) {
        out.col(static_cast<Eigen::Index>(j)) =
            spec_.data->train.inputs.col(static_cast<Eigen::Index>(examples[j]));
      }
      break;
    }
  }
}

void InputSignal::rate(std::size_t segment, double t, Eigen::Ref<Eigen::MatrixXd> out) const {
  out.setZero();
  if (spec_.kind != InputKind::sine) return;
  assert(segment < segments());
  static_cast<void>(segment);  // every segment of a sine has the same formula
  const double sign = reversed_ ? -1.0 : 1.0;  // d/ds u(t0 + t_end − s) = −u'(t)
  if (reversed_) t = boundaries_.front() + boundaries_.back() - t;
  for (Eigen::Index i = 0; i < size_; ++i) {
    const double omega = 2.0 * std::numbers::pi * spec_.frequency[i];
    out(i, 0) = sign * spec_.amplitude[i] * omega * std::cos(omega * t + spec_.phase[i]);
  }
}

bool InputSignal::target(std::size_t segment, Eigen::Ref<Eigen::MatrixXd> out) const {
  const std::size_t k = original(segment);
  using Vector = Eigen::Map<const Eigen::VectorXd>;
  switch (spec_.kind) {
    case InputKind::sequence:
      if (spec_.targets.empty()) return false;
      out.col(0) = Vector(spec_.targets[item_[k]].data(), target_size_);
      return true;
    case InputKind::dataset: {
      const auto examples = minibatch_examples(item_[k]);
      for (std::size_t j = 0; j < examples.size(); ++j) {
        out.col(static_cast<Eigen::Index>(j)) =
            spec_.data->train.targets.col(static_cast<Eigen::Index>(examples[j]));
      }
      return true;
    }
    default:
      if (spec_.target.empty() || !starts_at_or_after(k, spec_.target_t0)) return false;
      out.col(0) = Vector(spec_.target.data(), target_size_);
      return true;
  }
}

bool InputSignal::starts_at_or_after(std::size_t original_segment, double t) const {
  // The start of an original segment, in original time.
  const double start = reversed_ ? boundaries_.front() + boundaries_.back() -
                                       boundaries_[segments() - original_segment]
                                 : boundaries_[original_segment];
  return start >= t;
}

Drive::Drive(const InputSignal& signal)
    : signal_(&signal), value_(signal.size(), signal.examples()),
      rate_(Eigen::MatrixXd::Zero(signal.size(), signal.examples())),
      target_(signal.target_size(), signal.examples()) {
  enter_segment(0, signal.boundaries().front());
}

void Drive::enter_segment(std::size_t segment, double t) {
  segment_ = segment;
  signal_->value(segment_, t, value_);
  has_target_ = signal_->target(segment_, target_);
}

const Eigen::MatrixXd& Drive::at(double t) const {
  if (signal_->time_dependent()) signal_->value(segment_, t, value_);
  return value_;
}

const Eigen::MatrixXd& Drive::rate_at(double t) const {
  if (signal_->time_dependent()) signal_->rate(segment_, t, rate_);
  return rate_;
}

}  // namespace lf
