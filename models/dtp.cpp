#include "models/dtp.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "models/backprop.hpp"
#include "models/projection_ops.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/random.hpp"

namespace lf {
namespace {
constexpr double undefined = std::numeric_limits<double>::quiet_NaN();
// The continuous flows normalise by ‖σ(h)‖² + ε rather than ‖σ(h)‖²: at h ≈ 0 (a network at
// rest) the exact normalisation makes the flow arbitrarily stiff. Discrete updates are exact.
constexpr double normalisation_floor = 1e-3;

double cosine(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const double n = a.norm() * b.norm();
  return n > 0.0 ? a.dot(b) / n : undefined;
}
}  // namespace

std::vector<Eigen::VectorXd> iterate_inverse(
    const std::function<Eigen::VectorXd(const Eigen::VectorXd&)>& f,
    const std::function<Eigen::VectorXd(const Eigen::VectorXd&)>& g, const Eigen::VectorXd& y,
    const Eigen::VectorXd& x0, int iterations) {
  std::vector<Eigen::VectorXd> xs{x0};
  const Eigen::VectorXd gy = g(y);
  for (int t = 0; t < iterations; ++t) xs.push_back(xs.back() + gy - g(f(xs.back())));
  return xs;
}

double fitted_decay_rate(const std::vector<double>& t, const std::vector<double>& r) {
  double r_max = 0.0;
  for (const double v : r) r_max = std::max(r_max, v);
  std::vector<std::size_t> usable;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (r[i] > 1e-10 * r_max && r[i] > 0.0 && std::isfinite(r[i])) usable.push_back(i);
  }
  // The later half: the slowest mode dominates there.
  usable.erase(usable.begin(), usable.begin() + static_cast<std::ptrdiff_t>(usable.size() / 2));
  if (usable.size() < 3) return undefined;
  double st = 0, sy = 0, stt = 0, sty = 0;
  for (const std::size_t i : usable) {
    const double y = std::log(r[i]);
    st += t[i];
    sy += y;
    stt += t[i] * t[i];
    sty += t[i] * y;
  }
  const auto n = static_cast<double>(usable.size());
  return -(n * sty - st * sy) / (n * stt - st * st);
}

