#pragma once
// A model is one ODE system of a learning theory (DESIGN §4): validated parameters, a StateLayout
// naming the blocks of its state, and a right-hand side that is exactly an odeint System.
// The RHS allocates nothing, prints nothing and depends on the thread count only for speed.
#include <string_view>

#include "sim/layout.hpp"

namespace lf {

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

  // odeint System interface.
  void operator()(const State& s, State& ds, double t) const { rhs(s, ds, t); }
};

}  // namespace lf
