#include "models/leaky.hpp"

#include "models/projection_ops.hpp"

namespace lf {

LeakyModel::LeakyModel(const Network& network, const LeakyParams& params, const Drive& drive)
    : network_(&network), params_(params), drive_(&drive), layout_(drive.signal().batch_shape()),
      neurons_(network, layout_, "x") {
  parallel_ = neurons_.work() >= parallel_min_work && neurons_.chunks().size() > 1;
  preactivation_.resize(neurons_.neurons(), neurons_.examples());
}

void LeakyModel::initial_state(State& s) const { std::fill(s.begin(), s.end(), 0.0); }

void LeakyModel::rhs(const State& s, State& ds, double t) const {
  const Eigen::MatrixXd& u = drive_->at(t);
  const double c = params_.c;
  const double inv_tau = 1.0 / params_.tau;
  const auto& chunks = neurons_.chunks();

  auto relax_chunk = [&](std::size_t i) {
    const NeuronIndex::RowChunk& chunk = chunks[i];
    const std::size_t p = chunk.population;
    const Eigen::Index r0 = chunk.row_begin, len = chunk.size();
    const BlockId block = neurons_.block(p);
    auto a = preactivation_.middleRows(neurons_.offset(p) + r0, len);

    neurons_.preactivation(
        chunk, [&](std::size_t k) { return network_weights(*network_, k); },
        [&](std::size_t q) -> const Eigen::VectorXd& { return network_->bias[q]; },
        [&](std::size_t q) { return neurons_.activity(layout_, s, u, q); }, a);
    activate(network_->populations[p].activation, a, a);
    const auto x = layout_.examples(s, block).middleRows(r0, len);
    auto dx = layout_.examples(ds, block).middleRows(r0, len);
    dx = inv_tau * (a - c * x);
  };
  for_each_chunk(parallel_, chunks.size(), relax_chunk);
}

}  // namespace lf