DtpModel::DtpModel(const Network& network, const DtpParams& params, const Drive& drive)
    : network_(&network), params_(params), drive_(&drive), examples_(drive.examples()),
      layout_(drive.signal().batch_shape()) {
  const auto& pops = network.populations;
  depth_ = pops.size() - 1;
  // A chain: population 0 the input, projection l from population l−1 to l, dense.
  bool chain = pops.size() >= 2 && network.projections.size() == depth_ &&
               pops[0].role == Role::input;
  for (std::size_t l = 1; chain && l <= depth_; ++l) {
    const Projection& q = network.projections[l - 1];
    chain = q.from == l - 1 && q.to == l && !q.sparse && pops[l].role != Role::input;
  }
  if (!chain) {
    throw ConfigError("network", "", "network: model 'dtp' needs a layered network (layers = "
                                     "[n0, n1, …]): one dense projection from each layer to the next");
  }
  const auto& names = drive.signal().spec().phase_names;
  if (std::find(names.begin(), names.end(), "forward") == names.end() ||
      std::find(names.begin(), names.end(), "target") == names.end()) {
    throw ConfigError("input.phases", "", "input.phases: model 'dtp' needs phases named \"forward\" "
                                          "and \"target\", e.g. phases = [{ name = \"forward\", "
                                          "duration = 5.0 }, { name = \"target\", duration = 5.0 }]");
  }
  if (params.decoders == DecoderKind::exact) {
    for (std::size_t l = 1; l <= depth_; ++l) {
      if (pops[l].size != pops[l - 1].size || !invertible(pops[l - 1].activation)) {
        throw ConfigError("model.decoders", "", fmt::format(
            "model.decoders: exact inverses need square layers and invertible activations, but "
            "layer {} has {} neurons over {} ({})", l, pops[l].size, pops[l - 1].size,
            activation_name(pops[l - 1].activation)));
      }
    }
  }

  h_.push_back(0);
  for (std::size_t l = 1; l <= depth_; ++l) h_.push_back(layout_.add_per_example("h", pops[l].name, pops[l].size));
  for (std::size_t l = 0; l <= depth_; ++l) {
    target_.push_back(layout_.add_per_example("target", pops[l].name, pops[l].size));
  }
  w_.push_back(0);
  for (std::size_t l = 1; l <= depth_; ++l) {
    w_.push_back(layout_.add("W", network.projections[l - 1].name, {pops[l].size, pops[l - 1].size}));
  }
  omega_.resize(depth_ + 1);
  fixed_omega_.resize(depth_ + 1);
  decoder_bias_.resize(depth_ + 1);
  for (std::size_t l = 1; l <= depth_ && params.decoders != DecoderKind::exact; ++l) {
    const RowMatrix& W = network.projections[l - 1].dense;
    RowMatrix omega;
    Eigen::VectorXd c = Eigen::VectorXd::Zero(pops[l - 1].size);
    if (params.decoders == DecoderKind::pinv) {
      // Linearised inverse of f(h) = W σ(h) + b where σ(h) ≈ h: g(y) = W⁺ σ(y) − W⁺ b.
      omega = Eigen::MatrixXd(W).completeOrthogonalDecomposition().pseudoInverse();
      c = -omega * network.bias[l];
    } else {
      omega = RowMatrix::Zero(W.cols(), W.rows());
    }
    Random rng(derive_seed(network.seed, 1000 + l));  // streams apart from the encoders'
    const double sd = (params.decoders == DecoderKind::random ? 1.0 : params.decoder_noise) /
                      std::sqrt(static_cast<double>(W.rows()));
    for (Eigen::Index i = 0; i < omega.size(); ++i) omega.data()[i] += sd * rng.normal();
    fixed_omega_[l] = omega;
    decoder_bias_[l] = c;
    if (params.decoder_rate > 0.0) omega_[l] = layout_.add("Omega", network.projections[l - 1].name, {W.cols(), W.rows()});
  }
  phase_residuals_.resize(depth_);
  fitted_.resize(depth_);
  closed_in_.resize(depth_);
  predicted_.resize(depth_);
  // RHS scratch: vectors in layer l (f, arg, flow, code_above) or layer l−1 (code_below, pre,
  // g_first, g_second) of projection l.
  auto sized = [&](std::vector<Eigen::MatrixXd>& v, std::ptrdiff_t shift) {
    v.resize(depth_ + 1);
    for (std::size_t l = 1; l <= depth_; ++l) {
      v[l].resize(pops[l - static_cast<std::size_t>(shift)].size, examples_);
    }
  };
  sized(work_.f, 0);
  sized(work_.arg, 0);
  sized(work_.shifted, 0);
  sized(work_.flow, 0);
  sized(work_.code_above, 0);
  sized(work_.code_below, 1);
  sized(work_.pre, 1);
  sized(work_.g_first, 1);
  sized(work_.g_second, 1);
  work_.scale.resize(examples_);
}

ConstBatchView DtpModel::h(const State& s, std::size_t l) const {
  return layout_.examples(s, h_[l]);
}
ConstBatchView DtpModel::target(const State& s, std::size_t l) const {
  return layout_.examples(s, target_[l]);
}
Eigen::Map<const RowMatrix> DtpModel::weights(const State& s, std::size_t l) const {
  return layout_.matrix(s, w_[l]);
}
Eigen::Map<const RowMatrix> DtpModel::decoder(const State& s, std::size_t l) const {
  if (omega_[l]) return layout_.matrix(s, *omega_[l]);
  return {fixed_omega_[l].data(), fixed_omega_[l].rows(), fixed_omega_[l].cols()};
}

ConstBatchView DtpModel::activity(const State& s, const Eigen::MatrixXd& u, std::size_t l) const {
  if (l == 0) return {u.data(), u.rows(), u.cols(), Eigen::OuterStride<>(u.rows())};
  return h(s, l);
}

Eigen::MatrixXd DtpModel::sigma(std::size_t p, const Eigen::Ref<const Eigen::MatrixXd>& v) const {
  Eigen::MatrixXd out(v.rows(), v.cols());
  activate(network_->populations[p].activation, v, out);
  return out;
}
Eigen::MatrixXd DtpModel::sigma_derivative(std::size_t p,
                                           const Eigen::Ref<const Eigen::MatrixXd>& v) const {
  Eigen::MatrixXd out(v.rows(), v.cols());
  activate_derivative(network_->populations[p].activation, v, out);
  return out;
}

Eigen::MatrixXd DtpModel::encode(const State& s, std::size_t l,
                                 const Eigen::Ref<const Eigen::MatrixXd>& below) const {
  Eigen::MatrixXd code(below.rows(), below.cols()), out(network_->populations[l].size, below.cols());
  encode_into(s, l, below, code, out);
  return out;
}

Eigen::MatrixXd DtpModel::decode(const State& s, std::size_t l,
                                 const Eigen::Ref<const Eigen::MatrixXd>& above) const {
  Eigen::MatrixXd out(network_->populations[l - 1].size, above.cols());
  decode_into(s, l, above, out);
  return out;
}

