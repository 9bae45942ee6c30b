#pragma once
// Discrete reference computations on the settled network — the oracle that the costate dynamics
// are compared with (alignment metrics, accuracy):
//   settled state   x = σ(W x + b)/c  (input populations clamped to u): a forward pass in
//                   topological order on a DAG; damped Newton iteration on a cyclic graph;
//   exact error     λ = (Wᵀ(σ'(a) ⊙ λ) + e)/c: backprop in reverse topological order on a DAG,
//                   the linear solve (cI − WᵀD) λ = e on a cyclic graph (recurrent backprop);
//   gradient        −∂V/∂W_q = (σ'(a_to) ⊙ λ_to) x_fromᵀ,  −∂V/∂b = σ'(a) ⊙ λ.
#include <Eigen/Core>
#include <optional>
#include <span>
#include <vector>

#include "models/params.hpp"
#include "models/projection_ops.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

namespace lf {

// V and e = −∂V/∂x of the output activity x for target y (DESIGN §4 signs).
double loss_value(Loss loss, const Eigen::VectorXd& x, const Eigen::VectorXd& y);
void loss_error(Loss loss, const Eigen::VectorXd& x, const Eigen::VectorXd& y,
                Eigen::Ref<Eigen::VectorXd> e);

// e = −∂V/∂x for the target the drive holds now; zero when the segment has no target.
void target_error(Loss loss, const Drive& drive, const Eigen::VectorXd& x, Eigen::Ref<Eigen::VectorXd> e);

class ExactBackprop {
 public:
  ExactBackprop(const Network& network, double c, Loss loss);

  bool acyclic() const noexcept { return acyclic_; }

  struct Settled {
    bool converged = false;
    std::vector<Eigen::VectorXd> x;  // per population (inputs: their slice of u)
    std::vector<Eigen::VectorXd> a;  // pre-activations (empty for inputs)
  };
  // The fixed point at weights `w` (one view per projection) and biases `b` (per population).
  // `guess` (concatenated non-input activity, may be empty) starts the Newton iteration.
  Settled settle(std::span<const WeightView> w, std::span<const Eigen::VectorXd> b,
                 const Eigen::VectorXd& u, const Eigen::VectorXd& guess = {}) const;

  struct Gradient {
    bool converged = false;
    double loss = 0.0;                         // V at the settled output
    std::vector<Eigen::VectorXd> lambda;       // per population (empty for inputs)
    std::vector<Eigen::VectorXd> weights;      // −∂V/∂W_q in the layout of the weight values
    std::vector<Eigen::VectorXd> biases;       // −∂V/∂b_p (empty for inputs)
  };
  Gradient gradient(std::span<const WeightView> w, std::span<const Eigen::VectorXd> b,
                    const Eigen::VectorXd& u, const Eigen::VectorXd& y,
                    const Eigen::VectorXd& guess = {}) const;

  // The output activity (output populations concatenated) of a settled network.
  Eigen::VectorXd output(const Settled& settled) const;

 private:
  const Network* network_;
  double c_;
  Loss loss_;
  bool acyclic_ = true;
  std::vector<std::size_t> order_;        // topological order of non-input populations (DAG)
  std::vector<Eigen::Index> offset_;      // offset of each non-input population in the
  Eigen::Index state_size_ = 0;           // concatenated vector (−1 for inputs)
  std::vector<Eigen::Index> input_offset_;

  Eigen::MatrixXd assemble(std::span<const WeightView> w) const;  // dense W over non-inputs
};

}  // namespace lf
