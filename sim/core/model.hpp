#pragma once
// A model is one ODE system of a learning theory (DESIGN §4): validated parameters, a StateLayout
// naming the blocks of its state, and a right-hand side that is exactly an odeint System.
// The RHS allocates nothing, prints nothing and depends on the thread count only for speed.
#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/layout.hpp"
#include "sim/core/snapshot.hpp"

namespace lf {

// An attribute a model attaches to one of its metric datasets at the end of a run (e.g. the
// fitted relaxation rate of every target phase).
struct DatasetAttribute {
  std::string dataset;          // "/metrics/relaxation/residual/layer1"
  std::string name;             // "fitted_rate"
  std::vector<double> values;
};

// One learned parameter array, row-major, with its name under /parameters.
struct ParameterArray {
  std::string name;                 // "W/layer1", "b/layer1", "Omega/layer2"
  std::vector<Eigen::Index> shape;  // {n} or {rows, cols}
  std::vector<double> values;
  bool integer = false;             // integral values (indices, labels, masks), stored as int64
};

// What a model whose batch axis is the nodes of a graph writes about the waves on its graph: arrays
// named by their full paths (gnn: /waves/graph/...) and attributes of those arrays.
struct NodeWaves {
  std::vector<ParameterArray> arrays;
  std::vector<DatasetAttribute> attributes;
};

class Model {
 public:
  virtual ~Model() = default;
  Model() = default;
  Model(const Model&) = delete;             // the integrator holds the model by reference
  Model& operator=(const Model&) = delete;

  virtual std::string_view type() const = 0;
  virtual const StateLayout& layout() const = 0;
  // Writes the state at t0 into s (already sized to layout().size()).
  virtual void initial_state(State& s) const = 0;
  // ds = f(s, t). The input in force is read from the Drive the model was built with.
  virtual void rhs(const State& s, State& ds, double t) const = 0;

  // A discrete event at the start of every input segment (phase change, new example): the model
  // may change the state (reset targets, apply an end-of-phase update). The Drive is already in
  // the new segment. Called before the stepper restarts, never inside a step.
  virtual void enter_segment(State& /*s*/, double /*t*/) const {}
  // The schedule's reset at a new minibatch (train.reset), before enter_segment: activities and
  // targets restart from zero. Default: every per-example block is zeroed.
  virtual void reset_activity(State& s) const {
    for (const Block& b : layout().blocks()) {
      if (b.per_example()) std::fill_n(s.begin() + b.offset, b.size, 0.0);
    }
  }
  // Stabilisation of a constrained model (holonomic): moves s onto the model's constraint
  // manifold at time t and refreshes the blocks that are functions of the state (reactions).
  // Called by the integration loop after every accepted step, after that step's samples; the
  // loop then restarts the stepper at t when this returns true (the dynamical coordinates
  // changed: dopri5's FSAL derivative is re-evaluated), as after enter_segment. Also applied to
  // a copy of every sampled state before it is observed, so that samples are on the manifold
  // too. Deterministic (checkpoint/resume stay bit for bit) and allocation-free. Default:
  // nothing to project.
  virtual bool project(State& /*s*/, double /*t*/) const { return false; }
  // A discrete event at the end of every input segment, after its last sample and before the
  // Drive moves on (so the segment's input is still in force): end-of-phase updates. Also at
  // the end of the last segment, so that a phase ending at t_end is closed like any other.
  virtual void leave_segment(State& /*s*/, double /*t*/) const {}
  // Event state (DESIGN §3): what the events and metrics keep outside the state vector and later
  // results depend on (a frozen forward pass, a phase's residual samples). A checkpoint saves it
  // under "model/…"; a resumed run restores it before integrating on. Caches that are recomputed
  // from the state with the same bits need not be saved.
  virtual void save_events(Snapshot& /*out*/) const {}
  virtual void restore_events(const Snapshot& /*in*/) const {}

  // True when the model's relaxations cannot run away (a gradient flow of an energy bounded
  // below, on bounded states): its phases are then never flagged as diverged. Their residual
  // ‖ds/dt‖ may still rise for a while as a nudge spreads through the network (eqprop).
  virtual bool relaxations_bounded() const { return false; }

  // Model-specific metrics written to /metrics/<name> at every sample (names may contain '/').
  virtual std::vector<std::string> metric_names() const { return {}; }
  // out.size() == metric_names().size(). Called only at sample times, outside trial stages.
  virtual void metrics(const State& /*s*/, double /*t*/, std::span<double> /*out*/) const {}

  // After the integration (success or not): close what is open (a last phase); then summary()
  // gives the attributes to write.
  virtual void finish(const State& /*s*/, double /*t*/) const {}
  virtual std::vector<DatasetAttribute> summary() const { return {}; }

  // Evaluation of a training run: the output activity (outputs × N) of the network with the
  // parameters of state s, settled on every column of `inputs` (n_in × N) by the model's own
  // forward convention. False when the model has no such convention.
  virtual bool predict(const State& /*s*/, const Eigen::Ref<const Eigen::MatrixXd>& /*inputs*/,
                       Eigen::Ref<Eigen::MatrixXd> /*outputs*/) const {
    return false;
  }
  // The learned parameters in state s ("W/<projection>" [rows, cols], "b/<population>" [n],
  // and model-specific ones such as "Omega/<projection>"), written to /parameters/final.
  virtual std::vector<ParameterArray> parameters(const State& /*s*/) const { return {}; }
  // Arrays that describe the run beyond its network (gnn: the graph under /graph, the initial
  // shared weights under /parameters), named by their full paths; written once, before the
  // first sample, from the initial state s.
  virtual std::vector<ParameterArray> description(const State& /*s*/) const { return {}; }
  // Arrays computed from the final state of a run that succeeded (gnn: the exact gradient under
  // /gradient), named by their full paths; written after the trajectory.
  virtual std::vector<ParameterArray> results(const State& /*s*/) const { return {}; }

  // Waves on a graph: per-example blocks (kind x, h or lambda) whose arrival the run measures per
  // example (per node) in the first measured input segment (sim/waves.hpp, example_arrivals), from
  // the states at the sample times; node_waves() turns those arrivals (one per example, NaN where
  // undefined) into what is written under /waves at the end of the run.
  virtual std::vector<BlockId> node_wave_blocks() const { return {}; }
  virtual NodeWaves node_waves(BlockId /*block*/, double /*segment_start*/,
                               std::span<const double> /*arrivals*/) const {
    return {};
  }

  // odeint System interface.
  void operator()(const State& s, State& ds, double t) const { rhs(s, ds, t); }
};

}  // namespace lf