void DtpModel::encode_into(const State& s, std::size_t l,
                           const Eigen::Ref<const Eigen::MatrixXd>& below, Eigen::MatrixXd& code,
                           Eigen::MatrixXd& out) const {
  // f_l(h) = W_l σ(h) + b_l: the shared forward kernel on the code σ(h).
  activate(network_->populations[l - 1].activation, below, code);
  const Projection& q = network_->projections[l - 1];
  out.colwise() = network_->bias[l];
  add_rows_times(WeightView{&q, weights(s, l).data()}, 0, q.rows(), code, out);
}

void DtpModel::decode_into(const State& s, std::size_t l,
                           const Eigen::Ref<const Eigen::MatrixXd>& above, Eigen::MatrixXd& out) const {
  if (params_.decoders == DecoderKind::exact) {
    Eigen::MatrixXd& pre = work_.pre[l];
    Eigen::MatrixXd& shifted = work_.shifted[l];
    const auto cols = above.cols();
    shifted.leftCols(cols) = above.colwise() - network_->bias[l];
    const auto& lu = weights_lu(s, l);
    if (cols == 1) {
      pre.col(0) = lu.solve(shifted.col(0));  // a vector solve (the matrix solve differs in bits)
    } else {
      pre.leftCols(cols) = lu.solve(shifted.leftCols(cols));
    }
    activate_inverse(network_->populations[l - 1].activation, pre.leftCols(cols), out);
    return;
  }
  Eigen::MatrixXd& code = work_.code_above[l];
  const auto cols = above.cols();
  activate(network_->populations[l].activation, above, code.leftCols(cols));
  const auto omega = decoder(s, l);
  if (cols == 1) {
    out.col(0).noalias() = omega * code.col(0);
  } else {
    out.noalias() = omega * code.leftCols(cols);
  }
  out.colwise() += decoder_bias_[l];
}

const Eigen::PartialPivLU<Eigen::MatrixXd>& DtpModel::weights_lu(const State& s,
                                                                 std::size_t l) const {
  const auto w = weights(s, l);
  if (factored_.size() <= depth_) factored_.resize(depth_ + 1);
  std::optional<FactoredWeights>& f = factored_[l];
  if (!f) {
    f.emplace(FactoredWeights{RowMatrix(w), Eigen::PartialPivLU<Eigen::MatrixXd>(Eigen::MatrixXd(w))});
    return f->lu;
  }
  const auto bytes = static_cast<std::size_t>(w.size()) * sizeof(double);
  if (std::memcmp(f->weights.data(), w.data(), bytes) != 0) {
    f->weights = w;   // same shape: no allocation, nor in compute()
    f->lu.compute(w);
  }
  return f->lu;
}

Eigen::MatrixXd DtpModel::autoencoder_jacobian(const State& s, std::size_t l,
                                               const Eigen::VectorXd& x) const {
  const auto n = x.size();
  if (params_.decoders == DecoderKind::exact) return Eigen::MatrixXd::Identity(n, n);
  const Eigen::VectorXd y = encode(s, l, x);
  const Eigen::VectorXd dy = sigma_derivative(l, y), dx = sigma_derivative(l - 1, x);
  return Eigen::MatrixXd(decoder(s, l)) * dy.asDiagonal() * Eigen::MatrixXd(weights(s, l)) *
         dx.asDiagonal();
}

Eigen::MatrixXd DtpModel::residual_jacobian(const State& s, std::size_t l,
                                            const Eigen::VectorXd& x) const {
  const Eigen::VectorXd y = encode(s, l, x);
  const Eigen::VectorXd dx = sigma_derivative(l - 1, x);
  const Eigen::MatrixXd jf = Eigen::MatrixXd(weights(s, l)) * dx.asDiagonal();
  if (params_.decoders == DecoderKind::exact) return jf * jf.partialPivLu().inverse();
  const Eigen::VectorXd dy = sigma_derivative(l, y);
  return jf * Eigen::MatrixXd(decoder(s, l)) * dy.asDiagonal();
}

Eigen::MatrixXd DtpModel::output_error(const State& s) const {
  const auto hL = h(s, depth_);
  Eigen::MatrixXd e(hL.rows(), hL.cols());
  target_error(params_.loss, *drive_, hL, e);
  return e;
}

bool DtpModel::in_target_phase() const {
  const auto& names = drive_->signal().spec().phase_names;
  return names[drive_->phase()] == "target";
}

