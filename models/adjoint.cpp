#include "models/adjoint.hpp"

#include "sim/core/errors.hpp"

#include <algorithm>
#include <array>
#include <cassert>

#include "models/backprop.hpp"
#include "models/projection_ops.hpp"

namespace lf {

// ---------------------------------------------------------------------------------------------
// TrajectoryStore

TrajectoryStore::TrajectoryStore(std::size_t segments, Eigen::Index size)
    : segments_(segments), size_(size) {}

void TrajectoryStore::add(std::size_t segment, double t, const double* x, const double* dxdt) {
  Segment& seg = segments_[segment];
  if (!seg.t.empty() && t <= seg.t.back()) return;  // a repeated knot (segment start and step)
  seg.t.push_back(t);
  seg.x.insert(seg.x.end(), x, x + size_);
  seg.f.insert(seg.f.end(), dxdt, dxdt + size_);
}

void TrajectoryStore::interpolate(std::size_t segment, double t,
                                  Eigen::Ref<Eigen::VectorXd> out) const {
  const Segment& seg = segments_[segment];
  assert(!seg.t.empty());
  const auto n = static_cast<std::ptrdiff_t>(seg.t.size());
  // The knot interval [t_i, t_{i+1}] holding t (clamped to the segment's knots).
  std::ptrdiff_t i = std::upper_bound(seg.t.begin(), seg.t.end(), t) - seg.t.begin() - 1;
  i = std::clamp<std::ptrdiff_t>(i, 0, std::max<std::ptrdiff_t>(n - 2, 0));
  using Map = Eigen::Map<const Eigen::VectorXd>;
  const Map x0(seg.x.data() + i * size_, size_), f0(seg.f.data() + i * size_, size_);
  if (n == 1 || t <= seg.t[i]) {
    out = x0;
    return;
  }
  const Map x1(seg.x.data() + (i + 1) * size_, size_), f1(seg.f.data() + (i + 1) * size_, size_);
  const double h = seg.t[i + 1] - seg.t[i];
  const double th = std::min((t - seg.t[i]) / h, 1.0);
  // Cubic Hermite basis: matches x and ẋ at both knots; error O(h⁴).
  const double h00 = (1 + 2 * th) * (1 - th) * (1 - th), h10 = th * (1 - th) * (1 - th);
  const double h01 = th * th * (3 - 2 * th), h11 = th * th * (th - 1);
  out = h00 * x0 + (h10 * h) * f0 + h01 * x1 + (h11 * h) * f1;
}

void TrajectoryStore::save(Snapshot& out) const {
  std::vector<std::vector<double>> t, x, f;
  for (const Segment& seg : segments_) {
    t.push_back(seg.t);
    x.push_back(seg.x);
    f.push_back(seg.f);
  }
  out.put_nested("adjoint/store/t", t);
  out.put_nested("adjoint/store/x", x);
  out.put_nested("adjoint/store/f", f);
}

void TrajectoryStore::restore(const Snapshot& in) {
  auto t = in.nested("adjoint/store/t"), x = in.nested("adjoint/store/x"), f = in.nested("adjoint/store/f");
  if (t.size() != segments_.size() || x.size() != t.size() || f.size() != t.size()) {
    throw InputError("the checkpoint's forward trajectory does not match this run's schedule");
  }
  for (std::size_t k = 0; k < segments_.size(); ++k) {
    segments_[k].t = std::move(t[k]);
    segments_[k].x = std::move(x[k]);
    segments_[k].f = std::move(f[k]);
  }
}

std::size_t TrajectoryStore::knots() const {
  std::size_t n = 0;
  for (const Segment& s : segments_) n += s.t.size();
  return n;
}

std::size_t TrajectoryStore::bytes() const {
  return knots() * (1 + 2 * static_cast<std::size_t>(size_)) * sizeof(double);
}

// ---------------------------------------------------------------------------------------------
// Forward pass

AdjointForwardModel::AdjointForwardModel(const Network& network, const CostateParams& params,
                                         const Drive& drive)
    : network_(&network), params_(params), drive_(&drive), layout_(drive.signal().batch_shape()),
      x_(network, layout_, "x") {
  // The x blocks are the first blocks of the layout: the trajectory store keeps the state's
  // first neuron_count() values.
  neuron_count_ = layout_.size();
  integral_ = layout_.add("integral", "loss", {1});
  parallel_ = x_.work() >= parallel_min_work && x_.chunks().size() > 1;
  preactivation_.resize(x_.neurons(), x_.examples());
  output_x_.resize(x_.outputs(), x_.examples());
}

void AdjointForwardModel::initial_state(State& s) const { std::fill(s.begin(), s.end(), 0.0); }

double AdjointForwardModel::loss(const State& s) const {
  if (!drive_->has_target()) return 0.0;
  x_.gather_outputs(layout_, s, output_x_);
  return target_loss(params_.loss, *drive_, output_x_);
}

void AdjointForwardModel::rhs(const State& s, State& ds, double t) const {
  const Eigen::MatrixXd& u = drive_->at(t);
  const double inv_tau = 1.0 / params_.tau_x;
  const auto& chunks = x_.chunks();
  for_each_chunk(parallel_, chunks.size(), [&](std::size_t i) {
    const NeuronIndex::RowChunk& chunk = chunks[i];
    const BlockId block = x_.block(chunk.population);
    auto a = preactivation_.middleRows(x_.offset(chunk.population) + chunk.row_begin, chunk.size());
    x_.preactivation(
        chunk, [&](std::size_t k) { return network_weights(*network_, k); },
        [&](std::size_t q) -> const Eigen::VectorXd& { return network_->bias[q]; },
        [&](std::size_t q) { return x_.activity(layout_, s, u, q); }, a);
    activate(network_->populations[chunk.population].activation, a, a);
    layout_.examples(ds, block).middleRows(chunk.row_begin, chunk.size()) =
        inv_tau * (a - params_.c * layout_.examples(s, block).middleRows(chunk.row_begin, chunk.size()));
  });
  layout_.vector(ds, integral_)[0] = loss(s);  // J̇ = V(x)
}

void AdjointForwardModel::metrics(const State& s, double, std::span<double> out) const {
  out[0] = drive_->has_target() ? loss(s) : std::numeric_limits<double>::quiet_NaN();
}

// ---------------------------------------------------------------------------------------------
// Backward sweep

AdjointBackwardModel::AdjointBackwardModel(const Network& network, const CostateParams& params,
                                           const Drive& reversed_drive,
                                           const TrajectoryStore& forward,
                                           const NeuronIndex& forward_neurons,
                                           const StateLayout& forward_layout)
    : network_(&network), params_(params), drive_(&reversed_drive), forward_(&forward),
      fx_(&forward_neurons), forward_layout_(&forward_layout),
      layout_(reversed_drive.signal().batch_shape()), lambda_(network, layout_, "lambda") {
  const auto& bounds = reversed_drive.signal().boundaries();
  time_sum_ = bounds.front() + bounds.back();
  x_.resize(static_cast<std::size_t>(forward_layout.size()));
  derivative_.resize(lambda_.neurons(), lambda_.examples());
  delta_.resize(lambda_.neurons(), lambda_.examples());
  output_x_.resize(lambda_.outputs(), lambda_.examples());
  output_e_.resize(lambda_.outputs(), lambda_.examples());
  // Weight-gradient work items: every row chunk of every projection's target population.
  const auto& chunks = lambda_.chunks();
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    for (std::size_t c = 0; c < chunks.size(); ++c) {
      if (chunks[c].population == network.projections[k].to) gradient_chunks_.emplace_back(k, c);
    }
  }
  parallel_ = forward_neurons.work() >= parallel_min_work && chunks.size() > 1;
  const Eigen::Index batch = lambda_.examples();
  node_delta_.resize(lambda_.neurons(), quadrature_nodes * batch);
  for (const Population& p : network.populations) {
    node_activity_.emplace_back(p.size, quadrature_nodes * batch);
  }
  node_lambda_.resize(static_cast<std::size_t>(layout_.size()));
}

