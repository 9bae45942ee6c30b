#include "models/costate.hpp"

#include <cmath>
#include <limits>

#include "models/projection_ops.hpp"
#include "sim/core/threads.hpp"

namespace lf {
namespace {
constexpr Eigen::Index rows_per_weight_chunk = 64;
constexpr double undefined = std::numeric_limits<double>::quiet_NaN();
// The norm ratio ‖γẆ‖/‖∂V/∂W‖ is reported only where the gradient is at least this fraction of
// the flow (a ratio below 1e12).
constexpr double negligible_gradient = 1e-12;
}  // namespace

CostateModel::CostateModel(const Network& network, const CostateParams& params, const Drive& drive)
    : network_(&network), params_(params), drive_(&drive), layout_(drive.signal().batch_shape()),
      x_(network, layout_, "x"), lambda_(network, layout_, "lambda"),
      learned_(network, layout_, params.plastic_bias),
      reference_(network, params.c, params.loss, drive.error_rows()) {
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    const Projection& q = network.projections[k];
    if (!learned_.weight_block(k)) continue;
    for (Eigen::Index r = 0; r < q.rows(); r += rows_per_weight_chunk) {
      weight_chunks_.push_back({k, r, std::min(r + rows_per_weight_chunk, q.rows())});
    }
  }
  for (const auto& chunk : x_.chunks()) {
    if (learned_.bias_block(chunk.population)) bias_chunks_.push_back(chunk);
  }
  // Inertia: a velocity block beside every learned block, in the same shape.
  const auto velocity = [&](const std::optional<BlockId>& id, const char* kind) -> std::optional<BlockId> {
    if (params.m_w == 0.0 || !id) return std::nullopt;
    const Block& b = layout_.block(*id);
    return layout_.add(kind, b.member, b.shape);
  };
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    weight_velocity_.push_back(velocity(learned_.weight_block(k), "Wdot"));
  }
  for (std::size_t p = 0; p < network.populations.size(); ++p) {
    bias_velocity_.push_back(velocity(learned_.bias_block(p), "bdot"));
  }
  const InputSpec& input = drive.signal().spec();
  if (input.kind == InputKind::sequence && !input.targets.empty()) {
    accuracy_patterns_ = input.sequence.size();
  }
  batch_accuracy_ = input.kind == InputKind::dataset;
  parallel_ = x_.work() >= parallel_min_work && x_.chunks().size() > 1;

  const Eigen::Index examples = x_.examples();
  activation_.resize(x_.neurons(), examples);
  derivative_.resize(x_.neurons(), examples);
  delta_.resize(x_.neurons(), examples);
  error_ = Eigen::MatrixXd::Zero(x_.neurons(), examples);
  output_x_.resize(x_.outputs(), examples);
  output_e_.resize(x_.outputs(), examples);
  if (params.m_x > 0.0) activation_rate_.resize(x_.neurons(), examples);
  metric_ds_.resize(static_cast<std::size_t>(layout_.size()));
}

WeightView CostateModel::weight_view(const State& s, std::size_t k) const {
  return learned_.weights(layout_, s, k);
}

Eigen::Map<const Eigen::VectorXd> CostateModel::bias_view(const State& s, std::size_t p) const {
  return learned_.bias(layout_, s, p);
}

std::vector<WeightView> CostateModel::weights(const State& s) const { return learned_.weights(layout_, s); }

std::vector<Eigen::VectorXd> CostateModel::biases(const State& s) const { return learned_.biases(layout_, s); }

void CostateModel::initial_state(State& s) const {
  std::fill(s.begin(), s.end(), 0.0);
  learned_.initial_state(layout_, s);
}

void CostateModel::output_error(const State& s) const {
  const auto& pops = network_->populations;
  x_.gather_outputs(layout_, s, output_x_);
  target_error(params_.loss, *drive_, output_x_, output_e_);
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role != Role::output) continue;
    error_.middleRows(x_.offset(p), pops[p].size) = output_e_.middleRows(x_.output_offset(p), pops[p].size);
  }
}

