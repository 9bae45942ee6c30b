#pragma once
// The external input (DESIGN §5): for each of the B examples of the batch, a vector over the
// concatenated input populations, as a function of time — an n_in×B matrix (one column per
// example; B = 1 except for training runs). Piecewise-constant inputs split [t0, t_end] into
// segments; every switch is a breakpoint, and the integrator never steps across one. Within a
// segment the input is evaluated through a Drive, which holds the segment in force, so that the
// value at a segment's right end is its left limit.
//
// Training runs (InputKind::dataset) show a data set in epochs of minibatches: minibatch m of
// epoch e holds examples π_e(mB), …, π_e(mB + B − 1) of the training set (π_e: the epoch's
// permutation, or file order without shuffling), each minibatch is shown for `present` time
// units (split into the phases), and every minibatch switch is a breakpoint. An epoch has
// M = ⌈N/B⌉ minibatches; the last one is filled up with the first examples of the epoch's order,
// so that every example is shown at least once per epoch and every minibatch has B examples.
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/core/dataset.hpp"
#include "sim/core/layout.hpp"

namespace lf {

enum class InputKind { constant, step, sine, sequence, dataset };

// The training schedule of a data set ([train]): epochs of shuffled minibatches.
struct TrainSpec {
  long epochs = 1;           // passes over the training set, > 0
  long batch = 1;            // B: examples per minibatch, simulated side by side, > 0
  bool shuffle = true;       // a new permutation of the training set per epoch (else file order)
  std::uint64_t seed = 1;    // seeds the permutations (one stream per epoch)
  bool reset = false;        // activities and targets restart from zero at each minibatch
  long eval_every = 0;       // minibatches between evaluations; 0: at the end of every epoch
  bool eval_train = true;    // evaluate on the training set too (not only the held-out set)
};

// The external input: a vector over the concatenated input populations, as a function of time.
struct InputSpec {
  InputKind kind = InputKind::constant;
  std::vector<double> value;              // constant, step (after t0)
  std::vector<double> before;             // step: before t0 (default zeros)
  double t_step = 0.0;                    // step: switch time
  std::vector<double> amplitude, frequency, phase, offset;  // sine: offset + A sin(2π f t + φ)
  std::vector<std::vector<double>> sequence;  // sequence: the vectors shown in turn
  double present = 1.0;                   // sequence, dataset: time each vector/minibatch is held
  bool repeat = true;                     // sequence: cycle through the vectors until t_end

  // Phases of each example (DESIGN §5): names and durations, repeated with period Σ durations
  // from t0 (for a sequence or a data set, the period is `present`). Every phase switch is a
  // breakpoint.
  // A phase may end early, when its relaxation has converged: phase_until[j] > 0 is the
  // tolerance on the residual (the driver's ‖ds/dt‖ over the per-example blocks), and the
  // phase's duration is then its maximum (issue 9). Empty or 0: fixed duration.
  std::vector<std::string> phase_names;
  std::vector<double> phase_durations;
  std::vector<double> phase_until;

  // Targets y for the output populations (learning models): one per sequence vector, or one
  // constant target for the other kinds, present from target_t0 on (before it: no target, e = 0).
  std::vector<std::vector<double>> targets;
  std::vector<double> target;
  double target_t0 = -std::numeric_limits<double>::infinity();

  // dataset: the examples (inputs and targets of data->train) and how they are shown.
  std::shared_ptr<const DataSet> data;
  TrainSpec train;
};

class InputSignal {
 public:
  InputSignal(const InputSpec& spec, double t0, double t_end);

  // Segment boundaries t0 = b_0 < b_1 < … < b_S = t_end.
  const std::vector<double>& boundaries() const noexcept { return boundaries_; }
  std::size_t segments() const noexcept { return boundaries_.size() - 1; }
  Eigen::Index size() const noexcept { return size_; }  // input neurons
  bool time_dependent() const noexcept { return spec_.kind == InputKind::sine; }
  // B examples side by side; the batch axis is written for training runs.
  BatchShape batch_shape() const noexcept { return {batch_, spec_.kind == InputKind::dataset}; }
  Eigen::Index examples() const noexcept { return batch_; }

