#pragma once
// Bookkeeping shared by the models whose neurons are leaky units on the network's populations:
// which populations are inputs (clamped to the input vector) and which carry state blocks, the
// projections into each population, and a fixed partition of neuron rows into chunks for
// parallel work. The partition depends only on the network, never on the thread count, so every
// row is computed by the same operations whatever the number of threads.
#include <omp.h>

#include <vector>

#include "models/projection_ops.hpp"
#include "sim/core/layout.hpp"
#include "sim/core/network.hpp"

namespace lf {

class NeuronIndex {
 public:
  struct RowChunk {
    std::size_t population;
    Eigen::Index row_begin;
    Eigen::Index row_end;
    Eigen::Index size() const { return row_end - row_begin; }
  };

  // Adds a block "<kind>/<population>" to `layout` for every non-input population.
  NeuronIndex(const Network& network, StateLayout& layout, const std::string& kind);

  bool is_input(std::size_t p) const { return input_offset_[p] >= 0; }
  BlockId block(std::size_t p) const { return block_[p]; }
  const std::vector<std::size_t>& incoming(std::size_t p) const { return incoming_[p]; }
  const std::vector<std::size_t>& outgoing(std::size_t p) const { return outgoing_[p]; }
  const std::vector<RowChunk>& chunks() const { return chunks_; }
  // Multiply-adds of one pass over all weights: decides whether a parallel region pays.
  Eigen::Index work() const { return work_; }

  // Activity of population p: a slice of the input u for inputs, else its state block.
  Eigen::Map<const Eigen::VectorXd> activity(const StateLayout& layout, const State& s,
                                             const Eigen::VectorXd& u, std::size_t p) const;

  // The activity of the output populations in state s, concatenated in declaration order.
  void gather_outputs(const StateLayout& layout, const State& s, Eigen::Ref<Eigen::VectorXd> out) const;

  // a = b_p + Σ_{q→p} W_q x_from(q) over the rows of `chunk`, projections summed in declaration
  // order. `weights(k)` gives the WeightView of projection k, `bias(p)` the biases of p, and
  // `activity(p)` the activity of population p.
  template <class Weights, class Bias, class Activity>
  void preactivation(const RowChunk& chunk, Weights&& weights, Bias&& bias, Activity&& activity,
                     Eigen::Ref<Eigen::VectorXd> a) const;

 private:
  const Network* network_;
  std::vector<Eigen::Index> input_offset_;  // −1 for non-inputs
  std::vector<BlockId> block_;
  std::vector<std::vector<std::size_t>> incoming_, outgoing_;
  std::vector<RowChunk> chunks_;
  Eigen::Index work_ = 0;
};

template <class Weights, class Bias, class Activity>
void NeuronIndex::preactivation(const RowChunk& chunk, Weights&& weights, Bias&& bias,
                                Activity&& activity, Eigen::Ref<Eigen::VectorXd> a) const {
  const std::size_t p = chunk.population;
  a = bias(p).segment(chunk.row_begin, chunk.size());
  for (const std::size_t k : incoming_[p]) {
    add_rows_times(weights(k), chunk.row_begin, chunk.size(),
                   activity(network_->projections[k].from), a);
  }
}

// Below this many multiply-adds per RHS a parallel region costs more than it saves.
inline constexpr Eigen::Index parallel_min_work = 32768;

// body(i) for every i < n: in a parallel loop when `parallel` and more than one thread is
// available, else in order with no OpenMP construct at all (an inactive region still costs a
// futex; a one-thread region made P1 (L = 8, n = 256) ~10% slower). Both paths do the same work
// for each i, so when the bodies write disjoint outputs the bits do not depend on the path.
template <class Body>
void for_each_chunk(bool parallel, std::size_t n, Body&& body) {
  if (parallel && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i) body(i);
  } else {
    for (std::size_t i = 0; i < n; ++i) body(i);
  }
}

}  // namespace lf