void CostateModel::rhs(const State& s, State& ds, double t) const {
  const Eigen::MatrixXd& u = drive_->at(t);
  const auto& pops = network_->populations;
  const auto& chunks = x_.chunks();
  const double c = params_.c;
  const double inv_tau_x = 1.0 / params_.tau_x, inv_tau_lambda = 1.0 / params_.tau_lambda;
  const double inv_gamma = 1.0 / params_.gamma, decay = params_.kappa / params_.gamma;
  const double m_w = params_.m_w, m_x = params_.m_x;
  const Eigen::Index examples = x_.examples();
  // Rows of population p in the neuron scratch matrices (neurons × B).
  auto rows = [&](Eigen::MatrixXd& scratch, std::size_t p) {
    return scratch.middleRows(x_.offset(p), pops[p].size);
  };

  // Forward: a, σ(a), σ'(a), ẋ and δ = σ'(a) ⊙ λ, row chunk by row chunk, every example.
  auto forward_chunk = [&](std::size_t i) {
    const std::size_t p = chunks[i].population;
    const Eigen::Index r0 = chunks[i].row_begin, len = chunks[i].size();
    const Eigen::Index off = x_.offset(p) + r0;
    auto a = activation_.middleRows(off, len);
    x_.preactivation(
        chunks[i], [&](std::size_t k) { return weight_view(s, k); },
        [&](std::size_t q) { return bias_view(s, q); },
        [&](std::size_t q) { return x_.activity(layout_, s, u, q); }, a);
    auto d = derivative_.middleRows(off, len);
    activate_with_derivative(pops[p].activation, a, a, d);
    layout_.examples(ds, x_.block(p)).middleRows(r0, len) =
        inv_tau_x * (a - c * layout_.examples(s, x_.block(p)).middleRows(r0, len));
    delta_.middleRows(off, len) =
        d.cwiseProduct(layout_.examples(s, lambda_.block(p)).middleRows(r0, len));
  };
  // m_x > 0: the neurons' acceleration ẍ = (−c ẋ + σ'(a) ⊙ ȧ)/τ_x over the chunk's rows, with
  // ȧ = ḃ + Σ_{q→p} (Ẇ_q x_from + W_q ẋ_from) read from ds (Ẇ, ḃ, ẋ already computed) and
  // ẋ_from = u̇ for inputs; added as m_x ẍ to the costate's right-hand side `dl`.
  // u̇, read here: the Drive is not thread-safe (a sine recomputes it in place).
  const Eigen::MatrixXd* du = m_x > 0.0 ? &drive_->rate_at(t) : nullptr;
  auto add_inertial_force = [&](std::size_t p, Eigen::Index r0, Eigen::Index len, auto& dl) {
    const Eigen::Index off = x_.offset(p) + r0;
    auto adot = activation_rate_.middleRows(off, len);
    if (const auto& id = learned_.bias_block(p)) {
      adot.colwise() = layout_.vector(ds, *id).segment(r0, len);
    } else {
      adot.setZero();
    }
    for (const std::size_t k : x_.incoming(p)) {
      const Projection& q = network_->projections[k];
      if (const auto& id = learned_.weight_block(k)) {
        add_rows_times(WeightView{&q, ds.data() + layout_.block(*id).offset}, r0, len,
                       x_.activity(layout_, s, u, q.from), adot);
      }
      add_rows_times(weight_view(s, k), r0, len, x_.activity(layout_, ds, *du, q.from), adot);
    }
    const auto xdot = layout_.examples(ds, x_.block(p)).middleRows(r0, len);
    dl += (m_x * inv_tau_x) * (derivative_.middleRows(off, len).cwiseProduct(adot) - c * xdot);
  };
  // Costates: λ̇ = (−c λ + Σ Wᵀ δ_to + e [+ m_x ẍ])/τ_λ, by chunks of the population's own rows.
  auto costate_chunk = [&](std::size_t i) {
    const std::size_t p = chunks[i].population;
    const Eigen::Index r0 = chunks[i].row_begin, len = chunks[i].size();
    auto dl = layout_.examples(ds, lambda_.block(p)).middleRows(r0, len);
    dl = error_.middleRows(x_.offset(p) + r0, len);
    for (const std::size_t k : x_.outgoing(p)) {
      add_columns_transposed_times(weight_view(s, k), r0, len,
                                   rows(delta_, network_->projections[k].to), dl);
    }
    if (m_x > 0.0) add_inertial_force(p, r0, len, dl);
    dl = inv_tau_lambda * (dl - c * layout_.examples(s, lambda_.block(p)).middleRows(r0, len));
  };
  // Weight flow: γ Ẇ = mean over the batch of δ_to x_fromᵀ, − κ W, on plastic projections; with
  // a mass, Ẇ is the velocity block and m_W V̇ = mean δ_to x_fromᵀ − κ W − γ V.
  auto weight_chunk = [&](std::size_t i) {
    const WeightChunk& wc = weight_chunks_[i];
    const Projection& q = network_->projections[wc.projection];
    const Block& block = layout_.block(*learned_.weight_block(wc.projection));
    const Eigen::Index begin = row_offset(q, wc.row_begin), n = row_offset(q, wc.row_end) - begin;
    if (m_w == 0.0) {
      outer_rows(weight_view(s, wc.projection), wc.row_begin, wc.row_end - wc.row_begin,
                 rows(delta_, q.to), x_.activity(layout_, s, u, q.from), inv_gamma, decay,
                 ds.data() + block.offset + begin);
      return;
    }
    const Block& vblock = layout_.block(*weight_velocity_[wc.projection]);
    Eigen::Map<Eigen::VectorXd> dv(ds.data() + vblock.offset + begin, n);
    const Eigen::Map<const Eigen::VectorXd> v(s.data() + vblock.offset + begin, n);
    outer_rows(weight_view(s, wc.projection), wc.row_begin, wc.row_end - wc.row_begin,
               rows(delta_, q.to), x_.activity(layout_, s, u, q.from), 1.0 / m_w,
               params_.kappa / m_w, dv.data());
    dv -= (params_.gamma / m_w) * v;
    Eigen::Map<Eigen::VectorXd>(ds.data() + block.offset + begin, n) = v;
  };
  // Bias flow: γ ḃ = mean over the batch of δ, − κ b (with a mass, as the weights').
  auto bias_chunk = [&](std::size_t i) {
    const std::size_t p = bias_chunks_[i].population;
    const Eigen::Index r0 = bias_chunks_[i].row_begin, len = bias_chunks_[i].size();
    auto db = layout_.vector(ds, *learned_.bias_block(p)).segment(r0, len);
    const auto b = layout_.vector(s, *learned_.bias_block(p)).segment(r0, len);
    const auto delta = delta_.middleRows(x_.offset(p) + r0, len);
    const double scale = m_w == 0.0 ? inv_gamma : 1.0 / m_w;
    const double shrink = m_w == 0.0 ? decay : params_.kappa / m_w;
    auto force = [&](auto& out) {
      if (examples == 1) {
        out = scale * delta.col(0) - shrink * b;
      } else {
        out = (scale / static_cast<double>(examples)) * delta.rowwise().sum() - shrink * b;
      }
    };
    if (m_w == 0.0) {
      force(db);
      return;
    }
    auto dv = layout_.vector(ds, *bias_velocity_[p]).segment(r0, len);
    const auto v = layout_.vector(s, *bias_velocity_[p]).segment(r0, len);
    force(dv);
    dv -= (params_.gamma / m_w) * v;
    db = v;
  };

  // Small networks avoid OpenMP constructs entirely (an inactive region still costs a futex).
  // With m_x > 0 the costates need every ẋ, Ẇ and ḃ: they come after the flows.
  const bool costates_last = m_x > 0.0;
  if (!parallel_) {
    for (std::size_t i = 0; i < chunks.size(); ++i) forward_chunk(i);
    output_error(s);
    for (std::size_t i = 0; i < weight_chunks_.size(); ++i) weight_chunk(i);
    for (std::size_t i = 0; i < bias_chunks_.size(); ++i) bias_chunk(i);
    for (std::size_t i = 0; i < chunks.size(); ++i) costate_chunk(i);
    return;
  }
  // Chunks are handed out one at a time: their work differs by layer (see for_each_chunk).
#pragma omp parallel num_threads(thread_count())
  {
#pragma omp for schedule(dynamic, 1)
    for (std::size_t i = 0; i < chunks.size(); ++i) forward_chunk(i);
#pragma omp single
    output_error(s);  // needs every x; its barrier makes every δ visible to the phases below
    if (!costates_last) {
#pragma omp for schedule(dynamic, 1) nowait
      for (std::size_t i = 0; i < chunks.size(); ++i) costate_chunk(i);
    }
#pragma omp for schedule(dynamic, 1) nowait
    for (std::size_t i = 0; i < weight_chunks_.size(); ++i) weight_chunk(i);
#pragma omp for schedule(dynamic, 1)
    for (std::size_t i = 0; i < bias_chunks_.size(); ++i) bias_chunk(i);
    if (costates_last) {
#pragma omp for schedule(dynamic, 1)
      for (std::size_t i = 0; i < chunks.size(); ++i) costate_chunk(i);
    }
  }
}

