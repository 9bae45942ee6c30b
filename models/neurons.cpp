#include "models/neurons.hpp"

namespace lf {
namespace {
// Rows of one chunk: the unit of parallel work, and of per-chunk overhead (a GEMV call, the
// activation, the leak). 256 rather than 64 made a leaky RHS of P1 (L = 8, n = 256) ~3% faster,
// with bit-identical results (Eigen's row-major GEMV computes each row alike, whatever the rows
// around it); populations of up to 256 neurons are then one chunk each.
constexpr Eigen::Index rows_per_chunk = 256;
}

NeuronIndex::NeuronIndex(const Network& network, StateLayout& layout, const std::string& kind)
    : network_(&network) {
  const auto& pops = network.populations;
  Eigen::Index input_offset = 0;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role == Role::input) {
      input_offset_.push_back(input_offset);
      input_offset += pops[p].size;
      block_.push_back(0);
    } else {
      input_offset_.push_back(-1);
      block_.push_back(layout.add(kind, pops[p].name, {pops[p].size}));
    }
    incoming_.push_back(network.incoming(p));
    outgoing_.emplace_back();
  }
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    const Projection& proj = network.projections[k];
    outgoing_[proj.from].push_back(k);
    work_ += proj.sparse ? proj.csr.nonZeros() : proj.dense.size();
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (is_input(p)) continue;
    for (Eigen::Index r = 0; r < pops[p].size; r += rows_per_chunk) {
      chunks_.push_back({p, r, std::min(r + rows_per_chunk, pops[p].size)});
    }
  }
}

Eigen::Map<const Eigen::VectorXd> NeuronIndex::activity(const StateLayout& layout, const State& s,
                                                        const Eigen::VectorXd& u,
                                                        std::size_t p) const {
  if (is_input(p)) return {u.data() + input_offset_[p], network_->populations[p].size};
  return layout.vector(s, block_[p]);
}

void NeuronIndex::gather_outputs(const StateLayout& layout, const State& s,
                                 Eigen::Ref<Eigen::VectorXd> out) const {
  Eigen::Index at = 0;
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (network_->populations[p].role != Role::output) continue;
    const auto x = layout.vector(s, block_[p]);
    out.segment(at, x.size()) = x;
    at += x.size();
  }
}

}  // namespace lf