void DtpModel::initial_state(State& s) const {
  std::fill(s.begin(), s.end(), 0.0);
  for (std::size_t l = 1; l <= depth_; ++l) {
    layout_.matrix(s, w_[l]) = network_->projections[l - 1].dense;
    if (omega_[l]) layout_.matrix(s, *omega_[l]) = fixed_omega_[l];
  }
}

void DtpModel::rhs(const State& s, State& ds, double t) const {
  std::fill(ds.begin(), ds.end(), 0.0);
  const Eigen::MatrixXd& u = drive_->at(t);
  Workspace& w = work_;
  const bool single = examples_ == 1;
  const double inv_examples = 1.0 / static_cast<double>(examples_);
  if (!in_target_phase()) {
    // Forward phase: h relaxes to the feedforward pass, the targets follow h (τ_0 follows the
    // input u(t) itself: dτ_0/dt = du/dt), decoders learn.
    if (drive_->signal().time_dependent()) layout_.examples(ds, target_[0]) = drive_->rate_at(t);
    for (std::size_t l = 1; l <= depth_; ++l) {
      encode_into(s, l, activity(s, u, l - 1), w.code_below[l], w.f[l]);
      auto dh = layout_.examples(ds, h_[l]);
      dh = (w.f[l] - h(s, l)) / params_.tau_h;
      layout_.examples(ds, target_[l]) = dh;
      if (omega_[l]) {
        Eigen::MatrixXd& code = w.arg[l];  // σ(h_l)
        activate(network_->populations[l].activation, activity(s, u, l), code);
        decode_into(s, l, activity(s, u, l), w.g_first[l]);
        Eigen::MatrixXd& scaled_miss = w.g_second[l];  // η_Ω (h_{l−1} − g_l(h_l))
        scaled_miss = params_.decoder_rate * (activity(s, u, l - 1) - w.g_first[l]);
        auto omega_flow = layout_.matrix(ds, *omega_[l]);
        if (single) {
          omega_flow.noalias() = scaled_miss.col(0) * code.col(0).transpose();  // outer product
          omega_flow /= code.col(0).squaredNorm() + normalisation_floor;
        } else {
          // (1/B) Σ_b miss_b code_bᵀ / (‖code_b‖² + ε): columns scaled, then one product.
          w.scale = inv_examples / (code.colwise().squaredNorm().array() + normalisation_floor);
          scaled_miss *= w.scale.asDiagonal();
          omega_flow.noalias() = scaled_miss * code.transpose();
        }
      }
    }
    return;
  }
  // Target phase: h held; the targets of layers L−1 … 0 relax (all in parallel), weights flow.
  if (params_.iterations == 0) {
    for (std::size_t l = depth_; l >= 1; --l) {
      const auto above = target(s, l);
      encode_into(s, l, target(s, l - 1), w.code_below[l], w.f[l]);
      if (params_.correction == TargetCorrection::decoder_output) {
        decode_into(s, l, above, w.g_first[l]);     // g(τ_l)
        decode_into(s, l, w.f[l], w.g_second[l]);   // g(f(τ_{l−1}))
      } else {
        w.arg[l] = 2.0 * above - w.f[l];
        decode_into(s, l, w.arg[l], w.g_first[l]);  // g(2τ_l − f(τ_{l−1}))
        decode_into(s, l, above, w.g_second[l]);    // g(τ_l)
      }
      layout_.examples(ds, target_[l - 1]) = (w.g_first[l] - w.g_second[l]) / params_.tau_r;
    }
  }
  if (params_.update == DtpUpdate::flow) {
    for (std::size_t l = 1; l <= depth_; ++l) {
      Eigen::MatrixXd& n = w.code_below[l];  // σ(h_{l−1}) / (‖σ(h_{l−1})‖² + ε), per example
      activate(network_->populations[l - 1].activation, activity(s, u, l - 1), n);
      w.flow[l] = params_.eta * layout_.examples(ds, target_[l]);
      auto weight_flow = layout_.matrix(ds, w_[l]);
      if (single) {
        n.col(0) /= n.col(0).squaredNorm() + normalisation_floor;
        weight_flow.noalias() = w.flow[l].col(0) * n.col(0).transpose();  // outer product
      } else {
        w.scale = inv_examples / (n.colwise().squaredNorm().array() + normalisation_floor);
        n *= w.scale.asDiagonal();
        weight_flow.noalias() = w.flow[l] * n.transpose();
      }
      weight_flow -= params_.decay * weights(s, l);
    }
  }
}

