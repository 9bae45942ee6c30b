#pragma once
// Model "leaky" (DESIGN §4): forward waves of leaky neurons on any digraph,
//     τ ẋ_p = −c x_p + σ_p(a_p),   a_p = b_p + Σ_{projections q→p} W_qp x_q,
// for each example of the batch (x_p: n_p×B),
// with input populations clamped to the input u(t) (they are not part of the state).
// On a layered DAG with c = 1 the fixed point is the feedforward pass.
#include "sim/core/model.hpp"
#include "models/neurons.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

namespace lf {

class LeakyModel final : public Model {
 public:
  // Holds `network` and `drive` by reference: both must outlive the model.
  LeakyModel(const Network& network, const LeakyParams& params, const Drive& drive);

  std::string_view type() const override { return "leaky"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;

  const LeakyParams& params() const noexcept { return params_; }

 private:
  const Network* network_;
  LeakyParams params_;
  const Drive* drive_;
  StateLayout layout_;
  NeuronIndex neurons_;
  bool parallel_ = false;                  // worth a parallel region?
  mutable Eigen::MatrixXd preactivation_;  // scratch, indexed like the neurons (neurons × B)
};

}  // namespace lf
