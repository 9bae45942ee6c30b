#include "models/leaky.hpp"

#include <cassert>

namespace lf {
namespace {

constexpr Eigen::Index rows_per_chunk = 64;
// Below this many multiply-adds per RHS a parallel region costs more than it saves.
constexpr Eigen::Index parallel_min_work = 32768;

}  // namespace

LeakyModel::LeakyModel(const Network& network, const LeakyParams& params, const Drive& drive)
    : network_(&network), params_(params), drive_(&drive) {
  const auto& pops = network.populations;
  Eigen::Index input_offset = 0;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    Source src;
    if (pops[p].role == Role::input) {
      src.is_input = true;
      src.input_offset = input_offset;
      input_offset += pops[p].size;
      block_of_population_.push_back(0);
    } else {
      src.block = layout_.add("x", pops[p].name, {pops[p].size});
      block_of_population_.push_back(src.block);
    }
    source_of_population_.push_back(src);
    incoming_.push_back(network.incoming(p));
  }
  assert(input_offset == drive.signal().size() || drive.signal().size() == 0);

  Eigen::Index work = 0;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role == Role::input) continue;
    for (Eigen::Index r = 0; r < pops[p].size; r += rows_per_chunk) {
      chunks_.push_back({p, r, std::min(r + rows_per_chunk, pops[p].size)});
    }
    for (const std::size_t k : incoming_[p]) {
      const Projection& proj = network.projections[k];
      work += proj.sparse ? proj.csr.nonZeros() : proj.dense.size();
    }
  }
  parallel_ = work >= parallel_min_work && chunks_.size() > 1;
  preactivation_.resize(layout_.size());
}

void LeakyModel::initial_state(State& s) const { std::fill(s.begin(), s.end(), 0.0); }

void LeakyModel::rhs(const State& s, State& ds, double t) const {
  const Eigen::VectorXd& u = drive_->at(t);
  const double c = params_.c;
  const double inv_tau = 1.0 / params_.tau;

#pragma omp parallel for schedule(static) if (parallel_)
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    const RowChunk& chunk = chunks_[i];
    const std::size_t p = chunk.population;
    const Eigen::Index r0 = chunk.row_begin, len = chunk.row_end - chunk.row_begin;
    const Block& block = layout_.block(block_of_population_[p]);
    auto a = preactivation_.segment(block.offset + r0, len);

    // a = b + Σ W x_src, projections summed in declaration order.
    a = network_->bias[p].segment(r0, len);
    for (const std::size_t k : incoming_[p]) {
      const Projection& proj = network_->projections[k];
      const Source& src = source_of_population_[proj.from];
      const Eigen::Map<const Eigen::VectorXd> x_src =
          src.is_input ? Eigen::Map<const Eigen::VectorXd>(u.data() + src.input_offset, proj.cols())
                       : layout_.vector(s, src.block);
      if (proj.sparse) {
        a.noalias() += proj.csr.middleRows(r0, len) * x_src;
      } else {
        a.noalias() += proj.dense.middleRows(r0, len) * x_src;
      }
    }
    activate(network_->populations[p].activation, a, a);
    const auto x = layout_.vector(s, block_of_population_[p]).segment(r0, len);
    auto dx = layout_.vector(ds, block_of_population_[p]).segment(r0, len);
    dx = inv_tau * (a - c * x);
  }
}

}  // namespace lf