RowMatrix DtpModel::update_direction(const State& s, std::size_t l, bool layer_scaled,
                                     double t) const {
  // h_{l−1}: the input at t for the first layer (the target phase's, as the update is applied
  // when the phase ends: leave_segment).
  const Eigen::MatrixXd below = l == 1 ? drive_->at(t) : Eigen::MatrixXd(h(s, l - 1));
  const Eigen::MatrixXd code = sigma(l - 1, below);
  const Eigen::MatrixXd miss = target(s, l) - h(s, l);
  if (examples_ == 1) {
    RowMatrix dw = miss.col(0) * code.col(0).transpose() / std::max(code.col(0).squaredNorm(), 1e-300);
    if (layer_scaled && miss.col(0).squaredNorm() > 0.0) {
      dw *= (target(s, depth_) - h(s, depth_)).col(0).squaredNorm() / miss.col(0).squaredNorm();
    }
    return dw;
  }
  // (1/B) Σ_b c_b miss_b code_bᵀ, c_b = 1/‖code_b‖² (DTP: times ‖τ_L − h_L‖²_b / ‖miss_b‖²).
  Eigen::VectorXd scale(examples_);
  const Eigen::MatrixXd out_miss = target(s, depth_) - h(s, depth_);
  for (Eigen::Index b = 0; b < examples_; ++b) {
    scale[b] = 1.0 / std::max(code.col(b).squaredNorm(), 1e-300);
    const double m = miss.col(b).squaredNorm();
    if (layer_scaled && m > 0.0) scale[b] *= out_miss.col(b).squaredNorm() / m;
  }
  scale /= static_cast<double>(examples_);
  return RowMatrix(miss * scale.asDiagonal() * code.transpose());
}

void DtpModel::apply_update(State& s, double t) const {
  std::vector<RowMatrix> steps;
  for (std::size_t l = 1; l <= depth_; ++l) {
    steps.push_back(update_direction(s, l, params_.update == DtpUpdate::dtp, t));
  }
  for (std::size_t l = 1; l <= depth_; ++l) layout_.matrix(s, w_[l]) += params_.eta * steps[l - 1];
}

void DtpModel::begin_target_phase(State& s, double t) const {
  const Eigen::MatrixXd& u = drive_->at(t);
  layout_.examples(s, target_[0]) = u;
  for (std::size_t l = 1; l <= depth_; ++l) layout_.examples(s, target_[l]) = h(s, l);
  const Eigen::MatrixXd tau_out = h(s, depth_) + params_.beta * output_error(s);
  layout_.examples(s, target_[depth_]) = tau_out;
  if (params_.iterations > 0) {
    for (std::size_t l = depth_; l >= 1; --l) {
      for (Eigen::Index b = 0; b < examples_; ++b) {
        const Eigen::VectorXd y = target(s, l).col(b);
        const auto xs = iterate_inverse([&](const Eigen::VectorXd& x) -> Eigen::VectorXd { return encode(s, l, x); },
                                        [&](const Eigen::VectorXd& v) -> Eigen::VectorXd { return decode(s, l, v); },
                                        y, target(s, l - 1).col(b), params_.iterations);
        layout_.examples(s, target_[l - 1]).col(b) = xs.back();
      }
    }
  }
  if (params_.update == DtpUpdate::flow) {
    // The output target's jump enters the flow as its integral η mean_b (τ_L − h_L)_b n_bᵀ.
    const Eigen::MatrixXd below = depth_ == 1 ? u : Eigen::MatrixXd(h(s, depth_ - 1));
    const Eigen::MatrixXd code = sigma(depth_ - 1, below);
    const Eigen::MatrixXd jump = tau_out - h(s, depth_);
    if (examples_ == 1) {
      layout_.matrix(s, w_[depth_]) += params_.eta * jump.col(0) * code.col(0).transpose() /
                                       std::max(code.col(0).squaredNorm(), 1e-300);
    } else {
      Eigen::VectorXd scale(examples_);
      for (Eigen::Index b = 0; b < examples_; ++b) {
        scale[b] = 1.0 / (static_cast<double>(examples_) * std::max(code.col(b).squaredNorm(), 1e-300));
      }
      layout_.matrix(s, w_[depth_]) += params_.eta * (jump * scale.asDiagonal() * code.transpose());
    }
  }
  phase_times_.clear();
  for (auto& r : phase_residuals_) r.clear();
  phase_open_ = true;
}

