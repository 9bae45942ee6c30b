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
double loss_value(Loss loss, const Eigen::Ref<const Eigen::VectorXd>& x,
                  const Eigen::Ref<const Eigen::VectorXd>& y);
void loss_error(Loss loss, const Eigen::Ref<const Eigen::VectorXd>& x,
                const Eigen::Ref<const Eigen::VectorXd>& y, Eigen::Ref<Eigen::VectorXd> e);

// A batch (one column per example) whose leading `rows` outputs carry the loss (the others,
// padding outputs of a classification, carry no error): the mean loss over the examples, and e
// per example (zero below the leading rows).
double batch_loss(Loss loss, const Eigen::Ref<const Eigen::MatrixXd>& x,
                  const Eigen::Ref<const Eigen::MatrixXd>& y, Eigen::Index rows);
void batch_error(Loss loss, const Eigen::Ref<const Eigen::MatrixXd>& x,
                 const Eigen::Ref<const Eigen::MatrixXd>& y, Eigen::Index rows,
                 Eigen::Ref<Eigen::MatrixXd> e);
// Examples of the batch whose argmax over the leading `rows` outputs is the target's (one
// output: |x − y| < 1/2).
Eigen::Index batch_correct(const Eigen::Ref<const Eigen::MatrixXd>& x,
                           const Eigen::Ref<const Eigen::MatrixXd>& y, Eigen::Index rows);

// e = −∂V/∂x (per example) for the target the drive holds now; zero when the segment has none.
void target_error(Loss loss, const Drive& drive, const Eigen::Ref<const Eigen::MatrixXd>& x,
                  Eigen::Ref<Eigen::MatrixXd> e);
// The mean loss of the batch against the drive's target (NaN without one).
double target_loss(Loss loss, const Drive& drive, const Eigen::Ref<const Eigen::MatrixXd>& x);

class ExactBackprop {
 public:
  // `error_rows`: the leading outputs that carry the loss (−1: all).
  ExactBackprop(const Network& network, double c, Loss loss, Eigen::Index error_rows = -1);

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
    std::vector<Eigen::VectorXd> x;            // the settled activity per population
    std::vector<Eigen::VectorXd> lambda;       // per population (empty for inputs)
    std::vector<Eigen::VectorXd> weights;      // −∂V/∂W_q in the layout of the weight values
    std::vector<Eigen::VectorXd> biases;       // −∂V/∂b_p (empty for inputs)
  };
  Gradient gradient(std::span<const WeightView> w, std::span<const Eigen::VectorXd> b,
                    const Eigen::VectorXd& u, const Eigen::VectorXd& y,
                    const Eigen::VectorXd& guess = {}) const;

  // The output activity (output populations concatenated) of a settled network.
  Eigen::VectorXd output(const Settled& settled) const;

  // The same for a batch of inputs (n_in×B, one column per example): x and a per population as
  // n×B; on a DAG one batched forward pass, on a cyclic graph Newton's method per example.
  struct SettledBatch {
    bool converged = false;
    std::vector<Eigen::MatrixXd> x, a;
  };
  SettledBatch settle_batch(std::span<const WeightView> w, std::span<const Eigen::VectorXd> b,
                            const Eigen::Ref<const Eigen::MatrixXd>& u) const;
  Eigen::MatrixXd output(const SettledBatch& settled) const;  // outputs×B
  // The gradient of the batch's mean loss (gradients in the layouts of Gradient; lambda per
  // population n×B). On a DAG a batched backward pass, on a cyclic graph the mean of the
  // per-example gradients.
  struct BatchGradient {
    bool converged = false;
    double loss = 0.0;                      // mean V over the batch
    std::vector<Eigen::MatrixXd> x;         // the settled activity per population, n×B
    std::vector<Eigen::MatrixXd> lambda;    // per population, n×B (empty for inputs)
    std::vector<Eigen::VectorXd> weights;   // −∂(mean V)/∂W_q
    std::vector<Eigen::VectorXd> biases;    // −∂(mean V)/∂b_p (empty for inputs)
  };
  BatchGradient gradient_batch(std::span<const WeightView> w, std::span<const Eigen::VectorXd> b,
                               const Eigen::Ref<const Eigen::MatrixXd>& u,
                               const Eigen::Ref<const Eigen::MatrixXd>& y) const;

 private:
  const Network* network_;
  double c_;
  Loss loss_;
  Eigen::Index error_rows_;
  bool acyclic_ = true;
  std::vector<std::size_t> order_;        // topological order of non-input populations (DAG)
  std::vector<Eigen::Index> offset_;      // offset of each non-input population in the
  Eigen::Index state_size_ = 0;           // concatenated vector (−1 for inputs)
  std::vector<Eigen::Index> input_offset_;

  Eigen::MatrixXd assemble(std::span<const WeightView> w) const;  // dense W over non-inputs
};

}  // namespace lf
