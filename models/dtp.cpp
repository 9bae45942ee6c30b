#include "models/dtp.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "models/backprop.hpp"
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
    : network_(&network), params_(params), drive_(&drive) {
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
  for (std::size_t l = 1; l <= depth_; ++l) h_.push_back(layout_.add("h", pops[l].name, {pops[l].size}));
  for (std::size_t l = 0; l <= depth_; ++l) {
    target_.push_back(layout_.add("target", pops[l].name, {pops[l].size}));
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
  predicted_.resize(depth_);
  // RHS scratch: vectors in layer l (f, arg, flow, code_above) or layer l−1 (code_below, pre,
  // g_first, g_second) of projection l.
  auto sized = [&](std::vector<Eigen::VectorXd>& v, std::ptrdiff_t shift) {
    v.resize(depth_ + 1);
    for (std::size_t l = 1; l <= depth_; ++l) v[l].resize(pops[l - static_cast<std::size_t>(shift)].size);
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
}

Eigen::Map<const Eigen::VectorXd> DtpModel::h(const State& s, std::size_t l) const {
  return layout_.vector(s, h_[l]);
}
Eigen::Map<const Eigen::VectorXd> DtpModel::target(const State& s, std::size_t l) const {
  return layout_.vector(s, target_[l]);
}
Eigen::Map<const RowMatrix> DtpModel::weights(const State& s, std::size_t l) const {
  return layout_.matrix(s, w_[l]);
}
Eigen::Map<const RowMatrix> DtpModel::decoder(const State& s, std::size_t l) const {
  if (omega_[l]) return layout_.matrix(s, *omega_[l]);
  return {fixed_omega_[l].data(), fixed_omega_[l].rows(), fixed_omega_[l].cols()};
}

Eigen::VectorXd DtpModel::sigma(std::size_t p, const Eigen::VectorXd& v) const {
  Eigen::VectorXd out(v.size());
  activate(network_->populations[p].activation, v, out);
  return out;
}
Eigen::VectorXd DtpModel::sigma_derivative(std::size_t p, const Eigen::VectorXd& v) const {
  Eigen::VectorXd out(v.size());
  activate_derivative(network_->populations[p].activation, v, out);
  return out;
}

Eigen::VectorXd DtpModel::encode(const State& s, std::size_t l, const Eigen::VectorXd& below) const {
  Eigen::VectorXd code(below.size()), out(network_->populations[l].size);
  encode_into(s, l, below, code, out);
  return out;
}

Eigen::VectorXd DtpModel::decode(const State& s, std::size_t l, const Eigen::VectorXd& above) const {
  Eigen::VectorXd out(network_->populations[l - 1].size);
  decode_into(s, l, above, out);
  return out;
}

void DtpModel::encode_into(const State& s, std::size_t l,
                           const Eigen::Ref<const Eigen::VectorXd>& below, Eigen::VectorXd& code,
                           Eigen::VectorXd& out) const {
  activate(network_->populations[l - 1].activation, below, code);
  out.noalias() = weights(s, l) * code;
  out += network_->bias[l];
}

void DtpModel::decode_into(const State& s, std::size_t l,
                           const Eigen::Ref<const Eigen::VectorXd>& above, Eigen::VectorXd& out) const {
  if (params_.decoders == DecoderKind::exact) {
    Eigen::VectorXd& pre = work_.pre[l];
    Eigen::VectorXd& shifted = work_.shifted[l];
    shifted = above - network_->bias[l];
    pre = weights_lu(s, l).solve(shifted);
    activate_inverse(network_->populations[l - 1].activation, pre, out);
    return;
  }
  Eigen::VectorXd& code = work_.code_above[l];
  activate(network_->populations[l].activation, above, code);
  out.noalias() = decoder(s, l) * code;
  out += decoder_bias_[l];
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
  return Eigen::MatrixXd(decoder(s, l)) * sigma_derivative(l, y).asDiagonal() *
         Eigen::MatrixXd(weights(s, l)) * sigma_derivative(l - 1, x).asDiagonal();
}

Eigen::MatrixXd DtpModel::residual_jacobian(const State& s, std::size_t l,
                                            const Eigen::VectorXd& x) const {
  const Eigen::VectorXd y = encode(s, l, x);
  const Eigen::MatrixXd jf = Eigen::MatrixXd(weights(s, l)) * sigma_derivative(l - 1, x).asDiagonal();
  if (params_.decoders == DecoderKind::exact) return jf * jf.partialPivLu().inverse();
  return jf * Eigen::MatrixXd(decoder(s, l)) * sigma_derivative(l, y).asDiagonal();
}

Eigen::VectorXd DtpModel::output_error(const State& s) const {
  const Eigen::VectorXd hL = h(s, depth_);
  Eigen::VectorXd e(hL.size());
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
  const Eigen::VectorXd& u = drive_->at(t);
  auto activity = [&](std::size_t l) -> Eigen::Ref<const Eigen::VectorXd> {
    if (l == 0) return u;
    return h(s, l);
  };
  Workspace& w = work_;
  if (!in_target_phase()) {
    // Forward phase: h relaxes to the feedforward pass, the targets follow h, decoders learn.
    for (std::size_t l = 1; l <= depth_; ++l) {
      encode_into(s, l, activity(l - 1), w.code_below[l], w.f[l]);
      auto dh = layout_.vector(ds, h_[l]);
      dh = (w.f[l] - h(s, l)) / params_.tau_h;
      layout_.vector(ds, target_[l]) = dh;
      if (omega_[l]) {
        Eigen::VectorXd& code = w.arg[l];  // σ(h_l)
        activate(network_->populations[l].activation, activity(l), code);
        decode_into(s, l, activity(l), w.g_first[l]);
        Eigen::VectorXd& scaled_miss = w.g_second[l];  // η_Ω (h_{l−1} − g_l(h_l))
        scaled_miss = params_.decoder_rate * (activity(l - 1) - w.g_first[l]);
        auto omega_flow = layout_.matrix(ds, *omega_[l]);
        omega_flow.noalias() = scaled_miss * code.transpose();  // outer product, in place
        omega_flow /= code.squaredNorm() + normalisation_floor;
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
      layout_.vector(ds, target_[l - 1]) = (w.g_first[l] - w.g_second[l]) / params_.tau_r;
    }
  }
  if (params_.update == DtpUpdate::flow) {
    for (std::size_t l = 1; l <= depth_; ++l) {
      Eigen::VectorXd& n = w.code_below[l];  // σ(h_{l−1}) / (‖σ(h_{l−1})‖² + ε)
      activate(network_->populations[l - 1].activation, activity(l - 1), n);
      n /= n.squaredNorm() + normalisation_floor;
      w.flow[l] = params_.eta * layout_.vector(ds, target_[l]);
      auto weight_flow = layout_.matrix(ds, w_[l]);
      weight_flow.noalias() = w.flow[l] * n.transpose();  // outer product, in place
      weight_flow -= params_.decay * weights(s, l);
    }
  }
}

RowMatrix DtpModel::update_direction(const State& s, std::size_t l, bool layer_scaled) const {
  const Eigen::VectorXd below = l == 1 ? Eigen::VectorXd(target(s, 0) * 0.0 + drive_->at(0.0))
                                       : Eigen::VectorXd(h(s, l - 1));
  const Eigen::VectorXd code = sigma(l - 1, below);
  const Eigen::VectorXd miss = target(s, l) - h(s, l);
  RowMatrix dw = miss * code.transpose() / std::max(code.squaredNorm(), 1e-300);
  if (layer_scaled && miss.squaredNorm() > 0.0) {
    dw *= (target(s, depth_) - h(s, depth_)).squaredNorm() / miss.squaredNorm();
  }
  return dw;
}

void DtpModel::apply_update(State& s) const {
  std::vector<RowMatrix> steps;
  for (std::size_t l = 1; l <= depth_; ++l) steps.push_back(update_direction(s, l, params_.update == DtpUpdate::dtp));
  for (std::size_t l = 1; l <= depth_; ++l) layout_.matrix(s, w_[l]) += params_.eta * steps[l - 1];
}

void DtpModel::begin_target_phase(State& s) const {
  const Eigen::VectorXd& u = drive_->at(0.0);
  layout_.vector(s, target_[0]) = u;
  for (std::size_t l = 1; l <= depth_; ++l) layout_.vector(s, target_[l]) = h(s, l);
  const Eigen::VectorXd tau_out = Eigen::VectorXd(h(s, depth_)) + params_.beta * output_error(s);
  layout_.vector(s, target_[depth_]) = tau_out;
  if (params_.iterations > 0) {
    for (std::size_t l = depth_; l >= 1; --l) {
      const Eigen::VectorXd y = target(s, l);
      const auto xs = iterate_inverse([&](const Eigen::VectorXd& x) { return encode(s, l, x); },
                                      [&](const Eigen::VectorXd& v) { return decode(s, l, v); }, y,
                                      target(s, l - 1), params_.iterations);
      layout_.vector(s, target_[l - 1]) = xs.back();
    }
  }
  if (params_.update == DtpUpdate::flow) {
    // The output target's jump enters the flow as its integral η (τ_L − h_L) nᵀ.
    const Eigen::VectorXd below = depth_ == 1 ? Eigen::VectorXd(u) : Eigen::VectorXd(h(s, depth_ - 1));
    const Eigen::VectorXd code = sigma(depth_ - 1, below);
    layout_.matrix(s, w_[depth_]) += params_.eta * (tau_out - h(s, depth_)) * code.transpose() /
                                     std::max(code.squaredNorm(), 1e-300);
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
  std::vector<double> local(depth_);
  for (std::size_t j = 0; j < depth_; ++j) {
    const Eigen::VectorXcd eig = residual_jacobian(s, j + 1, target(s, j)).eigenvalues();
    local[j] = eig.real().minCoeff() / params_.tau_r;
  }
  for (std::size_t j = 0; j < depth_; ++j) {
    fitted_[j].push_back(continuous ? fitted_decay_rate(phase_times_, phase_residuals_[j]) : undefined);
    predicted_[j].push_back(continuous ? *std::min_element(local.begin() + static_cast<std::ptrdiff_t>(j), local.end())
                                       : undefined);
  }
}

void DtpModel::enter_segment(State& s, double) const {
  const std::size_t k = drive_->segment();
  const auto& names = drive_->signal().spec().phase_names;
  const bool target_now = in_target_phase();
  const bool target_before = k > 0 && names[drive_->signal().phase(k - 1)] == "target";
  if (target_before && !target_now) {
    close_target_phase(s);
    if (params_.update == DtpUpdate::dtp1 || params_.update == DtpUpdate::dtp) apply_update(s);
  }
  if (target_now && !target_before) begin_target_phase(s);
  if (!target_now) {
    layout_.vector(s, target_[0]) = drive_->at(0.0);
    for (std::size_t l = 1; l <= depth_; ++l) layout_.vector(s, target_[l]) = h(s, l);
  }
}

void DtpModel::finish(const State& s, double) const { close_target_phase(s); }

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
  return names;
}

void DtpModel::metrics(const State& s, double t, std::span<double> out) const {
  const Eigen::VectorXd& u = drive_->at(t);
  auto activity = [&](std::size_t l) -> Eigen::VectorXd {
    return l == 0 ? Eigen::VectorXd(u) : Eigen::VectorXd(h(s, l));
  };
  std::size_t at = 0;
  out[at++] = drive_->has_target() ? loss_value(params_.loss, h(s, depth_), drive_->target()) : undefined;
  std::vector<double> residual(depth_);
  for (std::size_t j = 0; j < depth_; ++j) {
    residual[j] = (encode(s, j + 1, target(s, j)) - target(s, j + 1)).norm();
    out[at++] = residual[j];
  }
  for (std::size_t l = 0; l <= depth_; ++l) out[at++] = (target(s, l) - activity(l)).norm();
  for (std::size_t j = 0; j < depth_; ++j) {
    const auto n = target(s, j).size();
    const Eigen::MatrixXd m = Eigen::MatrixXd::Identity(n, n) - autoencoder_jacobian(s, j + 1, target(s, j));
    out[at++] = m.jacobiSvd().singularValues()(0);
  }
  // ΔW_l = (τ_l − h_l) nᵀ against backprop, δ_l σ(h_{l−1})ᵀ, and Gauss–Newton, (β J⁺ e) nᵀ:
  // all share the row factor σ(h_{l−1})ᵀ, so the cosines are those of the column factors.
  const Eigen::VectorXd e = output_error(s);
  Eigen::VectorXd delta = e;                                   // −∂L/∂h_l
  Eigen::MatrixXd jac = Eigen::MatrixXd::Identity(e.size(), e.size());  // ∂h_L/∂h_l
  std::vector<double> bp(depth_ + 1, undefined), gn(depth_ + 1, undefined);
  for (std::size_t l = depth_; l >= 1; --l) {
    const Eigen::VectorXd miss = target(s, l) - h(s, l);
    bp[l] = cosine(miss, delta);
    const Eigen::VectorXd gauss_newton = params_.beta * jac.completeOrthogonalDecomposition().solve(e);
    gn[l] = cosine(miss, gauss_newton);
    const Eigen::MatrixXd step = Eigen::MatrixXd(weights(s, l)) *
                                 sigma_derivative(l - 1, activity(l - 1)).asDiagonal();
    delta = step.transpose() * delta;
    jac = jac * step;
  }
  for (std::size_t l = 1; l <= depth_; ++l) out[at++] = bp[l];
  for (std::size_t l = 1; l <= depth_; ++l) out[at++] = gn[l];

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
  return attrs;
}

}  // namespace lf