void DtpModel::close_target_phase(const State& s) const {
  if (!phase_open_) return;
  phase_open_ = false;
  const bool continuous = params_.iterations == 0;
  // Local rate of each layer's relaxation at its final target, min Re eig(J_{g∘f})/τ_r; the
  // residual of layer j also waits for the targets above it, so it decays at the slowest rate
  // among layers j … L−1.
  // The residual r = f(τ) − τ_l moves as τ_r ṙ = −J_f J_g r, in layer l's space (the nonzero
  // eigenvalues of J_f J_g are those of J_{g∘f} = J_g J_f).
  // With a batch, the prediction is the first example's (a nonsymmetric eigenproblem per example
  // and layer at every phase end would cost more than the relaxation itself).
  std::vector<double> local(depth_);
  for (std::size_t j = 0; j < depth_; ++j) {
    const Eigen::VectorXcd eig = residual_jacobian(s, j + 1, target(s, j).col(0)).eigenvalues();
    local[j] = eig.real().minCoeff() / params_.tau_r;
  }
  for (std::size_t j = 0; j < depth_; ++j) {
    fitted_[j].push_back(continuous ? fitted_decay_rate(phase_times_, phase_residuals_[j]) : undefined);
    closed_in_[j].push_back(static_cast<double>(drive_->segment()));
    predicted_[j].push_back(continuous ? *std::min_element(local.begin() + static_cast<std::ptrdiff_t>(j), local.end())
                                       : undefined);
  }
}

void DtpModel::leave_segment(State& s, double t) const {
  const std::size_t k = drive_->segment();
  const InputSignal& signal = drive_->signal();
  const auto& names = signal.spec().phase_names;
  const bool target_next = k + 1 < signal.segments() && names[signal.phase(k + 1)] == "target";
  if (!in_target_phase() || target_next) return;
  // The target phase ends: its relaxation is closed and the update applied while the drive still
  // holds the phase's input (h_0 of the first layer's update).
  close_target_phase(s);
  if (params_.update == DtpUpdate::dtp1 || params_.update == DtpUpdate::dtp) apply_update(s, t);
}

void DtpModel::enter_segment(State& s, double t) const {
  const std::size_t k = drive_->segment();
  const auto& names = drive_->signal().spec().phase_names;
  const bool target_now = in_target_phase();
  const bool target_before = k > 0 && names[drive_->signal().phase(k - 1)] == "target";
  if (target_now && !target_before) begin_target_phase(s, t);
  if (!target_now) {
    layout_.examples(s, target_[0]) = drive_->at(t);
    for (std::size_t l = 1; l <= depth_; ++l) layout_.examples(s, target_[l]) = h(s, l);
  }
}

void DtpModel::finish(const State& s, double) const { close_target_phase(s); }

// The open target phase's residual samples and the closed phases' fitted and predicted rates
// (the LU cache of exact decoders is refactored from the same weights with the same bits).
void DtpModel::save_events(Snapshot& out) const {
  out.put("model/dtp/phase_open", phase_open_ ? 1.0 : 0.0);
  out.put("model/dtp/phase_times", phase_times_);
  out.put_nested("model/dtp/phase_residuals", phase_residuals_);
  out.put_nested("model/dtp/fitted", fitted_);
  out.put_nested("model/dtp/predicted", predicted_);
  out.put_nested("model/dtp/closed_in", closed_in_);
}

void DtpModel::restore_events(const Snapshot& in) const {
  phase_open_ = in.scalar("model/dtp/phase_open") != 0.0;
  phase_times_ = in.get("model/dtp/phase_times");
  phase_residuals_ = in.nested("model/dtp/phase_residuals");
  fitted_ = in.nested("model/dtp/fitted");
  predicted_ = in.nested("model/dtp/predicted");
  closed_in_ = in.nested("model/dtp/closed_in");
  if (phase_residuals_.size() != depth_ || fitted_.size() != depth_ || predicted_.size() != depth_ ||
      closed_in_.size() != depth_) {
    throw InputError("the checkpoint's dtp event state does not match this network (another config?)");
  }
}

std::vector<std::string> DtpModel::metric_names() const {
  const auto& pops = network_->populations;
  std::vector<std::string> names{"loss"};
  for (std::size_t j = 0; j < depth_; ++j) names.push_back("relaxation/residual/" + pops[j].name);
  for (std::size_t l = 0; l <= depth_; ++l) names.push_back("relaxation/distance/" + pops[l].name);
  for (std::size_t j = 0; j < depth_; ++j) names.push_back("relaxation/lipschitz/" + pops[j].name);
  for (std::size_t l = 1; l <= depth_; ++l) {
    names.push_back("alignment/backprop/" + network_->projections[l - 1].name);
  }
  for (std::size_t l = 1; l <= depth_; ++l) {
    names.push_back("alignment/gauss_newton/" + network_->projections[l - 1].name);
  }
  if (drive_->signal().spec().kind == InputKind::dataset) names.emplace_back("accuracy");
  return names;
}

