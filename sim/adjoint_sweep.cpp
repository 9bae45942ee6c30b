#include "sim/adjoint_sweep.hpp"

#include "integrators/hermite.hpp"

#include <algorithm>
#include <utility>

namespace lf {

ForwardRecorder::ForwardRecorder(IntegrationObserver& inner, const AdjointForwardModel& model,
                                 TrajectoryStore& store)
    : inner_(inner), model_(model), store_(store),
      derivative_(static_cast<std::size_t>(model.layout().size())) {}

void ForwardRecorder::record(const State& s, double t) {
  model_.rhs(s, derivative_, t);  // the derivative within the current segment (left limit at its end)
  store_.add(segment_, t, s.data(), derivative_.data());
}

void ForwardRecorder::segment_start(const State& s, double t) {
  if (started_) ++segment_;
  started_ = true;
  record(s, t);
  inner_.segment_start(s, t);
}

void ForwardRecorder::save(Snapshot& out) const {
  out.put("adjoint/recorder/segment", static_cast<double>(segment_));
  out.put("adjoint/recorder/started", started_ ? 1.0 : 0.0);
  store_.save(out);
}

void ForwardRecorder::restore(const Snapshot& in) {
  segment_ = in.count("adjoint/recorder/segment");
  started_ = in.scalar("adjoint/recorder/started") != 0.0;
  store_.restore(in);
}

void ForwardRecorder::step(const State& s, double t, double dt, const SolverStats& stats) {
  record(s, t);
  inner_.step(s, t, dt, stats);
}

namespace {

// Keeps λ at every sample of the backward sweep (reached in decreasing time), and integrates
// the gradients over every accepted step (AdjointBackwardModel::add_step_integrals): the step's
// start (λ and dλ/ds, from the previous step's end or the segment's start) and its end.
class CostateSamples final : public IntegrationObserver {
 public:
  CostateSamples(const AdjointBackwardModel& model, double time_sum, AdjointSweep& out)
      : model_(model), time_sum_(time_sum), out_(out), gradients_(model.zero_gradients()),
        lambda_(static_cast<std::size_t>(model.layout().size())), slope_(lambda_.size()),
        end_slope_(lambda_.size()) {
    for (BlockId id = 0; id < model.layout().blocks().size(); ++id) {
      if (model.layout().block(id).kind != "lambda") continue;
      blocks_.push_back(id);
      out.populations.push_back(model.layout().block(id).member);
    }
    out.lambda.resize(blocks_.size());
  }
  void sample(const State& s, double sigma) override {
    out_.times.push_back(time_sum_ - sigma);
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const auto v = model_.layout().vector(s, blocks_[i]);
      out_.lambda[i].insert(out_.lambda[i].end(), v.data(), v.data() + v.size());
    }
  }
  void segment_start(const State& s, double sigma) override {
    lambda_ = s;
    model_.rhs(s, slope_, sigma);  // with the new segment's input (for the Hermite fallback)
    sigma_ = sigma;
    started_ = true;
  }
  bool wants_interpolant() const override { return true; }
  void step_interpolant(double s0, double s1, const Interpolant& at) override {
    model_.add_step_integrals(s0, s1, at, gradients_);
    ++out_.quadrature_steps;
    interpolated_ = true;
  }
  void step(const State& s, double sigma, double, const SolverStats&) override {
    if (!started_) return;  // (a backward sweep always starts at a segment's start)
    if (!std::exchange(interpolated_, false)) {
      // A stepper without dense output: λ in the step from the cubic Hermite interpolant of λ and
      // dλ/ds at its ends (error O(h⁴)).
      model_.rhs(s, end_slope_, sigma);  // the left limit at a segment's end
      model_.add_step_integrals(sigma_, sigma, [&](double at, State& out) {
        hermite(sigma_, lambda_, slope_, sigma, s, end_slope_, at, out);
      }, gradients_);
      ++out_.quadrature_steps;
      std::swap(slope_, end_slope_);
    }
    lambda_ = s;
    sigma_ = sigma;
  }
  const AdjointGradients& gradients() const { return gradients_; }

  // Puts the samples in increasing time, like /time.
  void reverse() {
    std::reverse(out_.times.begin(), out_.times.end());
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const auto n = model_.layout().block(blocks_[i]).size;
      auto& rows = out_.lambda[i];
      std::vector<double> reversed(rows.size());
      const std::size_t count = out_.times.size();
      for (std::size_t r = 0; r < count; ++r) {
        std::copy_n(rows.begin() + static_cast<std::ptrdiff_t>((count - 1 - r) * n), n,
                    reversed.begin() + static_cast<std::ptrdiff_t>(r * n));
      }
      rows = std::move(reversed);
    }
  }

