#pragma once
// The shared neuron code of every model: which populations are inputs (clamped to the input)
// and which carry per-example state blocks (n×B, one column per example of the batch), the
// projections into and out of each population, where each population's rows sit among the
// non-input neurons (for scratch matrices indexed like the neurons), the one forward kernel
// a_p = b_p + Σ_{q→p} W_q x_from(q) on a batch, and a fixed partition of neuron rows into chunks
// for parallel work. The partition depends only on the network and the batch, never on the
// thread count, so every row is computed by the same operations whatever the number of threads.
#include <optional>
#include <vector>

#include "models/projection_ops.hpp"
#include "sim/core/layout.hpp"
#include "sim/core/network.hpp"
#include "sim/core/threads.hpp"

namespace lf {

class NeuronIndex {
 public:
  struct RowChunk {
    std::size_t population;
    Eigen::Index row_begin;
    Eigen::Index row_end;
    Eigen::Index size() const { return row_end - row_begin; }
  };

  // Adds a per-example block "<kind>/<population>" (n×B, B = layout.examples()) to `layout` for
  // every non-input population.
  NeuronIndex(const Network& network, StateLayout& layout, const std::string& kind);

  bool is_input(std::size_t p) const { return input_offset_[p] >= 0; }
  BlockId block(std::size_t p) const { return block_[p]; }
  const std::vector<std::size_t>& incoming(std::size_t p) const { return incoming_[p]; }
  const std::vector<std::size_t>& outgoing(std::size_t p) const { return outgoing_[p]; }
  const std::vector<RowChunk>& chunks() const { return chunks_; }
  // Multiply-adds of one pass over all weights for the whole batch: decides whether a parallel
  // region pays.
  Eigen::Index work() const { return work_; }
  Eigen::Index examples() const { return examples_; }  // B
  // Non-input neurons, and the row of population p's first neuron among them: scratch matrices
  // (neurons() × B) hold population p in rows offset(p) … offset(p) + size − 1.
  Eigen::Index neurons() const { return neurons_; }
  Eigen::Index offset(std::size_t p) const { return offset_[p]; }
  // Output neurons, and the row of output population p among them (its errors' rows).
  Eigen::Index outputs() const { return outputs_; }
  Eigen::Index output_offset(std::size_t p) const { return output_offset_[p]; }

  // Activity of population p (n×B): its rows of the input u (n_in×B) for inputs, else its state
  // block.
  ConstBatchView activity(const StateLayout& layout, const State& s, const Eigen::MatrixXd& u,
                          std::size_t p) const;

  // The activity of the output populations in state s (outputs()×B), in declaration order.
  void gather_outputs(const StateLayout& layout, const State& s, Eigen::Ref<Eigen::MatrixXd> out) const;

  // The forward kernel: a = b_p 1ᵀ + Σ_{q→p} W_q x_from(q) over the rows of `chunk` for every
  // example (a: rows×B), projections summed in declaration order. `weights(k)` gives the
  // WeightView of projection k, `bias(p)` the biases of p, and `activity(p)` the n×B activity of
  // population p.
  template <class Weights, class Bias, class Activity>
  void preactivation(const RowChunk& chunk, Weights&& weights, Bias&& bias, Activity&& activity,
                     Eigen::Ref<Eigen::MatrixXd> a) const;

 private:
  const Network* network_;
  std::vector<Eigen::Index> input_offset_;  // −1 for non-inputs
  std::vector<Eigen::Index> offset_;        // among the non-input neurons (−1 for inputs)
  std::vector<Eigen::Index> output_offset_; // among the output neurons (−1 for others)
  Eigen::Index neurons_ = 0, outputs_ = 0, examples_ = 1;
  std::vector<BlockId> block_;
  std::vector<std::vector<std::size_t>> incoming_, outgoing_;
  std::vector<RowChunk> chunks_;
  Eigen::Index work_ = 0;
};

template <class Weights, class Bias, class Activity>
void NeuronIndex::preactivation(const RowChunk& chunk, Weights&& weights, Bias&& bias,
                                Activity&& activity, Eigen::Ref<Eigen::MatrixXd> a) const {
  const std::size_t p = chunk.population;
  a.colwise() = bias(p).segment(chunk.row_begin, chunk.size());
  for (const std::size_t k : incoming_[p]) {
    add_rows_times(weights(k), chunk.row_begin, chunk.size(),
                   activity(network_->projections[k].from), a);
  }
}

// The parameters a model learns on the network's populations: the weights of the plastic
// projections (shared blocks W/<projection>, dense row-major or the CSR values) and, with
// `plastic_bias`, the biases of the populations they project into (b/<population>); and views of
// every projection's and population's current parameters — from the state where learned, else
// the network's own.
class PlasticParameters {
 public:
  PlasticParameters(const Network& network, StateLayout& layout, bool plastic_bias);

  const std::optional<BlockId>& weight_block(std::size_t k) const { return weight_block_[k]; }
  const std::optional<BlockId>& bias_block(std::size_t p) const { return bias_block_[p]; }
  // Writes the network's initial values into the learned blocks of s.
  void initial_state(const StateLayout& layout, State& s) const;
  WeightView weights(const StateLayout& layout, const State& s, std::size_t k) const;
  Eigen::Map<const Eigen::VectorXd> bias(const StateLayout& layout, const State& s, std::size_t p) const;
  // Every projection's weights and every population's biases (one entry each).
  std::vector<WeightView> weights(const StateLayout& layout, const State& s) const;
  std::vector<Eigen::VectorXd> biases(const StateLayout& layout, const State& s) const;

 private:
  const Network* network_;
  std::vector<std::optional<BlockId>> weight_block_;  // per projection
  std::vector<std::optional<BlockId>> bias_block_;    // per population
};

// Below this many multiply-adds per RHS a parallel region costs more than it saves.
inline constexpr Eigen::Index parallel_min_work = 32768;

// body(i) for every i < n: in a parallel loop when `parallel` and more than one thread is
// available, else in order with no OpenMP construct at all (an inactive region still costs a
// futex; a one-thread region made P1 (L = 8, n = 256) ~10% slower). Both paths do the same work
// for each i, so when the bodies write disjoint outputs the bits do not depend on the path. The
// chunks are handed out one at a time (dynamic schedule): their work differs (a 784-input layer's
// rows cost three times a 256-input layer's), and which thread computes a chunk does not change
// its bits.
template <class Body>
void for_each_chunk(bool parallel, std::size_t n, Body&& body) {
  const int threads = thread_count();
  if (parallel && threads > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (std::size_t i = 0; i < n; ++i) body(i);
  } else {
    for (std::size_t i = 0; i < n; ++i) body(i);
  }
}

}  // namespace lf