namespace {

// The root mean square over a batch of per-example norms (one example: the norm itself).
double batch_rms(const std::vector<double>& norms) {
  if (norms.size() == 1) return norms[0];
  double sum = 0.0;
  for (const double v : norms) sum += v * v;
  return std::sqrt(sum / static_cast<double>(norms.size()));
}

}  // namespace

void DtpModel::metrics(const State& s, double t, std::span<double> out) const {
  const Eigen::MatrixXd& u = drive_->at(t);
  std::size_t at = 0;
  out[at++] = target_loss(params_.loss, *drive_, h(s, depth_));
  // Residuals and distances: per example, the RMS over the batch.
  std::vector<double> residual(depth_);
  std::vector<double> norms(static_cast<std::size_t>(examples_));
  for (std::size_t j = 0; j < depth_; ++j) {
    const Eigen::MatrixXd r = encode(s, j + 1, target(s, j)) - target(s, j + 1);
    for (Eigen::Index b = 0; b < examples_; ++b) norms[b] = r.col(b).norm();
    residual[j] = batch_rms(norms);
    out[at++] = residual[j];
  }
  for (std::size_t l = 0; l <= depth_; ++l) {
    const Eigen::MatrixXd d = target(s, l) - activity(s, u, l);
    for (Eigen::Index b = 0; b < examples_; ++b) norms[b] = d.col(b).norm();
    out[at++] = batch_rms(norms);
  }
  // ‖I − J_{g∘f}‖₂ at each example's target: the largest over the batch. (One example: the
  // largest singular value by Jacobi SVD; a batch: √λ_max(MᵀM) by the symmetric eigensolver,
  // ~10× faster for the ~100 matrices of a minibatch, equal up to rounding.)
  for (std::size_t j = 0; j < depth_; ++j) {
    double largest = 0.0;
    for (Eigen::Index b = 0; b < examples_; ++b) {
      const Eigen::VectorXd x = target(s, j).col(b);
      const auto n = x.size();
      const Eigen::MatrixXd m = Eigen::MatrixXd::Identity(n, n) - autoencoder_jacobian(s, j + 1, x);
      const double norm =
          examples_ == 1
              ? m.jacobiSvd().singularValues()(0)
              : std::sqrt(std::max(0.0, Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(
                                            m.transpose() * m, Eigen::EigenvaluesOnly)
                                            .eigenvalues()
                                            .maxCoeff()));
      largest = b == 0 ? norm : std::max(largest, norm);
    }
    out[at++] = largest;
  }
  // ΔW_l against backprop, mean_b δ_{l,b} σ(h_{l−1,b})ᵀ, and Gauss–Newton, mean_b (β J_b⁺ e_b)
  // n_bᵀ. With one example all three share the row factor σ(h_{l−1})ᵀ, so the cosines are those
  // of the column factors.
  const Eigen::MatrixXd e = output_error(s);
  std::vector<double> bp(depth_ + 1, undefined), gn(depth_ + 1, undefined);
  if (examples_ == 1) {
    Eigen::VectorXd delta = e.col(0);                                  // −∂L/∂h_l
    Eigen::MatrixXd jac = Eigen::MatrixXd::Identity(e.rows(), e.rows());  // ∂h_L/∂h_l
    for (std::size_t l = depth_; l >= 1; --l) {
      const Eigen::VectorXd miss = (target(s, l) - h(s, l)).col(0);
      bp[l] = cosine(miss, delta);
      const Eigen::VectorXd gauss_newton =
          params_.beta * jac.completeOrthogonalDecomposition().solve(Eigen::VectorXd(e.col(0)));
      gn[l] = cosine(miss, gauss_newton);
      const Eigen::VectorXd d = sigma_derivative(l - 1, activity(s, u, l - 1)).col(0);
      const Eigen::MatrixXd step = Eigen::MatrixXd(weights(s, l)) * d.asDiagonal();
      delta = step.transpose() * delta;
      jac = jac * step;
    }
  } else {
    std::vector<RowMatrix> dw(depth_ + 1), backprop(depth_ + 1), newton(depth_ + 1);
    for (std::size_t l = 1; l <= depth_; ++l) {
      const auto rows = network_->populations[l].size, cols = network_->populations[l - 1].size;
      dw[l] = RowMatrix::Zero(rows, cols);
      backprop[l] = RowMatrix::Zero(rows, cols);
      newton[l] = RowMatrix::Zero(rows, cols);
    }
    for (Eigen::Index b = 0; b < examples_; ++b) {
      Eigen::VectorXd delta = e.col(b);
      Eigen::MatrixXd jac = Eigen::MatrixXd::Identity(e.rows(), e.rows());
      for (std::size_t l = depth_; l >= 1; --l) {
        const Eigen::VectorXd below = activity(s, u, l - 1).col(b);
        Eigen::VectorXd code = sigma(l - 1, below);
        const Eigen::VectorXd miss = (target(s, l) - h(s, l)).col(b);
        const Eigen::VectorXd gauss_newton =
            params_.beta * jac.completeOrthogonalDecomposition().solve(Eigen::VectorXd(e.col(b)));
        backprop[l] += delta * code.transpose();
        code /= std::max(code.squaredNorm(), 1e-300);
        dw[l] += miss * code.transpose();
        newton[l] += gauss_newton * code.transpose();
        const Eigen::VectorXd d = sigma_derivative(l - 1, below);
        const Eigen::MatrixXd step = Eigen::MatrixXd(weights(s, l)) * d.asDiagonal();
        delta = step.transpose() * delta;
        jac = jac * step;
      }
    }
    auto flat = [](const RowMatrix& m) { return Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(m.data(), m.size())); };
    for (std::size_t l = 1; l <= depth_; ++l) {
      bp[l] = cosine(flat(dw[l]), flat(backprop[l]));
      gn[l] = cosine(flat(dw[l]), flat(newton[l]));
    }
  }
  for (std::size_t l = 1; l <= depth_; ++l) out[at++] = bp[l];
  for (std::size_t l = 1; l <= depth_; ++l) out[at++] = gn[l];
  if (drive_->signal().spec().kind == InputKind::dataset) {
    out[at++] = static_cast<double>(batch_correct(h(s, depth_), drive_->target(), drive_->error_rows())) /
                static_cast<double>(examples_);
  }

  if (phase_open_ && in_target_phase()) {
    phase_times_.push_back(t);
    for (std::size_t j = 0; j < depth_; ++j) phase_residuals_[j].push_back(residual[j]);
  }
}