std::vector<Eigen::VectorXd> CostateModel::weight_flow(const State& s, double t) const {
  rhs(s, metric_ds_, t);  // fills delta_
  const Eigen::MatrixXd& u = drive_->at(t);
  std::vector<Eigen::VectorXd> flows;
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    const Projection& q = network_->projections[k];
    const WeightView w = weight_view(s, k);
    Eigen::VectorXd flow(w.size());
    outer_rows(w, 0, q.rows(), delta_.middleRows(x_.offset(q.to), q.rows()),
               x_.activity(layout_, s, u, q.from), 1.0 / params_.gamma,
               params_.kappa / params_.gamma, flow.data());
    flows.push_back(std::move(flow));
  }
  return flows;
}

std::vector<std::string> CostateModel::metric_names() const {
  std::vector<std::string> names{"loss"};
  for (const Projection& q : network_->projections) names.push_back("alignment/cosine/" + q.name);
  for (const Projection& q : network_->projections) names.push_back("alignment/norm_ratio/" + q.name);
  if (accuracy_patterns_) {
    names.emplace_back("accuracy");
    names.emplace_back("dataset_loss");
  }
  if (batch_accuracy_) names.emplace_back("accuracy");
  return names;
}

void CostateModel::metrics(const State& s, double t, std::span<double> out) const {
  const std::size_t n_proj = network_->projections.size();
  const std::vector<Eigen::VectorXd> flows = weight_flow(s, t);  // also sets output_x_
  const Eigen::MatrixXd u = drive_->at(t);
  const Eigen::Index examples = x_.examples();
  std::size_t at = 0;
  out[at++] = target_loss(params_.loss, *drive_, output_x_);

  // Alignment with the exact gradient of the batch's mean loss at the current inputs and weights
  // (undefined without a target, or where the gradient vanishes).
  std::vector<double> cosine(n_proj, undefined), ratio(n_proj, undefined);
  if (drive_->has_target()) {
    const auto w = weights(s);
    std::vector<Eigen::VectorXd> gradient;
    bool converged = false;
    if (examples == 1) {
      Eigen::VectorXd guess(x_.neurons());
      for (std::size_t p = 0; p < network_->populations.size(); ++p) {
        if (x_.is_input(p)) continue;
        guess.segment(x_.offset(p), network_->populations[p].size) = layout_.vector(s, x_.block(p));
      }
      auto g = reference_.gradient(w, biases(s), u.col(0), drive_->target().col(0), guess);
      converged = g.converged;
      gradient = std::move(g.weights);
    } else {
      auto g = reference_.gradient_batch(w, biases(s), u, drive_->target());
      converged = g.converged;
      gradient = std::move(g.weights);
    }
    for (std::size_t k = 0; converged && k < n_proj; ++k) {
      const double norm_g = gradient[k].norm(), norm_f = flows[k].norm();
      if (norm_g == 0.0 || norm_f == 0.0) continue;
      cosine[k] = flows[k].dot(gradient[k]) / (norm_f * norm_g);
      // Once the current examples are learned the exact gradient can vanish (a saturated softmax:
      // 1e-130) while the flow still carries what λ held from the examples before: the ratio then
      // measures nothing but the vanishing gradient, and is left undefined.
      const double flow = params_.gamma * norm_f;
      if (norm_g >= negligible_gradient * flow) ratio[k] = flow / norm_g;
    }
  }
  for (std::size_t k = 0; k < n_proj; ++k) out[at++] = cosine[k];
  for (std::size_t k = 0; k < n_proj; ++k) out[at++] = ratio[k];

  if (accuracy_patterns_) {
    // The settled network's answers to every (input, target) pair of the sequence.
    const InputSpec& spec = drive_->signal().spec();
    const auto w = weights(s);
    const auto b = biases(s);
    std::size_t right = 0;
    double dataset_loss = 0.0;
    for (std::size_t i = 0; i < *accuracy_patterns_; ++i) {
      const Eigen::Map<const Eigen::VectorXd> ui(spec.sequence[i].data(), u.rows());
      const Eigen::Map<const Eigen::VectorXd> yi(spec.targets[i].data(), output_x_.rows());
      const auto settled = reference_.settle(w, b, ui);
      const Eigen::VectorXd y_hat = reference_.output(settled);
      Eigen::Index predicted = 0, expected = 0;
      const bool ok = y_hat.size() == 1 ? std::abs(y_hat[0] - yi[0]) < 0.5
                                        : (y_hat.maxCoeff(&predicted), yi.maxCoeff(&expected),
                                           predicted == expected);
      right += ok && settled.converged;
      dataset_loss += loss_value(params_.loss, y_hat, yi);
    }
    out[at++] = static_cast<double>(right) / static_cast<double>(*accuracy_patterns_);
    out[at++] = dataset_loss / static_cast<double>(*accuracy_patterns_);
  }
  if (batch_accuracy_) {
    // The current minibatch's outputs as they are (not settled), against its labels.
    out[at++] = static_cast<double>(batch_correct(output_x_, drive_->target(), drive_->error_rows())) /
                static_cast<double>(examples);
  }
}

bool CostateModel::predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
                           Eigen::Ref<Eigen::MatrixXd> outputs) const {
  const auto settled = reference_.settle_batch(weights(s), biases(s), inputs);
  outputs = reference_.output(settled);
  return true;
}

std::vector<ParameterArray> CostateModel::parameters(const State& s) const {
  return network_parameters(*network_, weights(s), biases(s));
}

}  // namespace lf
