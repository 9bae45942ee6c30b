#include "models/gaitprop.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "models/projection_ops.hpp"
#include "sim/core/errors.hpp"

namespace lf {
namespace {

constexpr double undefined = std::numeric_limits<double>::quiet_NaN();

std::size_t index_of(const std::vector<std::string>& names, const char* name) {
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

double cosine(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const double n = a.norm() * b.norm();
  return n > 0.0 ? a.dot(b) / n : undefined;
}

}  // namespace

GaitpropModel::GaitpropModel(const Network& network, const GaitpropParams& params,
                             const Drive& drive)
    : network_(&network), params_(params), drive_(&drive), examples_(drive.examples()),
      layout_(drive.signal().batch_shape()),
      reference_(network, 1.0, params.loss, drive.error_rows()) {
  const auto& pops = network.populations;
  // A chain: population 0 the input, projection l−1 from population l−1 to l, dense.
  bool chain = pops.size() >= 2 && pops[0].role == Role::input &&
               network.projections.size() == pops.size() - 1;
  for (std::size_t l = 1; chain && l < pops.size(); ++l) {
    const Projection& q = network.projections[l - 1];
    chain = q.from == l - 1 && q.to == l && !q.sparse && pops[l].role != Role::input;
  }
  if (!chain) {
    throw ConfigError("network.layers", "",
                      "network.layers: model 'gaitprop' needs a layered network (layers = [n, n, "
                      "…]): one dense projection from each layer to the next");
  }
  depth_ = pops.size() - 1;
  width_ = pops[0].size;
  for (std::size_t l = 1; l <= depth_; ++l) {
    if (pops[l].size != width_) {
      throw ConfigError("network.layers", "", fmt::format(
          "network.layers: model 'gaitprop' inverts every layer, so all layers need the same "
          "width, but {} has {} neurons and {} has {}", pops[l].name, pops[l].size, pops[0].name,
          width_));
    }
    if (!invertible(pops[l].activation)) {
      throw ConfigError("network.activation", "", fmt::format(
          "network.activation: model 'gaitprop' inverts every layer, but {} uses '{}', which is "
          "not invertible{} (choose e.g. asinh or leaky_relu)", pops[l].name,
          activation_name(pops[l].activation),
          pops[l].role == Role::output ? " (the output layer's network.output_activation "
                                         "defaults to network.activation)" : ""));
    }
  }
  const auto& names = drive.signal().spec().phase_names;
  forward_phase_ = index_of(names, "forward");
  target_phase_ = index_of(names, "target");
  if (names.size() != 2 || forward_phase_ == names.size() || target_phase_ == names.size()) {
    std::string got;
    for (const auto& n : names) got += (got.empty() ? "\"" : ", \"") + n + "\"";
    throw ConfigError("input.phases", "", fmt::format(
        "input.phases: model 'gaitprop' needs exactly the phases \"forward\" and \"target\", e.g. "
        "phases = [{{ name = \"forward\", duration = 20.0 }}, {{ name = \"target\", duration = "
        "5.0 }}] (got: {})", got.empty() ? "no phases" : got));
  }

  const std::vector<Eigen::Index> vec{width_}, mat{width_, width_};
  h_.push_back(0);
  for (std::size_t l = 1; l <= depth_; ++l) h_.push_back(layout_.add_per_example("h", pops[l].name, width_));
  for (std::size_t l = 0; l <= depth_; ++l) {
    target_.push_back(layout_.add_per_example("target", pops[l].name, width_));
  }
  w_.push_back(0);
  for (std::size_t l = 1; l <= depth_; ++l) {
    w_.push_back(layout_.add("W", network.projections[l - 1].name, mat));
  }
  b_.push_back(0);
  for (std::size_t l = 1; l <= depth_; ++l) b_.push_back(layout_.add("b", pops[l].name, vec));

  error_scale_.assign(depth_ + 1, 0.0);
  for (std::size_t l = 1; l <= depth_; ++l) {
    error_scale_[l] = std::pow(params.gamma, -static_cast<double>(depth_ - l + 1));
  }
  const InputSpec& input = drive.signal().spec();
  if (input.kind == InputKind::sequence && !input.targets.empty()) patterns_ = input.sequence.size();
  batch_accuracy_ = input.kind == InputKind::dataset;

  // Per RHS: a matrix-vector product or LU solve per layer, and two n³ products per layer for
  // the regulariser. Layers are independent within a phase: they are the parallel chunks.
  const Eigen::Index n2 = width_ * width_;
  const Eigen::Index work = static_cast<Eigen::Index>(depth_) *
                            (params.lambda_orth > 0.0 ? 2 * n2 * width_ : n2 * examples_);
  parallel_ = depth_ > 1 && work >= parallel_min_work;

  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(width_);
  const Eigen::MatrixXd zeros = Eigen::MatrixXd::Zero(width_, examples_);
  lu_.assign(depth_ + 1, Eigen::PartialPivLU<Eigen::MatrixXd>(width_));
  frozen_w_.assign(depth_ + 1, RowMatrix::Zero(width_, width_));
  frozen_b_.assign(depth_ + 1, zero);
  for (auto* v : {&frozen_below_, &frozen_d_, &frozen_gd2_, &pre_, &arg_, &delta_}) {
    v->assign(depth_ + 1, zeros);
  }
  if (params.lambda_orth > 0.0) {
    gram_.assign(depth_ + 1, RowMatrix::Zero(width_, width_));
    reg_.assign(depth_ + 1, RowMatrix::Zero(width_, width_));
  }
}

ConstBatchView GaitpropModel::h(const State& s, std::size_t l) const {
  assert(l >= 1 && l <= depth_);
  return layout_.examples(s, h_[l]);
}
ConstBatchView GaitpropModel::target(const State& s, std::size_t l) const {
  return layout_.examples(s, target_[l]);
}
BatchView GaitpropModel::target_mut(State& s, std::size_t l) const {
  return layout_.examples(s, target_[l]);
}
std::vector<WeightView> GaitpropModel::weight_views(const State& s) const {
  std::vector<WeightView> w;
  for (std::size_t l = 1; l <= depth_; ++l) {
    w.push_back({&network_->projections[l - 1], s.data() + layout_.block(w_[l]).offset});
  }
  return w;
}
std::vector<Eigen::VectorXd> GaitpropModel::biases(const State& s) const {
  std::vector<Eigen::VectorXd> b{network_->bias[0]};
  for (std::size_t l = 1; l <= depth_; ++l) b.emplace_back(bias(s, l));
  return b;
}
Eigen::Map<const RowMatrix> GaitpropModel::weights(const State& s, std::size_t l) const {
  assert(l >= 1 && l <= depth_);
  return layout_.matrix(s, w_[l]);
}
Eigen::Map<const Eigen::VectorXd> GaitpropModel::bias(const State& s, std::size_t l) const {
  assert(l >= 1 && l <= depth_);
  return layout_.vector(s, b_[l]);
}

void GaitpropModel::initial_state(State& s) const {
  std::fill(s.begin(), s.end(), 0.0);
  for (std::size_t l = 1; l <= depth_; ++l) {
    layout_.matrix(s, w_[l]) = network_->projections[l - 1].dense;
    layout_.vector(s, b_[l]) = network_->bias[l];
  }
}

void GaitpropModel::freeze_forward_pass(const State& s, double t) const {
  const auto& pops = network_->populations;
  frozen_b_[0] = network_->bias[0];
  for (std::size_t l = 1; l <= depth_; ++l) {
    frozen_w_[l] = weights(s, l);
    frozen_b_[l] = bias(s, l);
    frozen_below_[l] = l == 1 ? drive_->at(t) : Eigen::MatrixXd(h(s, l - 1));
    Eigen::MatrixXd a(width_, examples_);  // ā_l = W̄_l h̄_{l−1} + b̄_l, the shared forward kernel
    a.colwise() = frozen_b_[l];
    add_rows_times({&network_->projections[l - 1], frozen_w_[l].data()}, 0, width_, frozen_below_[l], a);
    activate_derivative(pops[l].activation, a, frozen_d_[l]);
    frozen_gd2_[l] = params_.gamma * frozen_d_[l].array().square();
    lu_[l].compute(frozen_w_[l]);
  }
  frozen_ = true;
}

void GaitpropModel::incremental_target(const State& s, std::size_t l,
                                       const Eigen::Ref<const Eigen::MatrixXd>& tau,
                                       Eigen::Ref<Eigen::MatrixXd> out) const {
  assert(frozen_);
  const auto hl = h(s, l);
  // σ⁻¹(h_l + γ σ'(ā_l)² ⊙ (τ_l − h_l)) − b̄_l, then W̄_l⁻¹ of it.
  Eigen::MatrixXd& arg = arg_[l];
  arg = hl + frozen_gd2_[l].cwiseProduct(tau - hl);
  activate_inverse(network_->populations[l].activation, arg, arg);
  arg.colwise() -= frozen_b_[l];
  if (examples_ == 1) {
    out.col(0) = lu_[l].solve(arg.col(0));  // a vector solve (the matrix solve differs in bits)
  } else {
    out = lu_[l].solve(arg);
  }
}

void GaitpropModel::set_targets(State& s) const {
  const auto hL = h(s, depth_);
  auto tauL = target_mut(s, depth_);
  Eigen::MatrixXd error(width_, examples_);  // −∂L/∂h_L, zero without a target
  target_error(params_.loss, *drive_, hL, error);
  tauL = hL + params_.gamma * error;
  if (params_.mode != GaitpropMode::discrete) return;
  for (std::size_t l = depth_; l >= 1; --l) {
    const Eigen::MatrixXd above = target(s, l);
    incremental_target(s, l, above, target_mut(s, l - 1));
  }
}

void GaitpropModel::leave_segment(State& s, double) const {
  const std::size_t k = drive_->segment();
  const InputSignal& signal = drive_->signal();
  const bool target_next = k + 1 < signal.segments() && signal.phase(k + 1) == target_phase_;
  if (in_target_phase() && !target_next && params_.mode == GaitpropMode::discrete) apply_update(s);
}

// The frozen forward pass of an open target phase (its LU factors are recomputed from the same
// weights, with the same bits).
void GaitpropModel::save_events(Snapshot& out) const {
  out.put("model/gaitprop/frozen", frozen_ ? 1.0 : 0.0);
  if (!frozen_) return;
  auto flat = [](const auto& m) { return std::vector<double>(m.data(), m.data() + m.size()); };
  for (std::size_t l = 0; l <= depth_; ++l) {
    const std::string at = "model/gaitprop/" + std::to_string(l) + "/";
    out.put(at + "b", flat(frozen_b_[l]));
    if (l == 0) continue;
    out.put(at + "w", flat(frozen_w_[l]));
    out.put(at + "below", flat(frozen_below_[l]));
    out.put(at + "d", flat(frozen_d_[l]));
    out.put(at + "gd2", flat(frozen_gd2_[l]));
  }
}

void GaitpropModel::restore_events(const Snapshot& in) const {
  frozen_ = in.scalar("model/gaitprop/frozen") != 0.0;
  if (!frozen_) return;
  auto fill = [&](const std::string& name, auto& m) {
    const std::vector<double>& v = in.get(name);
    if (static_cast<Eigen::Index>(v.size()) != m.size()) {
      throw InputError("the checkpoint's gaitprop entry '" + name + "' does not match this network");
    }
    std::copy(v.begin(), v.end(), m.data());
  };
  for (std::size_t l = 0; l <= depth_; ++l) {
    const std::string at = "model/gaitprop/" + std::to_string(l) + "/";
    fill(at + "b", frozen_b_[l]);
    if (l == 0) continue;
    fill(at + "w", frozen_w_[l]);
    fill(at + "below", frozen_below_[l]);
    fill(at + "d", frozen_d_[l]);
    fill(at + "gd2", frozen_gd2_[l]);
    lu_[l].compute(frozen_w_[l]);
  }
}

void GaitpropModel::enter_segment(State& s, double t) const {
  const std::size_t k = drive_->segment();
  const bool target_now = in_target_phase();
  const bool target_before = k > 0 && drive_->signal().phase(k - 1) == target_phase_;
  if (!target_now || !target_before) {
    // A phase starts: every target from the activity (forward: they follow h from here on).
    target_mut(s, 0) = drive_->at(t);
    for (std::size_t l = 1; l <= depth_; ++l) target_mut(s, l) = h(s, l);
  }
  if (!target_now) return;
  if (!target_before) freeze_forward_pass(s, t);
  // Also within a phase (e.g. a target switched on at target_t0): τ_L from the target in force.
  set_targets(s);
}

void GaitpropModel::forward_layer(const State& s, State& ds, const Eigen::MatrixXd& u,
                                  std::size_t l) const {
  // a_l = W_l h_{l−1} + b_l: the shared forward kernel.
  Eigen::MatrixXd& a = pre_[l];
  a.colwise() = bias(s, l);
  const WeightView w{&network_->projections[l - 1], s.data() + layout_.block(w_[l]).offset};
  if (l == 1) {
    add_rows_times(w, 0, width_, u, a);
  } else {
    add_rows_times(w, 0, width_, h(s, l - 1), a);
  }
  activate(network_->populations[l].activation, a, a);
  auto dh = layout_.examples(ds, h_[l]);
  dh = (a - h(s, l)) / params_.tau_h;
  layout_.examples(ds, target_[l]) = dh;
  layout_.vector(ds, w_[l]).setZero();
  layout_.vector(ds, b_[l]).setZero();
}

void GaitpropModel::target_layer(const State& s, State& ds, std::size_t l) const {
  layout_.vector(ds, h_[l]).setZero();
  auto dtau = layout_.examples(ds, target_[l - 1]);
  auto dw = layout_.matrix(ds, w_[l]);
  auto db = layout_.vector(ds, b_[l]);
  if (params_.mode == GaitpropMode::discrete) {
    dtau.setZero();
    dw.setZero();
    db.setZero();
    return;
  }
  // τ_r τ̇_{l−1} = T_l(τ_l) − τ_{l−1}
  incremental_target(s, l, target(s, l), dtau);
  dtau = (dtau - target(s, l - 1)) / params_.tau_r;
  // Ẇ_l = η γ^{−(L−l+1)} (σ'(ā_l) ⊙ e_l) h̄_{l−1}ᵀ − η ∇R(W_l),  ḃ_l = η γ^{−(L−l+1)} σ'(ā_l) ⊙ e_l,
  // batch means.
  Eigen::MatrixXd& delta = delta_[l];
  delta = (params_.eta * error_scale_[l]) * frozen_d_[l].cwiseProduct(target(s, l) - h(s, l));
  if (examples_ == 1) {
    db = delta.col(0);
    dw.noalias() = delta.col(0) * frozen_below_[l].col(0).transpose();
  } else {
    const double inv = 1.0 / static_cast<double>(examples_);
    db = inv * delta.rowwise().sum();
    dw.noalias() = inv * delta * frozen_below_[l].transpose();
  }
  if (params_.lambda_orth > 0.0) {
    // Coefficient-based products: no packing buffers, no allocation.
    const auto w = weights(s, l);
    gram_[l].noalias() = w.lazyProduct(w.transpose());
    gram_[l].diagonal().setZero();
    reg_[l].noalias() = gram_[l].lazyProduct(w);
    dw -= (4.0 * params_.lambda_orth * params_.eta) * reg_[l];
  }
}

void GaitpropModel::rhs(const State& s, State& ds, double t) const {
  const bool target_phase = in_target_phase();
  const Eigen::MatrixXd& u = drive_->at(t);
  // Each layer l writes h_l, W_l, b_l and τ_l (forward) or τ_{l−1} (target); the block left
  // over is constant: τ_0 in the forward phase, τ_L in the target phase.
  layout_.vector(ds, target_[target_phase ? depth_ : 0]).setZero();
  auto layer = [&](std::size_t l) {
    if (target_phase) {
      target_layer(s, ds, l);
    } else {
      forward_layer(s, ds, u, l);
    }
  };
  for_each_chunk(parallel_, depth_, [&](std::size_t i) { layer(i + 1); });
}

RowMatrix GaitpropModel::update_direction(const State& s, std::size_t l) const {
  assert(frozen_);
  const Eigen::MatrixXd d = error_scale_[l] * frozen_d_[l].cwiseProduct(target(s, l) - h(s, l));
  if (examples_ == 1) return d.col(0) * frozen_below_[l].col(0).transpose();
  return RowMatrix((1.0 / static_cast<double>(examples_)) * d * frozen_below_[l].transpose());
}

Eigen::VectorXd GaitpropModel::bias_direction(const State& s, std::size_t l) const {
  assert(frozen_);
  const Eigen::MatrixXd d = error_scale_[l] * frozen_d_[l].cwiseProduct(target(s, l) - h(s, l));
  if (examples_ == 1) return d.col(0);
  return (1.0 / static_cast<double>(examples_)) * d.rowwise().sum();
}

void GaitpropModel::apply_update(State& s) const {
  for (std::size_t l = 1; l <= depth_; ++l) {
    RowMatrix step = update_direction(s, l);
    if (params_.lambda_orth > 0.0) step -= params_.lambda_orth * orthogonality_gradient(weights(s, l));
    const Eigen::VectorXd bias_step = bias_direction(s, l);
    layout_.matrix(s, w_[l]) += params_.eta * step;
    layout_.vector(s, b_[l]) += params_.eta * bias_step;
  }
}

double GaitpropModel::orthogonality_penalty(const Eigen::Ref<const RowMatrix>& w) {
  RowMatrix gram = w * w.transpose();
  gram.diagonal().setZero();
  return gram.squaredNorm();
}

RowMatrix GaitpropModel::orthogonality_gradient(const Eigen::Ref<const RowMatrix>& w) {
  RowMatrix gram = w * w.transpose();
  gram.diagonal().setZero();
  return 4.0 * gram * w;
}

std::vector<std::string> GaitpropModel::metric_names() const {
  std::vector<std::string> names{"loss"};
  for (const Projection& q : network_->projections) names.push_back("alignment/cosine/" + q.name);
  for (const Projection& q : network_->projections) names.push_back("alignment/norm_ratio/" + q.name);
  for (const Projection& q : network_->projections) names.push_back("orthogonality/" + q.name);
  names.emplace_back("forward_residual");
  if (patterns_) {
    names.emplace_back("accuracy");
    names.emplace_back("dataset_loss");
  }
  if (batch_accuracy_) names.emplace_back("accuracy");
  return names;
}

void GaitpropModel::metrics(const State& s, double t, std::span<double> out) const {
  const auto& pops = network_->populations;
  const bool target_phase = in_target_phase() && frozen_;
  const Eigen::MatrixXd& u = drive_->at(t);
  std::size_t at = 0;
  out[at++] = target_loss(params_.loss, *drive_, h(s, depth_));

  // Current weights as views and biases per population, for the settled reference network.
  const std::vector<WeightView> w = weight_views(s);
  const std::vector<Eigen::VectorXd> b = biases(s);
  // Alignment of ΔW/η with −∂L/∂W of the frozen forward pass (the weights and input that h was
  // settled with; the batch's mean loss); undefined outside target phases (τ = h, no update) and
  // without a target.
  std::vector<double> cos(depth_, undefined), ratio(depth_, undefined);
  if (target_phase && drive_->has_target()) {
    std::vector<WeightView> w_frozen;
    for (std::size_t l = 1; l <= depth_; ++l) {
      w_frozen.push_back({&network_->projections[l - 1], frozen_w_[l].data()});
    }
    const std::vector<Eigen::VectorXd> gradient =
        examples_ == 1 ? reference_.gradient(w_frozen, frozen_b_, frozen_below_[1].col(0),
                                             drive_->target().col(0)).weights
                       : reference_.gradient_batch(w_frozen, frozen_b_, frozen_below_[1],
                                                   drive_->target()).weights;
    for (std::size_t l = 1; l <= depth_; ++l) {
      const RowMatrix dw = update_direction(s, l);
      const Eigen::Map<const Eigen::VectorXd> flat(dw.data(), dw.size());
      const double norm_g = gradient[l - 1].norm();
      cos[l - 1] = cosine(flat, gradient[l - 1]);
      if (norm_g > 0.0) ratio[l - 1] = flat.norm() / norm_g;
    }
  }
  for (std::size_t l = 0; l < depth_; ++l) out[at++] = cos[l];
  for (std::size_t l = 0; l < depth_; ++l) out[at++] = ratio[l];
  for (std::size_t l = 1; l <= depth_; ++l) {
    const auto wl = weights(s, l);
    out[at++] = (wl * wl.transpose() - RowMatrix::Identity(width_, width_)).norm();
  }

  // max_l ‖h_l − σ(W_l h_{l−1} + b_l)‖_∞ over the batch, with the weights and input h is settled
  // with (frozen during a target phase): how far the held forward pass is from the one the
  // targets invert.
  double residual = 0.0;
  for (std::size_t l = 1; l <= depth_; ++l) {
    const Eigen::MatrixXd below = l == 1 ? (target_phase ? frozen_below_[1] : u)
                                         : Eigen::MatrixXd(h(s, l - 1));
    Eigen::MatrixXd a(width_, examples_);
    a.colwise() = target_phase ? frozen_b_[l] : Eigen::VectorXd(bias(s, l));
    add_rows_times(target_phase ? WeightView{&network_->projections[l - 1], frozen_w_[l].data()}
                                : w[l - 1],
                   0, width_, below, a);
    Eigen::MatrixXd sigma(width_, examples_);
    activate(pops[l].activation, a, sigma);
    residual = std::max(residual, (h(s, l) - sigma).cwiseAbs().maxCoeff());
  }
  out[at++] = residual;

  if (patterns_) {
    // The settled network's answers to every (input, target) pair of the sequence, at the
    // current weights (as costate's accuracy and dataset_loss).
    const InputSpec& spec = drive_->signal().spec();
    std::size_t right = 0;
    double dataset_loss = 0.0;
    for (std::size_t i = 0; i < *patterns_; ++i) {
      const Eigen::Map<const Eigen::VectorXd> ui(spec.sequence[i].data(), width_);
      const Eigen::Map<const Eigen::VectorXd> yi(spec.targets[i].data(), width_);
      const Eigen::VectorXd y_hat = reference_.output(reference_.settle(w, b, ui));
      Eigen::Index predicted = 0, expected = 0;
      y_hat.maxCoeff(&predicted);
      yi.maxCoeff(&expected);
      right += y_hat.size() == 1 ? std::abs(y_hat[0] - yi[0]) < 0.5 : predicted == expected;
      dataset_loss += loss_value(params_.loss, y_hat, yi);
    }
    out[at++] = static_cast<double>(right) / static_cast<double>(*patterns_);
    out[at++] = dataset_loss / static_cast<double>(*patterns_);
  }
  if (batch_accuracy_) {
    out[at++] = static_cast<double>(batch_correct(h(s, depth_), drive_->target(), drive_->error_rows())) /
                static_cast<double>(examples_);
  }
}

bool GaitpropModel::predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
                            Eigen::Ref<Eigen::MatrixXd> outputs) const {
  // The settled forward pass h_l = σ(W_l h_{l−1} + b_l) from h_0 = u (ExactBackprop with c = 1).
  outputs = reference_.output(reference_.settle_batch(weight_views(s), biases(s), inputs));
  return true;
}

std::vector<ParameterArray> GaitpropModel::parameters(const State& s) const {
  return network_parameters(*network_, weight_views(s), biases(s));
}

}  // namespace lf