std::vector<DatasetAttribute> DtpModel::summary() const {
  std::vector<DatasetAttribute> attrs;
  for (std::size_t j = 0; j < depth_; ++j) {
    const std::string path = "/metrics/relaxation/residual/" + network_->populations[j].name;
    attrs.push_back({path, "fitted_rate", fitted_[j]});
    attrs.push_back({path, "predicted_rate", predicted_[j]});
  }
  // Per target phase: the input segment in which it ended (the run adds the phase's divergence
  // flag from /metrics/phase/diverged as the attribute "diverged").
  for (std::size_t j = 0; j < depth_; ++j) {
    attrs.push_back({"/metrics/relaxation/residual/" + network_->populations[j].name, "segment", closed_in_[j]});
  }
  return attrs;
}

bool DtpModel::predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
                       Eigen::Ref<Eigen::MatrixXd> outputs) const {
  // The settled forward pass h_l = f_l(h_{l−1}) = W_l σ(h_{l−1}) + b_l from h_0 = u.
  Eigen::MatrixXd h = inputs;
  for (std::size_t l = 1; l <= depth_; ++l) h = encode(s, l, h);
  outputs = h;
  return true;
}

std::vector<ParameterArray> DtpModel::parameters(const State& s) const {
  std::vector<ParameterArray> out;
  const auto& pops = network_->populations;
  for (std::size_t l = 1; l <= depth_; ++l) {
    const auto w = weights(s, l);
    out.push_back({"W/" + network_->projections[l - 1].name, {w.rows(), w.cols()},
                   std::vector<double>(w.data(), w.data() + w.size())});
  }
  for (std::size_t l = 1; l <= depth_; ++l) {
    const Eigen::VectorXd& b = network_->bias[l];
    out.push_back({"b/" + pops[l].name, {b.size()}, std::vector<double>(b.data(), b.data() + b.size())});
  }
  for (std::size_t l = 1; l <= depth_ && params_.decoders != DecoderKind::exact; ++l) {
    const RowMatrix omega = decoder(s, l);
    out.push_back({"Omega/" + network_->projections[l - 1].name, {omega.rows(), omega.cols()},
                   std::vector<double>(omega.data(), omega.data() + omega.size())});
    const Eigen::VectorXd& c = decoder_bias_[l];
    out.push_back({"c/" + pops[l - 1].name, {c.size()}, std::vector<double>(c.data(), c.data() + c.size())});
  }
  return out;
}

}  // namespace lf
