#include "models/neurons.hpp"

namespace lf {
namespace {
// Rows of one chunk: the unit of parallel work, and of per-chunk overhead (a GEMV call, the
// activation, the leak). 256 rather than 64 made a leaky RHS of P1 (L = 8, n = 256) ~3% faster,
// with bit-identical results (Eigen's row-major GEMV computes each row alike, whatever the rows
// around it); populations of up to 256 neurons are then one chunk each.
constexpr Eigen::Index rows_per_chunk = 256;
// With a batch a chunk is a matrix-matrix product of its rows: 64 rows × B examples is still a
// product worth its call, and a 256-wide population then splits into chunks the threads can
// share (one chunk per population left one thread idle on 784-256-256-10). The partition is
// fixed by the network and B, so the bits still do not depend on the thread count.
constexpr Eigen::Index rows_per_batched_chunk = 64;
}

NeuronIndex::NeuronIndex(const Network& network, StateLayout& layout, const std::string& kind)
    : network_(&network), examples_(layout.examples()) {
  const auto& pops = network.populations;
  Eigen::Index input_offset = 0;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    output_offset_.push_back(pops[p].role == Role::output ? outputs_ : -1);
    if (pops[p].role == Role::output) outputs_ += pops[p].size;
    if (pops[p].role == Role::input) {
      input_offset_.push_back(input_offset);
      offset_.push_back(-1);
      input_offset += pops[p].size;
      block_.push_back(0);
    } else {
      input_offset_.push_back(-1);
      offset_.push_back(neurons_);
      neurons_ += pops[p].size;
      block_.push_back(layout.add_per_example(kind, pops[p].name, pops[p].size));
    }
    incoming_.push_back(network.incoming(p));
    outgoing_.emplace_back();
  }
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    const Projection& proj = network.projections[k];
    outgoing_[proj.from].push_back(k);
    work_ += (proj.sparse ? proj.csr.nonZeros() : proj.dense.size()) * examples_;
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (is_input(p)) continue;
    const Eigen::Index rows = examples_ == 1 ? rows_per_chunk : rows_per_batched_chunk;
    for (Eigen::Index r = 0; r < pops[p].size; r += rows) {
      chunks_.push_back({p, r, std::min(r + rows, pops[p].size)});
    }
  }
}

ConstBatchView NeuronIndex::activity(const StateLayout& layout, const State& s,
                                     const Eigen::MatrixXd& u, std::size_t p) const {
  if (is_input(p)) {
    return {u.data() + input_offset_[p], network_->populations[p].size, u.cols(),
            Eigen::OuterStride<>(u.rows())};
  }
  return layout.examples(s, block_[p]);
}

void NeuronIndex::gather_outputs(const StateLayout& layout, const State& s,
                                 Eigen::Ref<Eigen::MatrixXd> out) const {
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (output_offset_[p] < 0) continue;
    out.middleRows(output_offset_[p], network_->populations[p].size) = layout.examples(s, block_[p]);
  }
}

PlasticParameters::PlasticParameters(const Network& network, StateLayout& layout, bool plastic_bias)
    : network_(&network) {
  const auto& pops = network.populations;
  std::vector<bool> plastic_input(pops.size(), false);
  for (const Projection& q : network.projections) {
    if (!q.plastic) {
      weight_block_.emplace_back();
      continue;
    }
    plastic_input[q.to] = true;
    const std::vector<Eigen::Index> shape =
        q.sparse ? std::vector<Eigen::Index>{q.csr.nonZeros()} : std::vector<Eigen::Index>{q.rows(), q.cols()};
    weight_block_.emplace_back(layout.add("W", q.name, shape));
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (plastic_bias && plastic_input[p]) {
      bias_block_.emplace_back(layout.add("b", pops[p].name, {pops[p].size}));
    } else {
      bias_block_.emplace_back();
    }
  }
}

void PlasticParameters::initial_state(const StateLayout& layout, State& s) const {
  for (std::size_t k = 0; k < weight_block_.size(); ++k) {
    if (!weight_block_[k]) continue;
    const WeightView w = network_weights(*network_, k);
    layout.vector(s, *weight_block_[k]) = Eigen::Map<const Eigen::VectorXd>(w.values, w.size());
  }
  for (std::size_t p = 0; p < bias_block_.size(); ++p) {
    if (bias_block_[p]) layout.vector(s, *bias_block_[p]) = network_->bias[p];
  }
}

WeightView PlasticParameters::weights(const StateLayout& layout, const State& s, std::size_t k) const {
  if (weight_block_[k]) return {&network_->projections[k], s.data() + layout.block(*weight_block_[k]).offset};
  return network_weights(*network_, k);
}

Eigen::Map<const Eigen::VectorXd> PlasticParameters::bias(const StateLayout& layout, const State& s,
                                                          std::size_t p) const {
  if (bias_block_[p]) return layout.vector(s, *bias_block_[p]);
  return {network_->bias[p].data(), network_->bias[p].size()};
}

std::vector<WeightView> PlasticParameters::weights(const StateLayout& layout, const State& s) const {
  std::vector<WeightView> w;
  for (std::size_t k = 0; k < network_->projections.size(); ++k) w.push_back(weights(layout, s, k));
  return w;
}

std::vector<Eigen::VectorXd> PlasticParameters::biases(const StateLayout& layout, const State& s) const {
  std::vector<Eigen::VectorXd> b;
  for (std::size_t p = 0; p < network_->populations.size(); ++p) b.emplace_back(bias(layout, s, p));
  return b;
}

}  // namespace lf
