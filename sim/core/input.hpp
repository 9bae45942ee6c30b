#pragma once
// The external input u(t) (DESIGN §5): a vector over the concatenated input populations.
// Piecewise-constant inputs split [t0, t_end] into segments; every switch is a breakpoint, and
// the integrator never steps across one. Within a segment the input is evaluated through a Drive,
// which holds the segment in force, so that the value at a segment's right end is its left limit.
#include <Eigen/Core>
#include <limits>
#include <string>
#include <vector>

namespace lf {

enum class InputKind { constant, step, sine, sequence };

// The external input: a vector over the concatenated input populations, as a function of time.
struct InputSpec {
  InputKind kind = InputKind::constant;
  std::vector<double> value;              // constant, step (after t0)
  std::vector<double> before;             // step: before t0 (default zeros)
  double t_step = 0.0;                    // step: switch time
  std::vector<double> amplitude, frequency, phase, offset;  // sine: offset + A sin(2π f t + φ)
  std::vector<std::vector<double>> sequence;  // sequence: the vectors shown in turn
  double present = 1.0;                   // sequence: time each vector is held
  bool repeat = true;                     // sequence: cycle through the vectors until t_end

  // Phases of each example (DESIGN §5): names and durations, repeated with period Σ durations
  // from t0 (for a sequence, the period is `present`). Every phase switch is a breakpoint.
  std::vector<std::string> phase_names;
  std::vector<double> phase_durations;

  // Targets y for the output populations (learning models): one per sequence vector, or one
  // constant target for the other kinds, present from target_t0 on (before it: no target, e = 0).
  std::vector<std::vector<double>> targets;
  std::vector<double> target;
  double target_t0 = -std::numeric_limits<double>::infinity();
};

class InputSignal {
 public:
  InputSignal(const InputSpec& spec, double t0, double t_end);

  // Segment boundaries t0 = b_0 < b_1 < … < b_S = t_end.
  const std::vector<double>& boundaries() const noexcept { return boundaries_; }
  std::size_t segments() const noexcept { return boundaries_.size() - 1; }
  Eigen::Index size() const noexcept { return size_; }
  bool time_dependent() const noexcept { return spec_.kind == InputKind::sine; }

  // u(t) within segment k (t in [b_k, b_{k+1}]).
  void value(std::size_t segment, double t, Eigen::Ref<Eigen::VectorXd> out) const;
  // The phase of segment k (index into spec().phase_names; 0 when there are no phases).
  std::size_t phase(std::size_t segment) const { return phase_[original(segment)]; }
  // The target y in segment k; false (and `out` untouched) when the segment has none.
  bool target(std::size_t segment, Eigen::Ref<Eigen::VectorXd> out) const;
  Eigen::Index target_size() const noexcept { return target_size_; }

  // The same signal in reversed time s = t0 + t_end − t (for adjoint sweeps): segment k of the
  // reversed signal is segment S−1−k of this one.
  InputSignal reversed() const;

  const InputSpec& spec() const noexcept { return spec_; }

 private:
  InputSpec spec_;
  std::vector<double> boundaries_;
  std::vector<std::size_t> sequence_index_;  // sequence: which vector each segment shows
  std::vector<std::size_t> phase_;           // phase of each segment
  Eigen::Index size_;
  Eigen::Index target_size_ = 0;
  bool reversed_ = false;
  std::size_t original(std::size_t segment) const {
    return reversed_ ? segments() - 1 - segment : segment;
  }
  double phase_period() const;  // 0 without phases
  // Whether original segment k starts at or after time t (original time).
  bool starts_at_or_after(std::size_t original_segment, double t) const;
};

// The input as the right-hand side sees it: the current segment's value, recomputed at each t
// only for time-dependent inputs. Not thread-safe: one RHS evaluation at a time.
class Drive {
 public:
  explicit Drive(const InputSignal& signal);
  void enter_segment(std::size_t segment, double t);
  const Eigen::VectorXd& at(double t) const;
  // The target in force, if the current segment has one.
  bool has_target() const noexcept { return has_target_; }
  const Eigen::VectorXd& target() const noexcept { return target_; }
  std::size_t segment() const noexcept { return segment_; }
  std::size_t phase() const { return signal_->phase(segment_); }
  const InputSignal& signal() const noexcept { return *signal_; }

 private:
  const InputSignal* signal_;
  std::size_t segment_ = 0;
  mutable Eigen::VectorXd value_;
  Eigen::VectorXd target_;
  bool has_target_ = false;
};

}  // namespace lf