AdjointGradients AdjointBackwardModel::zero_gradients() const {
  AdjointGradients g;
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    g.weight.push_back(Eigen::VectorXd::Zero(network_weights(*network_, k).size()));
  }
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    g.bias.push_back(lambda_.is_input(p) ? Eigen::VectorXd()
                                         : Eigen::VectorXd::Zero(network_->populations[p].size));
  }
  return g;
}

void AdjointBackwardModel::initial_state(State& s) const { std::fill(s.begin(), s.end(), 0.0); }

void AdjointBackwardModel::costate_delta(double sigma, const double* lambda,
                                         Eigen::Ref<Eigen::MatrixXd> delta) const {
  const auto& pops = network_->populations;
  const double t = time_sum_ - sigma;
  const std::size_t segment = drive_->signal().segments() - 1 - drive_->segment();
  forward_->interpolate(segment, t, Eigen::Map<Eigen::VectorXd>(x_.data(), derivative_.size()));
  const Eigen::MatrixXd& u = drive_->at(sigma);
  auto offset = [&](std::size_t p) { return lambda_.offset(p); };
  const Eigen::Map<const Eigen::VectorXd> all(lambda, layout_.size());
  // δ = σ'(a(x)) ⊙ λ, chunk by chunk of the forward neurons.
  const auto& forward_chunks = fx_->chunks();
  for_each_chunk(parallel_, forward_chunks.size(), [&](std::size_t i) {
    const NeuronIndex::RowChunk& chunk = forward_chunks[i];
    const std::size_t p = chunk.population;
    auto d = derivative_.middleRows(offset(p) + chunk.row_begin, chunk.size());
    fx_->preactivation(
        chunk, [&](std::size_t k) { return network_weights(*network_, k); },
        [&](std::size_t q) -> const Eigen::VectorXd& { return network_->bias[q]; },
        [&](std::size_t q) { return fx_->activity(*forward_layout_, x_, u, q); }, d);
    activate_derivative(pops[p].activation, d, d);
    const Block& b = layout_.block(lambda_.block(p));
    const Eigen::Map<const Eigen::MatrixXd> l(all.data() + b.offset, pops[p].size, lambda_.examples());
    delta.middleRows(offset(p) + chunk.row_begin, chunk.size()) =
        d.cwiseProduct(l.middleRows(chunk.row_begin, chunk.size()));
  });
}

