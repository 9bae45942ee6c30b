#pragma once
// Model "backprop": discrete minibatch stochastic gradient descent on the network's settled state
// (x = σ(W x + b), a forward pass on a DAG, Newton's method on a cyclic graph; the backward pass
// is exact backprop, or recurrent backprop on a cyclic graph: models/backprop.hpp) — the reference
// that every continuous model is compared with, in the same program, on the same network, initial
// parameters, data order, loss and file format.
//
// It is not an ODE: its state holds the learned parameters and the forward pass of the current
// minibatch, its right-hand side is zero, and learning happens in the schedule's events. At the
// start of every presentation (a minibatch of a training run, or a vector of a sequence) the
// minibatch's forward pass x = σ(W x + b) at the current parameters is settled and stored; at
// its end (when the continuous models' weights have flowed for the whole window) every plastic
// projection and plastic bias takes one step
//     W ← W + η (−∂V̄/∂W − κ W),      b ← b + η (−∂V̄/∂b − κ b),      V̄ = (1/B) Σ_b V(x_b, y_b).
// Learning-rate mapping to the continuous models (documented in README.md): the costate flow
// γ Ẇ = −∂V̄/∂W − κ W moves the weights by (P/γ)(−∂V̄/∂W − κ W) over a minibatch shown for
// P = `present` (once x and λ have settled), so costate's γ corresponds to η = P/γ; GAIT-prop's
// continuous flow with rate η_g over a target phase of length T to η = η_g T, its discrete
// update to η = η_g.
#include <optional>
#include <vector>

#include "models/backprop.hpp"
#include "models/neurons.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/model.hpp"
#include "sim/core/network.hpp"

namespace lf {

class BackpropSgdModel final : public Model {
 public:
  // Holds `network` and `drive` by reference: both must outlive the model. Throws ConfigError
  // when the input has no presentations with targets (a sequence with targets, or a data set).
  BackpropSgdModel(const Network& network, const BackpropParams& params, const Drive& drive);

  std::string_view type() const override { return "backprop"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;
  void enter_segment(State& s, double t) const override;
  void leave_segment(State& s, double t) const override;
  std::vector<std::string> metric_names() const override;
  void metrics(const State& s, double t, std::span<double> out) const override;
  bool predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
               Eigen::Ref<Eigen::MatrixXd> outputs) const override;
  std::vector<ParameterArray> parameters(const State& s) const override;

  const BackpropParams& params() const noexcept { return params_; }
  // One SGD step on the drive's current minibatch, input at t (what a presentation's end does).
  void step(State& s, double t) const;
  std::vector<WeightView> weights(const State& s) const;
  std::vector<Eigen::VectorXd> biases(const State& s) const;

 private:
  const Network* network_;
  BackpropParams params_;
  const Drive* drive_;
  StateLayout layout_;
  NeuronIndex x_;               // x/<pop>: the minibatch's forward pass
  PlasticParameters learned_;   // W/<proj>, b/<pop>
  ExactBackprop reference_;
  std::optional<std::size_t> patterns_;  // sequence with targets: settled accuracy over its pairs
  bool batch_accuracy_ = false;          // training runs: accuracy of the minibatch
  mutable Eigen::MatrixXd output_x_;
};

}  // namespace lf