  // u(t) within segment k (t in [b_k, b_{k+1}]): n_in×B.
  void value(std::size_t segment, double t, Eigen::Ref<Eigen::MatrixXd> out) const;
  // du/dt within segment k (zero except for a sine; in reversed time, the reversed signal's rate).
  void rate(std::size_t segment, double t, Eigen::Ref<Eigen::MatrixXd> out) const;
  // The phase of segment k (index into spec().phase_names; 0 when there are no phases).
  std::size_t phase(std::size_t segment) const { return phase_[original(segment)]; }
  // The residual tolerance that ends segment k early (0: it lasts its full duration).
  double until(std::size_t segment) const {
    const std::size_t p = phase(segment);
    return p < spec_.phase_until.size() && !reversed_ ? spec_.phase_until[p] : 0.0;
  }
  bool ends_on_convergence() const {
    return std::any_of(spec_.phase_until.begin(), spec_.phase_until.end(), [](double e) { return e > 0; });
  }
  // The target y in segment k (n_out×B); false (and `out` untouched) when the segment has none.
  bool target(std::size_t segment, Eigen::Ref<Eigen::MatrixXd> out) const;
  Eigen::Index target_size() const noexcept { return target_size_; }
  // The leading outputs that carry the target error (and the argmax of a classification): all of
  // them, or the data set's classes (padded outputs get no error).
  Eigen::Index error_rows() const noexcept { return error_rows_; }

  // Training runs: minibatches per epoch M, the minibatch a segment shows (0 … E·M − 1), whether
  // the segment is the first of its minibatch, and the training-set indices of a minibatch.
  std::size_t minibatches_per_epoch() const noexcept { return minibatches_per_epoch_; }
  std::size_t minibatch(std::size_t segment) const { return presentation_[original(segment)]; }
  bool starts_minibatch(std::size_t segment) const;
  // Sequences and data sets: whether segment k is the first of a presentation (a sequence vector
  // or a minibatch shown for `present`, counted from t0 without wrapping).
  bool starts_presentation(std::size_t segment) const;
  std::span<const std::size_t> minibatch_examples(std::size_t minibatch) const;
  // Whether the schedule resets the activities when segment k begins (train.reset).
  bool resets(std::size_t segment) const;

  // The same signal in reversed time s = t0 + t_end − t (for adjoint sweeps): segment k of the
  // reversed signal is segment S−1−k of this one.
  InputSignal reversed() const;

  const InputSpec& spec() const noexcept { return spec_; }

 private:
  InputSpec spec_;
  std::vector<double> boundaries_;
  std::vector<std::size_t> item_;     // sequence: vector shown; dataset: minibatch; per segment
  std::vector<std::size_t> presentation_;  // sequence, dataset: presentations since t0
  std::vector<std::size_t> phase_;    // phase of each segment
  std::vector<std::size_t> order_;    // dataset: training-set index of every minibatch slot
  std::size_t minibatches_per_epoch_ = 0;
  Eigen::Index size_;
  Eigen::Index batch_ = 1;
  Eigen::Index target_size_ = 0;
  Eigen::Index error_rows_ = 0;
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
  // u(t), n_in×B.
  const Eigen::MatrixXd& at(double t) const;
  // du/dt at t, n_in×B (zero for piecewise-constant inputs).
  const Eigen::MatrixXd& rate_at(double t) const;
  // The target in force (n_out×B), if the current segment has one.
  bool has_target() const noexcept { return has_target_; }
  const Eigen::MatrixXd& target() const noexcept { return target_; }
  Eigen::Index error_rows() const noexcept { return signal_->error_rows(); }
  Eigen::Index examples() const noexcept { return signal_->examples(); }
  std::size_t segment() const noexcept { return segment_; }
  std::size_t phase() const { return signal_->phase(segment_); }
  const InputSignal& signal() const noexcept { return *signal_; }

 private:
  const InputSignal* signal_;
  std::size_t segment_ = 0;
  mutable Eigen::MatrixXd value_;
  mutable Eigen::MatrixXd rate_;
  Eigen::MatrixXd target_;
  bool has_target_ = false;
};

}  // namespace lf