void AdjointBackwardModel::rhs(const State& s, State& ds, double sigma) const {
  const auto& pops = network_->populations;
  costate_delta(sigma, s.data(), delta_);  // also leaves x(t) in x_
  const double inv_tau = 1.0 / params_.tau_x;
  auto offset = [&](std::size_t p) { return lambda_.offset(p); };
  // e = −∂V/∂x on the outputs, at the forward x(t).
  fx_->gather_outputs(*forward_layout_, x_, output_x_);
  target_error(params_.loss, *drive_, output_x_, output_e_);

  // τ λ̇ = Σ_k W_kᵀ δ_to(k) − c λ (+ e on the outputs), by row chunks of λ (columns of the W_k):
  // disjoint outputs.
  const auto& costate_chunks = lambda_.chunks();
  auto costate_chunk = [&](std::size_t i) {
    const NeuronIndex::RowChunk& chunk = costate_chunks[i];
    const std::size_t p = chunk.population;
    const Eigen::Index r0 = chunk.row_begin, len = chunk.size();
    auto dl = layout_.examples(ds, lambda_.block(p)).middleRows(r0, len);
    dl.setZero();
    for (const std::size_t k : lambda_.outgoing(p)) {
      const std::size_t to = network_->projections[k].to;
      add_columns_transposed_times(network_weights(*network_, k), r0, len,
                                   delta_.middleRows(offset(to), pops[to].size), dl);
    }
    dl = inv_tau * (dl - params_.c * layout_.examples(s, lambda_.block(p)).middleRows(r0, len));
    if (pops[p].role == Role::output) dl += output_e_.middleRows(lambda_.output_offset(p) + r0, len);
  };
  for_each_chunk(parallel_, costate_chunks.size(), costate_chunk);
}