 private:
  const AdjointBackwardModel& model_;
  double time_sum_;
  AdjointSweep& out_;
  std::vector<BlockId> blocks_;
  AdjointGradients gradients_;  // −∂J/∂W, −∂J/∂b so far
  State lambda_, slope_, end_slope_;  // λ and dλ/ds at the last step's end; dλ/ds at this one's
  double sigma_ = 0.0;
  bool started_ = false;
  bool interpolated_ = false;  // the step just taken was integrated on the stepper's dense output
};

}  // namespace

AdjointSweep sweep_backward(const AdjointForwardModel& forward, const Network& network,
                            const InputSignal& signal, const IntegratorSpec& spec,
                            const std::vector<double>& sample_times, const TrajectoryStore& store,
                            const State& forward_final) {
  const InputSignal reversed = signal.reversed();
  Drive drive(reversed);
  const AdjointBackwardModel backward(network, forward.params(), drive, store, forward.neurons(),
                                      forward.layout());
  const double time_sum = signal.boundaries().front() + signal.boundaries().back();
  std::vector<double> sigma_times;
  for (auto it = sample_times.rbegin(); it != sample_times.rend(); ++it) {
    sigma_times.push_back(std::clamp(time_sum - *it, signal.boundaries().front(),
                                     signal.boundaries().back()));
  }
  AdjointSweep sweep;
  sweep.loss_integral = forward.layout().vector(forward_final, forward.integral_block())[0];
  sweep.knots = store.knots();
  sweep.bytes = store.bytes();
  CostateSamples samples(backward, time_sum, sweep);
  State state(static_cast<std::size_t>(backward.layout().size()));
  backward.initial_state(state);
  // The backward sweep is no relaxation of the schedule's phases: it never stops on divergence.
  IntegratorSpec backward_spec = spec;
  backward_spec.stop_on_divergence = false;
  sweep.result = integrate(backward, drive, state, backward_spec, sigma_times, samples);
  samples.reverse();
  if (sweep.result.outcome != Outcome::success) return sweep;
  // The integrals are −∂J/∂W and −∂J/∂b.
  for (const Eigen::VectorXd& g : samples.gradients().weight) sweep.weight_gradient.push_back(-g);
  for (const Eigen::VectorXd& g : samples.gradients().bias) sweep.bias_gradient.push_back(-g);
  return sweep;
}

void write_adjoint(const AdjointSweep& sweep, const Network& network, TrajectoryWriter& writer) {
  const SolverStats& st = sweep.result.stats;
  writer.write_attributes(
      "/adjoint",
      {{"loss_integral", sweep.loss_integral},
       {"steps", static_cast<double>(st.steps)},
       {"rejected", static_cast<double>(st.rejected)},
       {"rhs_evals", static_cast<double>(st.rhs_evals)},
       {"wall_seconds", st.wall_seconds},
       {"quadrature_steps", static_cast<double>(sweep.quadrature_steps)},
       {"forward_knots", static_cast<double>(sweep.knots)},
       {"forward_bytes", static_cast<double>(sweep.bytes)}},
      {{"outcome", std::string(outcome_name(sweep.result.outcome))},
       {"message", sweep.result.message}});
  if (sweep.result.outcome != Outcome::success) return;
  writer.write_array("/adjoint/time", {sweep.times.size()}, sweep.times.data());
  for (std::size_t i = 0; i < sweep.populations.size(); ++i) {
    const auto n = sweep.times.empty() ? 0 : sweep.lambda[i].size() / sweep.times.size();
    writer.write_array("/adjoint/state/lambda/" + sweep.populations[i], {sweep.times.size(), n},
                       sweep.lambda[i].data());
  }
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    const Projection& q = network.projections[k];
    const auto& g = sweep.weight_gradient[k];
    const std::vector<unsigned long long> shape =
        q.sparse ? std::vector<unsigned long long>{static_cast<unsigned long long>(g.size())}
                 : std::vector<unsigned long long>{static_cast<unsigned long long>(q.rows()),
                                                   static_cast<unsigned long long>(q.cols())};
    writer.write_array("/adjoint/grad/W/" + q.name, shape, g.data());
  }
  for (std::size_t p = 0; p < network.populations.size(); ++p) {
    if (network.populations[p].role == Role::input) continue;
    const auto& g = sweep.bias_gradient[p];
    writer.write_array("/adjoint/grad/b/" + network.populations[p].name,
                       {static_cast<unsigned long long>(g.size())}, g.data());
  }
}

}  // namespace lf