void AdjointBackwardModel::add_step_integrals(double s0, double s1, const LambdaAt& lambda_at,
                                              AdjointGradients& g) const {
  const double h = s1 - s0;
  if (!(h > 0.0)) return;
  // Gauss–Legendre with 3 nodes on [0, 1]: exact for polynomials of degree 5.
  static constexpr double r = 0.38729833462074168852;  // √15 / 10
  static constexpr std::array<double, quadrature_nodes> node{0.5 - r, 0.5, 0.5 + r};
  static constexpr std::array<double, quadrature_nodes> weight{5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0};
  const auto& pops = network_->populations;
  const Eigen::Index batch = lambda_.examples();
  for (std::size_t i = 0; i < quadrature_nodes; ++i) {
    const double sigma = s0 + node[i] * h;
    lambda_at(sigma, node_lambda_);
    auto d = node_delta_.middleCols(static_cast<Eigen::Index>(i) * batch, batch);
    costate_delta(sigma, node_lambda_.data(), d);
    d *= weight[i];
    const Eigen::MatrixXd& u = drive_->at(sigma);
    for (std::size_t p = 0; p < pops.size(); ++p) {
      node_activity_[p].middleCols(static_cast<Eigen::Index>(i) * batch, batch) =
          fx_->activity(*forward_layout_, x_, u, p);
    }
  }
  // ∫ over the step of (1/τ) δ x_fromᵀ, the batch mean: h/(τ B) Σ_i w_i δ_i x_iᵀ, one product of
  // the nodes side by side per row chunk (disjoint outputs).
  const double scale = h / (params_.tau_x * static_cast<double>(batch));
  const auto& costate_chunks = lambda_.chunks();
  auto offset = [&](std::size_t p) { return lambda_.offset(p); };
  auto gradient_chunk = [&](std::size_t i) {
    const auto [k, chunk_index] = gradient_chunks_[i];
    const Projection& q = network_->projections[k];
    const NeuronIndex::RowChunk& chunk = costate_chunks[chunk_index];
    const auto delta = node_delta_.middleRows(offset(q.to) + chunk.row_begin, chunk.size());
    const Eigen::MatrixXd& x = node_activity_[q.from];
    double* out = g.weight[k].data() + row_offset(q, chunk.row_begin);
    if (q.sparse) {
      const int* outer = q.csr.outerIndexPtr();
      const int* inner = q.csr.innerIndexPtr();
      for (Eigen::Index r = chunk.row_begin; r < chunk.row_end; ++r) {
        for (int e = outer[r]; e < outer[r + 1]; ++e) {
          out[e - outer[chunk.row_begin]] +=
              scale * delta.row(r - chunk.row_begin).dot(x.row(inner[e]));
        }
      }
      return;
    }
    Eigen::Map<RowMatrix> block(out, chunk.size(), q.cols());
    block.noalias() += scale * delta * x.transpose();
  };
  auto bias_chunk = [&](std::size_t i) {
    const NeuronIndex::RowChunk& chunk = costate_chunks[i];
    g.bias[chunk.population].segment(chunk.row_begin, chunk.size()) +=
        scale * node_delta_.middleRows(offset(chunk.population) + chunk.row_begin, chunk.size())
                    .rowwise()
                    .sum();
  };
  for_each_chunk(parallel_, gradient_chunks_.size() + costate_chunks.size(), [&](std::size_t i) {
    if (i < gradient_chunks_.size()) {
      gradient_chunk(i);
    } else {
      bias_chunk(i - gradient_chunks_.size());
    }
  });
}

}  // namespace lf
