#include "models/holonomic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <Eigen/Eigenvalues>

#include "sim/core/errors.hpp"

namespace lf {
namespace {
constexpr double undefined = std::numeric_limits<double>::quiet_NaN();

// f(index in the projection's values, row, column) for every stored weight of q.
template <class F>
void for_each_weight(const Projection& q, F&& f) {
  if (!q.sparse) {
    for (Eigen::Index r = 0; r < q.rows(); ++r) {
      for (Eigen::Index c = 0; c < q.cols(); ++c) f(r * q.cols() + c, r, c);
    }
    return;
  }
  const SparseRowMatrix& m = q.csr;
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    for (Eigen::Index i = m.outerIndexPtr()[r]; i < m.outerIndexPtr()[r + 1]; ++i) {
      f(i, r, static_cast<Eigen::Index>(m.innerIndexPtr()[i]));
    }
  }
}
}  // namespace

HolonomicModel::HolonomicModel(const Network& network, const HolonomicParams& params, const Drive& drive)
    : network_(&network), params_(params), drive_(&drive),
      layout_(params.patterns == HolonomicPatterns::batch
                  ? BatchShape{static_cast<Eigen::Index>(std::max<std::size_t>(
                                   1, drive.signal().spec().sequence.size())), true}
                  : drive.signal().batch_shape()),
      x_(network, layout_, "x"), xdot_(network, layout_, "xdot"), lambda_(network, layout_, "lambda"),
      learned_(network, layout_, params.plastic_bias),
      budget_(0),
      reference_(network, 1.0, params.loss,
                 params.patterns == HolonomicPatterns::batch ? -1 : drive.error_rows()) {
  const auto& pops = network.populations;
  const InputSpec& spec = drive.signal().spec();
  if (params.patterns == HolonomicPatterns::batch && spec.kind != InputKind::sequence) {
    throw ConfigError("model.patterns", "",
                      "model.patterns: \"batch\" shows every vector of the input sequence at once: it "
                      "needs input.kind = \"sequence\" (or patterns = \"stream\")");
  }
  for (const Population& p : pops) {
    if (p.role != Role::input && !twice_differentiable(p.activation)) {
      throw ConfigError("network.activation", "", fmt::format(
          "network.activation: model 'holonomic' needs σ'' in its reactions (a C² activation: "
          "tanh, logistic, softplus, asinh, linear), but population '{}' uses '{}'", p.name,
          activation_name(p.activation)));
    }
  }
  // Kahn's algorithm over the non-input populations; what is left over lies on a cycle.
  std::vector<int> pending(pops.size(), 0);
  for (const Projection& q : network.projections) {
    if (pops[q.from].role != Role::input) ++pending[q.to];
  }
  std::vector<std::size_t> ready;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role != Role::input && pending[p] == 0) ready.push_back(p);
  }
  while (!ready.empty()) {
    const std::size_t p = ready.back();
    ready.pop_back();
    order_.push_back(p);
    for (const std::size_t k : x_.outgoing(p)) {
      if (--pending[network.projections[k].to] == 0) ready.push_back(network.projections[k].to);
    }
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role != Role::input && pending[p] > 0) {
      throw ConfigError("network", "", fmt::format(
          "network: model 'holonomic' needs a directed acyclic graph (x = σ(a) must be solvable "
          "by one forward pass), but population '{}' lies on a cycle; cyclic graphs need the "
          "slack-variable formulation (Proposition 2), a future model", pops[p].name));
    }
  }
  // Velocities beside every learned block, in its shape; then the energy budget.
  const auto velocity = [&](const std::optional<BlockId>& id, const char* kind) -> std::optional<BlockId> {
    if (!id) return std::nullopt;
    const Block& b = layout_.block(*id);
    return layout_.add(kind, b.member, b.shape);
  };
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    weight_velocity_.push_back(velocity(learned_.weight_block(k), "Wdot"));
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    bias_velocity_.push_back(velocity(learned_.bias_block(p), "bdot"));
  }
  budget_ = layout_.add("energy", "budget", {1});

  n_ = x_.neurons();
  patterns_ = x_.examples();
  for (std::size_t p = 0; p < pops.size(); ++p) {
    input_offset_.push_back(x_.is_input(p) ? n_in_ : -1);
    if (x_.is_input(p)) n_in_ += pops[p].size;
  }
  if (params.patterns == HolonomicPatterns::batch) {
    batch_inputs_.resize(n_in_, patterns_);
    for (Eigen::Index k = 0; k < patterns_; ++k) {
      batch_inputs_.col(k) = Eigen::Map<const Eigen::VectorXd>(spec.sequence[static_cast<std::size_t>(k)].data(), n_in_);
    }
    has_batch_targets_ = !spec.targets.empty();
    if (has_batch_targets_) {
      batch_targets_.resize(x_.outputs(), patterns_);
      for (Eigen::Index k = 0; k < patterns_; ++k) {
        batch_targets_.col(k) =
            Eigen::Map<const Eigen::VectorXd>(spec.targets[static_cast<std::size_t>(k)].data(), x_.outputs());
      }
    }
  }
  if (params.input_switch == HolonomicInputSwitch::ramp) {
    const auto& bounds = drive.signal().boundaries();
    for (std::size_t k = 1; k + 1 < bounds.size(); ++k) {
      if (bounds[k + 1] - bounds[k] <= params.ramp_width) {
        throw ConfigError("model.ramp_width", "", fmt::format(
            "model.ramp_width: the input ramps must end within their segment, but the segment "
            "[{}, {}] is not longer than ramp_width = {}", bounds[k], bounds[k + 1], params.ramp_width));
      }
    }
  }
  sign_ = params.sign == HolonomicSign::mechanics ? 1.0 : -1.0;
  const Eigen::Index cols = n_ + n_in_;
  auto column = [&](std::size_t p) { return x_.is_input(p) ? n_ + input_offset_[p] : x_.offset(p); };
  plastic_mask_ = Eigen::MatrixXd::Zero(n_, cols);
  bias_mask_ = Eigen::VectorXd::Zero(n_);
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    const Projection& q = network.projections[k];
    if (!learned_.weight_block(k)) continue;
    const Eigen::Index r0 = x_.offset(q.to), c0 = column(q.from);
    for_each_weight(q, [&](Eigen::Index, Eigen::Index r, Eigen::Index c) { plastic_mask_(r0 + r, c0 + c) = 1.0; });
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (learned_.bias_block(p)) bias_mask_.segment(x_.offset(p), pops[p].size).setOnes();
  }

  const Eigen::Index B = patterns_;
  w_ = Eigen::MatrixXd::Zero(n_, cols);
  wdot_ = Eigen::MatrixXd::Zero(n_, cols);
  weight_force_ = Eigen::MatrixXd::Zero(n_, cols);
  b_.resize(n_);
  bdot_.resize(n_);
  x_all_ = Eigen::MatrixXd::Zero(cols, B);
  xdot_all_ = Eigen::MatrixXd::Zero(cols, B);
  u_acc_ = Eigen::MatrixXd::Zero(n_in_, B);
  ramp_from_ = Eigen::MatrixXd::Zero(n_in_, B);
  for (Eigen::MatrixXd* m : {&a_, &sigma_, &d1_, &d2_, &adot_, &g_, &gdot_, &gt_, &q_, &force_,
                             &rhs_, &lambda_x_, &xddot_, &tmp_}) {
    *m = Eigen::MatrixXd::Zero(n_, B);
  }
  y_ = Eigen::MatrixXd::Zero(x_.outputs(), B);
  e_out_ = Eigen::MatrixXd::Zero(x_.outputs(), B);
  x_out_ = Eigen::MatrixXd::Zero(x_.outputs(), B);
  m_lambda_ = Eigen::MatrixXd::Zero(n_ * B, n_ * B);
  g_x_ = Eigen::MatrixXd::Zero(n_, n_);
  gram_ = Eigen::MatrixXd::Zero(B, B);
  solve_ = Eigen::VectorXd::Zero(n_ * B);
  // Sizes the factor once (no allocation in the RHS). Not LLT(size): it leaves the factor's
  // info undefined, and copying or moving it is undefined behaviour (UBSan).
  llt_.compute(Eigen::MatrixXd::Identity(n_ * B, n_ * B));
  scratch_ds_.resize(static_cast<std::size_t>(layout_.size()));

  // solver = "block" and "cg": the weight blocks among non-inputs and the columns feeding each
  // population (one entry per (to, from) pair: two projections between the same pair share one).
  pre_columns_.resize(pops.size());
  for (const Projection& q : network.projections) {
    if (x_.is_input(q.to)) continue;
    const Eigen::Index c0 = column(q.from), cols = pops[q.from].size;
    auto& pre = pre_columns_[q.to];
    if (std::find(pre.begin(), pre.end(), std::pair{c0, cols}) != pre.end()) continue;
    pre.emplace_back(c0, cols);
    if (x_.is_input(q.from)) continue;
    couplings_.push_back({x_.offset(q.to), c0, pops[q.to].size, cols, q.to, q.from});
  }
  if (params.solver == HolonomicSolver::block) {
    // A layered network: the non-input populations form one chain, each fed (among non-inputs)
    // by the previous one only; then M_λ is block-tridiagonal over the chain.
    std::vector<int> predecessors(pops.size(), 0), successors(pops.size(), 0);
    std::vector<std::size_t> next(pops.size(), pops.size());
    for (const Coupling& c : couplings_) {
      ++predecessors[c.to];
      ++successors[c.from];
      next[c.from] = c.to;
    }
    std::size_t head = pops.size();
    for (std::size_t p = 0; p < pops.size(); ++p) {
      if (x_.is_input(p)) continue;
      const bool branches = predecessors[p] > 1 || successors[p] > 1;
      if (branches || (predecessors[p] == 0 && head < pops.size())) {
        throw ConfigError("model.solver", "", fmt::format(
            "model.solver: \"block\" needs a layered network (the non-input populations in one "
            "chain, each fed only by the previous one, as network.layers builds), but population "
            "'{}' {}; use solver = \"dense\" or \"cg\"", pops[p].name,
            branches ? "has more than one non-input predecessor or successor"
                     : "starts a second chain (it has no non-input predecessor)"));
      }
      if (predecessors[p] == 0) head = p;
    }
    for (std::size_t p = head; p < pops.size(); p = next[p]) {
      const Eigen::Index size = pops[p].size * B;
      if (!layers_.empty()) {
        block_coupling_.push_back(Eigen::MatrixXd::Zero(layers_.back().second * B, size));
        block_dw_.push_back(Eigen::MatrixXd::Zero(pops[p].size, layers_.back().second));
      } else {
        block_coupling_.emplace_back();
        block_dw_.emplace_back();
      }
      layers_.emplace_back(x_.offset(p), pops[p].size);
      block_diagonal_.push_back(Eigen::MatrixXd::Zero(size, size));
      block_llt_.emplace_back();
      block_llt_.back().compute(Eigen::MatrixXd::Identity(size, size));  // sized, info defined
      block_vector_.push_back(Eigen::VectorXd::Zero(size));
    }
  }
  if (params.solver != HolonomicSolver::dense) gram_w_ = Eigen::MatrixXd::Zero(n_, B * B);
  if (params.solver == HolonomicSolver::cg) {
    for (Eigen::MatrixXd* m :
         {&cg_diagonal_, &cg_b_, &cg_x_, &cg_r_, &cg_z_, &cg_p_, &cg_q_, &cg_u_, &cg_h_}) {
      *m = Eigen::MatrixXd::Zero(n_, B);
    }
    cg_row_norm_ = Eigen::VectorXd::Zero(n_);
  }
}

void HolonomicModel::initial_state(State& s) const {
  std::fill(s.begin(), s.end(), 0.0);
  learned_.initial_state(layout_, s);
  // x on the manifold (the forward pass at t0), at rest: enter_segment at t0 then books Ẽ(t0).
  gather(s, drive_->signal().boundaries().front());
  forward_pass();
  write_coordinates(s);
}

bool HolonomicModel::targets(Eigen::MatrixXd& y) const {
  if (params_.patterns == HolonomicPatterns::batch) {
    if (has_batch_targets_) y = batch_targets_;
    return has_batch_targets_;
  }
  if (!drive_->has_target()) return false;
  y = drive_->target();
  return true;
}

void HolonomicModel::gather(const State& s, double t) const {
  const auto& pops = network_->populations;
  const auto& projections = network_->projections;
  auto column = [&](std::size_t p) { return x_.is_input(p) ? n_ + input_offset_[p] : x_.offset(p); };
  for (std::size_t k = 0; k < projections.size(); ++k) {
    const Projection& q = projections[k];
    const WeightView w = learned_.weights(layout_, s, k);
    const double* v = weight_velocity_[k] ? s.data() + layout_.block(*weight_velocity_[k]).offset : nullptr;
    const Eigen::Index r0 = x_.offset(q.to), c0 = column(q.from);
    for_each_weight(q, [&](Eigen::Index i, Eigen::Index r, Eigen::Index c) {
      w_(r0 + r, c0 + c) = w.values[i];
      wdot_(r0 + r, c0 + c) = v != nullptr ? v[i] : 0.0;
    });
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (x_.is_input(p)) continue;
    const Eigen::Index off = x_.offset(p), n = pops[p].size;
    b_.segment(off, n) = learned_.bias(layout_, s, p);
    if (bias_velocity_[p]) {
      bdot_.segment(off, n) = layout_.vector(s, *bias_velocity_[p]);
    } else {
      bdot_.segment(off, n).setZero();
    }
    x_all_.middleRows(off, n) = layout_.examples(s, x_.block(p));
    xdot_all_.middleRows(off, n) = layout_.examples(s, xdot_.block(p));
  }
  const InputSpec& spec = drive_->signal().spec();
  if (params_.patterns == HolonomicPatterns::batch) {
    x_all_.bottomRows(n_in_) = batch_inputs_;
    xdot_all_.bottomRows(n_in_).setZero();
    u_acc_.setZero();
  } else {
    x_all_.bottomRows(n_in_) = drive_->at(t);
    xdot_all_.bottomRows(n_in_) = drive_->rate_at(t);
    u_acc_.setZero();
    if (spec.kind == InputKind::sine) {  // ü = −ω² (u − offset)
      for (Eigen::Index i = 0; i < n_in_; ++i) {
        const double omega = 2.0 * std::numbers::pi * spec.frequency[static_cast<std::size_t>(i)];
        u_acc_.row(i) = -omega * omega * (x_all_.row(n_ + i).array() - spec.offset[static_cast<std::size_t>(i)]);
      }
    }
    const std::size_t k = drive_->segment();
    const double start = drive_->signal().boundaries()[k], width = params_.ramp_width;
    if (params_.input_switch == HolonomicInputSwitch::ramp && k > 0 && t < start + width) {
      // u = u_old + S(z) Δ, z = (t − start)/width, S = z³(10 − 15z + 6z²): S, S', S'' vanish at
      // z = 0 and S', S'' at z = 1, so u is C² across the switch and the ramp's end.
      drive_->signal().value(k - 1, start, ramp_from_);
      const double z = std::clamp((t - start) / width, 0.0, 1.0);
      const double shape = z * z * z * (10.0 - 15.0 * z + 6.0 * z * z);
      const double rate = 30.0 * z * z * (1.0 - z) * (1.0 - z) / width;
      const double curvature = 60.0 * z * (1.0 - z) * (1.0 - 2.0 * z) / (width * width);
      auto u = x_all_.bottomRows(n_in_);
      u -= ramp_from_;  // Δ
      xdot_all_.bottomRows(n_in_) += rate * u;
      u_acc_ += curvature * u;
      u = ramp_from_ + shape * u;
    }
  }
  phi_ = params_.dissipation == HolonomicDissipation::kinetic ? std::exp(-params_.theta * t) : 1.0;
  has_target_ = targets(y_);
}

void HolonomicModel::activations() const {
  const auto& pops = network_->populations;
  a_.noalias() = w_ * x_all_;
  a_.colwise() += b_;
  for (const std::size_t p : order_) {
    const Eigen::Index off = x_.offset(p), n = pops[p].size;
    activate_with_derivative(pops[p].activation, a_.middleRows(off, n), sigma_.middleRows(off, n),
                             d1_.middleRows(off, n));
    activate_second_derivative(pops[p].activation, a_.middleRows(off, n), d2_.middleRows(off, n));
  }
}

void HolonomicModel::forward_pass() const {
  const auto& pops = network_->populations;
  for (const std::size_t p : order_) {
    const Eigen::Index off = x_.offset(p), n = pops[p].size;
    a_.middleRows(off, n).noalias() = w_.middleRows(off, n) * x_all_;
    a_.middleRows(off, n).colwise() += b_.segment(off, n);
    activate_with_derivative(pops[p].activation, a_.middleRows(off, n), sigma_.middleRows(off, n),
                             d1_.middleRows(off, n));
    activate_second_derivative(pops[p].activation, a_.middleRows(off, n), d2_.middleRows(off, n));
    x_all_.middleRows(off, n) = sigma_.middleRows(off, n);
  }
}

void HolonomicModel::forward_rates() const {
  const auto& pops = network_->populations;
  for (const std::size_t p : order_) {
    const Eigen::Index off = x_.offset(p), n = pops[p].size;
    auto adot = adot_.middleRows(off, n);
    adot.noalias() = w_.middleRows(off, n) * xdot_all_;
    adot.noalias() += wdot_.middleRows(off, n) * x_all_;
    adot.colwise() += bdot_.segment(off, n);
    xdot_all_.middleRows(off, n) = d1_.middleRows(off, n).cwiseProduct(adot);
  }
}

void HolonomicModel::assemble_lambda_matrix() const {
  const Eigen::Index B = patterns_;
  const bool reduced = params_.m_x == 0.0;
  const double inv_mx = reduced ? 1.0 : 1.0 / params_.m_x, inv_mw = 1.0 / params_.m_w;
  m_lambda_.setZero();
  for (Eigen::Index k = 0; k < B; ++k) {  // G_x G_xᵀ/m_x: one n×n block per pattern
    g_x_.setIdentity();
    g_x_.noalias() -= d1_.col(k).asDiagonal() * w_.leftCols(n_);
    m_lambda_.block(n_ * k, n_ * k, n_, n_).noalias() += inv_mx * (g_x_ * g_x_.transpose());
  }
  if (reduced) return;  // the reduced mode's matrix is G_x G_xᵀ (reported, never solved)
  // G_W G_Wᵀ/m_W: neuron j's B×B Gram block σ'(a_jκ) σ'(a_jκ') (⟨x_pre,κ, x_pre,κ'⟩ + [bias]).
  for (Eigen::Index j = 0; j < n_; ++j) {
    for (Eigen::Index k = 0; k < B; ++k) {
      for (Eigen::Index l = 0; l <= k; ++l) {
        double sum = bias_mask_[j];
        for (Eigen::Index c = 0; c < x_all_.rows(); ++c) sum += plastic_mask_(j, c) * x_all_(c, k) * x_all_(c, l);
        gram_(k, l) = gram_(l, k) = sum;
      }
    }
    for (Eigen::Index k = 0; k < B; ++k) {
      for (Eigen::Index l = 0; l < B; ++l) {
        m_lambda_(j + n_ * k, j + n_ * l) += inv_mw * d1_(j, k) * d1_(j, l) * gram_(k, l);
      }
    }
  }
}

void HolonomicModel::gram_blocks() const {
  // Neuron j's B×B block of G_W G_Wᵀ/m_W over its presynaptic columns only (O(n · fan-in · B²)).
  const Eigen::Index B = patterns_;
  const double inv_mw = 1.0 / params_.m_w;
  const auto& pops = network_->populations;
  for (const std::size_t p : order_) {
    for (Eigen::Index j = x_.offset(p); j < x_.offset(p) + pops[p].size; ++j) {
      for (Eigen::Index k = 0; k < B; ++k) {
        for (Eigen::Index l = 0; l <= k; ++l) {
          double sum = bias_mask_[j];
          for (const auto& [c0, cols] : pre_columns_[p]) {
            for (Eigen::Index c = c0; c < c0 + cols; ++c) {
              sum += plastic_mask_(j, c) * x_all_(c, k) * x_all_(c, l);
            }
          }
          gram_w_(j, k + B * l) = gram_w_(j, l + B * k) = inv_mw * d1_(j, k) * d1_(j, l) * sum;
        }
      }
    }
  }
}

void HolonomicModel::factor_lambda_matrix() const {
  switch (params_.solver) {
    case HolonomicSolver::dense:
      assemble_lambda_matrix();
      llt_.compute(m_lambda_);
      return;
    case HolonomicSolver::cg: {
      // The Jacobi diagonal: (G_x G_xᵀ)_jj = 1 + σ'_j² Σ_k w_jk² (k non-input; w_jj = 0 on a DAG).
      gram_blocks();
      cg_row_norm_.setZero();
      for (const Coupling& c : couplings_) {
        cg_row_norm_.segment(c.row, c.rows) +=
            w_.block(c.row, c.col, c.rows, c.cols).rowwise().squaredNorm();
      }
      const Eigen::Index B = patterns_;
      for (Eigen::Index k = 0; k < B; ++k) {
        cg_diagonal_.col(k) = gram_w_.col(k + B * k);
        cg_diagonal_.col(k).array() += (1.0 + d1_.col(k).cwiseAbs2().cwiseProduct(cg_row_norm_).array()) / params_.m_x;
      }
      return;
    }
    case HolonomicSolver::block: break;
  }
  // Block Cholesky over the layers: S_0 = A_0, S_ℓ = A_ℓ − E_ℓᵀ E_ℓ with E_ℓ = L_{ℓ−1}⁻¹ C_ℓᵀ.
  gram_blocks();
  const Eigen::Index B = patterns_;
  const double inv_mx = 1.0 / params_.m_x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const auto [off, n] = layers_[l];
    Eigen::MatrixXd& a = block_diagonal_[l];
    a.setZero();
    if (l > 0) block_coupling_[l].setZero();  // E_ℓ of the previous solve is dense across patterns
    for (Eigen::Index k = 0; k < B; ++k) {
      auto diagonal = a.block(n * k, n * k, n, n);
      diagonal.diagonal().setConstant(inv_mx);
      if (l == 0) continue;
      const auto [prev_off, prev_n] = layers_[l - 1];
      Eigen::MatrixXd& dw = block_dw_[l];
      dw.noalias() = d1_.col(k).segment(off, n).asDiagonal() * w_.block(off, prev_off, n, prev_n);
      diagonal.noalias() += inv_mx * (dw * dw.transpose());
      block_coupling_[l].block(prev_n * k, n * k, prev_n, n) = -inv_mx * dw.transpose();
    }
    for (Eigen::Index i = 0; i < n; ++i) {
      for (Eigen::Index k = 0; k < B; ++k) {
        for (Eigen::Index m = 0; m < B; ++m) a(i + n * k, i + n * m) += gram_w_(off + i, k + B * m);
      }
    }
    if (l > 0) {
      block_llt_[l - 1].matrixL().solveInPlace(block_coupling_[l]);
      a.noalias() -= block_coupling_[l].transpose() * block_coupling_[l];
    }
    block_llt_[l].compute(a);
  }
}

void HolonomicModel::solve_lambda() const {
  switch (params_.solver) {
    case HolonomicSolver::dense: llt_.solveInPlace(solve_); return;
    case HolonomicSolver::cg: cg_solve(); return;
    case HolonomicSolver::block: break;
  }
  // 𝓛 y = r (forward, L_ℓ y_ℓ = r_ℓ − E_ℓᵀ y_{ℓ−1}), then 𝓛ᵀ z = y (L_ℓᵀ z_ℓ = y_ℓ − E_{ℓ+1} z_{ℓ+1}).
  const Eigen::Index B = patterns_;
  Eigen::Map<Eigen::MatrixXd> sol(solve_.data(), n_, B);
  const std::size_t L = layers_.size();
  for (std::size_t l = 0; l < L; ++l) {
    const auto [off, n] = layers_[l];
    Eigen::VectorXd& y = block_vector_[l];
    Eigen::Map<Eigen::MatrixXd>(y.data(), n, B) = sol.middleRows(off, n);
    if (l > 0) y.noalias() -= block_coupling_[l].transpose() * block_vector_[l - 1];
    block_llt_[l].matrixL().solveInPlace(y);
  }
  for (std::size_t l = L; l-- > 0;) {
    const auto [off, n] = layers_[l];
    Eigen::VectorXd& y = block_vector_[l];
    if (l + 1 < L) y.noalias() -= block_coupling_[l + 1] * block_vector_[l + 1];
    block_llt_[l].matrixU().solveInPlace(y);
    sol.middleRows(off, n) = Eigen::Map<const Eigen::MatrixXd>(y.data(), n, B);
  }
}

void HolonomicModel::lambda_product(const Eigen::MatrixXd& v, Eigen::MatrixXd& out) const {
  // out = (G_x G_xᵀ/m_x + G_W G_Wᵀ/m_W) v, G_xᵀ v = v − W̃ᵀ(σ' ⊙ v), G_x u = u − σ' ⊙ (W̃ u),
  // through the weight blocks between populations only.
  cg_h_ = d1_.cwiseProduct(v);
  cg_u_ = v;
  for (const Coupling& c : couplings_) {
    cg_u_.middleRows(c.col, c.cols).noalias() -=
        w_.block(c.row, c.col, c.rows, c.cols).transpose() * cg_h_.middleRows(c.row, c.rows);
  }
  cg_h_.setZero();
  for (const Coupling& c : couplings_) {
    cg_h_.middleRows(c.row, c.rows).noalias() +=
        w_.block(c.row, c.col, c.rows, c.cols) * cg_u_.middleRows(c.col, c.cols);
  }
  out = (cg_u_ - d1_.cwiseProduct(cg_h_)) / params_.m_x;
  const Eigen::Index B = patterns_;
  for (Eigen::Index k = 0; k < B; ++k) {
    for (Eigen::Index m = 0; m < B; ++m) out.col(k) += gram_w_.col(k + B * m).cwiseProduct(v.col(m));
  }
}

void HolonomicModel::cg_solve() const {
  // Preconditioned CG from λ̃ = 0 (Jacobi: z = r ./ diag M_λ) on the n×B unknowns in solve_. The
  // recursively updated residual keeps falling below what round-off allows, so convergence is
  // confirmed on the true residual b − M_λ λ̃; if that misses, CG restarts from it (residual
  // replacement) until the iteration limit.
  const Eigen::Index B = patterns_;
  Eigen::Map<Eigen::MatrixXd> sol(solve_.data(), n_, B);
  cg_b_ = sol;
  cg_x_.setZero();
  cg_r_ = cg_b_;
  const double target = params_.cg_tolerance * cg_b_.norm();
  const long limit = 10 * static_cast<long>(n_ * B) + 100;
  cg_iterations_ = 0;
  bool converged = cg_r_.norm() <= target;
  long it = 0;
  while (!converged && it < limit) {
    cg_z_ = cg_r_.cwiseQuotient(cg_diagonal_);
    cg_p_ = cg_z_;
    double rz = cg_r_.cwiseProduct(cg_z_).sum();
    while (it < limit) {
      ++it;
      lambda_product(cg_p_, cg_q_);
      const double pq = cg_p_.cwiseProduct(cg_q_).sum();
      if (!(pq > 0.0)) {  // a breakdown (p = 0 or round-off): restart from the true residual
        break;
      }
      const double step = rz / pq;
      cg_x_ += step * cg_p_;
      cg_r_ -= step * cg_q_;
      if (cg_r_.norm() <= target) break;
      cg_z_ = cg_r_.cwiseQuotient(cg_diagonal_);
      const double rz_next = cg_r_.cwiseProduct(cg_z_).sum();
      cg_p_ = cg_z_ + (rz_next / rz) * cg_p_;
      rz = rz_next;
    }
    lambda_product(cg_x_, cg_q_);
    cg_r_ = cg_b_ - cg_q_;
    converged = cg_r_.norm() <= target;
  }
  if (!converged) {  // the run stops at the non-finite state (err_nf_state, exit status 3)
    cg_iterations_ = -1;
    sol.setConstant(undefined);
    return;
  }
  cg_iterations_ = it;
  sol = cg_x_;
}

void HolonomicModel::backward_sweep() const {
  const auto& pops = network_->populations;
  lambda_x_.setZero();
  tmp_.setZero();  // σ' ⊙ λ̃ of the populations done
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    const Eigen::Index off = x_.offset(*it), n = pops[*it].size;
    auto lambda = lambda_x_.middleRows(off, n);
    lambda = force_.middleRows(off, n);
    lambda.noalias() += w_.block(0, off, n_, n).transpose() * tmp_;
    tmp_.middleRows(off, n) = d1_.middleRows(off, n).cwiseProduct(lambda);
  }
}

void HolonomicModel::compute(const State& s, double t, bool derived) const {
  const bool reduced = params_.m_x == 0.0;
  const double theta = params_.theta;
  if (!derived) gather(s, t);
  if (reduced) {
    forward_pass();
    forward_rates();
  } else {
    activations();
    adot_.noalias() = w_ * xdot_all_;
    adot_.noalias() += wdot_ * x_all_;
    adot_.colwise() += bdot_;
  }
  const auto x = x_all_.topRows(n_);
  const auto xdot = xdot_all_.topRows(n_);
  const auto w_nn = w_.leftCols(n_);
  const auto w_in = w_.rightCols(n_in_);
  g_ = x - sigma_;
  gdot_ = xdot - d1_.cwiseProduct(adot_);
  tmp_.noalias() = w_in * xdot_all_.bottomRows(n_in_);
  gt_ = -d1_.cwiseProduct(tmp_);
  // The applied force φ s e on the output rows.
  force_.setZero();
  const auto& pops = network_->populations;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role != Role::output) continue;
    x_out_.middleRows(x_.output_offset(p), pops[p].size) = x.middleRows(x_.offset(p), pops[p].size);
  }
  if (has_target_) {
    const Eigen::Index rows = params_.patterns == HolonomicPatterns::batch ? x_.outputs() : drive_->error_rows();
    batch_error(params_.loss, x_out_, y_, rows, e_out_);
    for (std::size_t p = 0; p < pops.size(); ++p) {
      if (pops[p].role != Role::output) continue;
      force_.middleRows(x_.offset(p), pops[p].size) =
          (sign_ * phi_) * e_out_.middleRows(x_.output_offset(p), pops[p].size);
    }
  }
  if (reduced) {
    backward_sweep();
  } else {
    // Q = −σ'' ⊙ ȧ² − σ' ⊙ (2 Ẇ ẋ_all + W_in ü)
    q_.noalias() = wdot_ * xdot_all_;
    q_ *= 2.0;
    q_.noalias() += w_in * u_acc_;
    q_ = -d2_.cwiseProduct(adot_.cwiseAbs2()) - d1_.cwiseProduct(q_);
    // The right side of (4): G_x f/m_x − θ G_q q̇ + Q [+ 2αĠ + α²G].
    tmp_.noalias() = w_nn * force_;
    rhs_ = (force_ - d1_.cwiseProduct(tmp_)) / params_.m_x - theta * (gdot_ - gt_) + q_;
    if (params_.stabilize == HolonomicStabilization::baumgarte) {
      const double alpha = params_.alpha;
      rhs_ += (2.0 * alpha) * gdot_ + (alpha * alpha) * g_;
    }
    factor_lambda_matrix();
    solve_ = Eigen::Map<const Eigen::VectorXd>(rhs_.data(), rhs_.size());
    solve_lambda();
    lambda_x_ = Eigen::Map<const Eigen::MatrixXd>(solve_.data(), n_, patterns_);
    // m_x ẍ = f − G_xᵀ λ̃ − θ m_x ẋ,  G_xᵀ λ̃ = λ̃ − W_nnᵀ (σ' ⊙ λ̃)
    tmp_ = d1_.cwiseProduct(lambda_x_);
    xddot_.noalias() = w_nn.transpose() * tmp_;
    xddot_ = (force_ - lambda_x_ + xddot_) / params_.m_x - theta * xdot;
  }
  // −G_Wᵀ λ̃ = Σ_κ (σ' ⊙ λ̃)_κ x_all,κᵀ on the coordinates
  tmp_ = d1_.cwiseProduct(lambda_x_);
  weight_force_.noalias() = tmp_ * x_all_.transpose();
  weight_force_.array() *= plastic_mask_.array();
}

void HolonomicModel::write_coordinates(State& s) const {
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (x_.is_input(p)) continue;
    const Eigen::Index off = x_.offset(p), n = network_->populations[p].size;
    layout_.examples(s, x_.block(p)) = x_all_.middleRows(off, n);
    layout_.examples(s, xdot_.block(p)) = xdot_all_.middleRows(off, n);
  }
  auto column = [&](std::size_t p) { return x_.is_input(p) ? n_ + input_offset_[p] : x_.offset(p); };
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    if (!weight_velocity_[k]) continue;
    const Projection& q = network_->projections[k];
    double* v = s.data() + layout_.block(*weight_velocity_[k]).offset;
    const Eigen::Index r0 = x_.offset(q.to), c0 = column(q.from);
    for_each_weight(q, [&](Eigen::Index i, Eigen::Index r, Eigen::Index c) { v[i] = wdot_(r0 + r, c0 + c); });
  }
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (!bias_velocity_[p]) continue;
    layout_.vector(s, *bias_velocity_[p]) = bdot_.segment(x_.offset(p), network_->populations[p].size);
  }
}

void HolonomicModel::rhs(const State& s, State& ds, double t) const {
  compute(s, t, false);
  const bool reduced = params_.m_x == 0.0;
  const double theta = params_.theta, inv_mw = 1.0 / params_.m_w;
  const auto& pops = network_->populations;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (x_.is_input(p)) continue;
    const Eigen::Index off = x_.offset(p), n = pops[p].size;
    auto dx = layout_.examples(ds, x_.block(p));
    auto dxdot = layout_.examples(ds, xdot_.block(p));
    if (reduced) {  // derived blocks: refreshed by project(), not integrated
      dx.setZero();
      dxdot.setZero();
    } else {
      dx = layout_.examples(s, xdot_.block(p));
      dxdot = xddot_.middleRows(off, n);
    }
    layout_.examples(ds, lambda_.block(p)).setZero();
  }
  auto column = [&](std::size_t p) { return x_.is_input(p) ? n_ + input_offset_[p] : x_.offset(p); };
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    if (!weight_velocity_[k]) continue;
    const Projection& q = network_->projections[k];
    const Eigen::Index w_off = layout_.block(*learned_.weight_block(k)).offset;
    const Eigen::Index v_off = layout_.block(*weight_velocity_[k]).offset;
    const Eigen::Index r0 = x_.offset(q.to), c0 = column(q.from);
    for_each_weight(q, [&](Eigen::Index i, Eigen::Index r, Eigen::Index c) {
      const double v = s[static_cast<std::size_t>(v_off + i)];
      ds[static_cast<std::size_t>(w_off + i)] = v;
      ds[static_cast<std::size_t>(v_off + i)] = inv_mw * weight_force_(r0 + r, c0 + c) - theta * v;
    });
  }
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (!bias_velocity_[p]) continue;
    const Eigen::Index off = x_.offset(p), n = pops[p].size;
    const auto v = layout_.vector(s, *bias_velocity_[p]);
    layout_.vector(ds, *learned_.bias_block(p)) = v;
    layout_.vector(ds, *bias_velocity_[p]) = inv_mw * tmp_.middleRows(off, n).rowwise().sum() - theta * v;
  }
  // dẼ/dt = −2θT − λ̃·(G_q q̇) + s φ̇ V,  G_q q̇ = Ġ − G_t
  const double phi_rate = params_.dissipation == HolonomicDissipation::kinetic ? -theta * phi_ : 0.0;
  const double power = -2.0 * theta * kinetic_now() - lambda_x_.cwiseProduct(gdot_ - gt_).sum() +
                       sign_ * phi_rate * potential_now();
  ds[static_cast<std::size_t>(layout_.block(budget_).offset)] = power;
}

double HolonomicModel::kinetic_now() const {
  const double neurons = params_.m_x == 0.0 ? 0.0 : params_.m_x * xdot_all_.topRows(n_).squaredNorm();
  return 0.5 * (neurons + params_.m_w * (wdot_.squaredNorm() + bdot_.squaredNorm()));
}

double HolonomicModel::potential_now() const {
  if (!has_target_) return 0.0;
  const auto& pops = network_->populations;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role != Role::output) continue;
    x_out_.middleRows(x_.output_offset(p), pops[p].size) = x_all_.middleRows(x_.offset(p), pops[p].size);
  }
  const Eigen::Index rows = params_.patterns == HolonomicPatterns::batch ? x_.outputs() : drive_->error_rows();
  return batch_loss(params_.loss, x_out_, y_, rows) * static_cast<double>(patterns_);  // Σ over patterns
}

double HolonomicModel::energy_now() const { return kinetic_now() + sign_ * phi_ * potential_now(); }

void HolonomicModel::project_velocities() const {
  // μ from M_λ μ = Ġ (factor_lambda_matrix ran at the current configuration), then
  // Δẋ = −G_xᵀμ/m_x = −(μ − W_nnᵀ(σ'⊙μ))/m_x,  ΔẆ = −G_Wᵀμ/m_W = (σ'⊙μ) x_allᵀ/m_W.
  solve_ = Eigen::Map<const Eigen::VectorXd>(gdot_.data(), gdot_.size());
  solve_lambda();
  const Eigen::Map<const Eigen::MatrixXd> mu(solve_.data(), n_, patterns_);
  tmp_ = d1_.cwiseProduct(mu);
  rhs_.noalias() = w_.leftCols(n_).transpose() * tmp_;
  xdot_all_.topRows(n_) -= (mu - rhs_) / params_.m_x;
  weight_force_.noalias() = tmp_ * x_all_.transpose();
  weight_force_.array() *= plastic_mask_.array();
  wdot_ += weight_force_ / params_.m_w;
  bdot_ += (tmp_.rowwise().sum().array() * bias_mask_.array()).matrix() / params_.m_w;
}

bool HolonomicModel::project(State& s, double t) const {
  const bool reduced = params_.m_x == 0.0;
  const bool stabilize = !reduced && params_.stabilize == HolonomicStabilization::project;
  double jump = 0.0;
  if (stabilize) {
    gather(s, t);
    const double before = energy_now();
    forward_pass();
    adot_.noalias() = w_ * xdot_all_;
    adot_.noalias() += wdot_ * x_all_;
    adot_.colwise() += bdot_;
    gdot_ = xdot_all_.topRows(n_) - d1_.cwiseProduct(adot_);
    factor_lambda_matrix();
    project_velocities();
    write_coordinates(s);
    jump = energy_now() - before;
  }
  compute(s, t, false);  // the reactions (and, reduced, x and ẋ) of the projected state
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (x_.is_input(p)) continue;
    const Eigen::Index off = x_.offset(p), n = network_->populations[p].size;
    layout_.examples(s, lambda_.block(p)) = lambda_x_.middleRows(off, n);
  }
  if (reduced) write_coordinates(s);
  s[static_cast<std::size_t>(layout_.block(budget_).offset)] += jump;
  return stabilize;
}

void HolonomicModel::enter_segment(State& s, double t) const {
  // The inelastic impact of an input switch (or the start): x jumps to the new forward pass, the
  // velocities are projected onto the new Ġ = 0. The budget gains Ẽ with the new input and target
  // (leave_segment took Ẽ with the old ones off it).
  gather(s, t);
  forward_pass();
  if (params_.m_x > 0.0) {
    adot_.noalias() = w_ * xdot_all_;
    adot_.noalias() += wdot_ * x_all_;
    adot_.colwise() += bdot_;
    gdot_ = xdot_all_.topRows(n_) - d1_.cwiseProduct(adot_);
    factor_lambda_matrix();
    project_velocities();
  }
  write_coordinates(s);
  compute(s, t, false);
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (x_.is_input(p)) continue;
    const Eigen::Index off = x_.offset(p), n = network_->populations[p].size;
    layout_.examples(s, lambda_.block(p)) = lambda_x_.middleRows(off, n);
  }
  if (params_.m_x == 0.0) write_coordinates(s);
  s[static_cast<std::size_t>(layout_.block(budget_).offset)] += energy_now();
}

void HolonomicModel::leave_segment(State& s, double t) const {
  gather(s, t);
  if (params_.m_x == 0.0) {
    forward_pass();
    forward_rates();
  }
  s[static_cast<std::size_t>(layout_.block(budget_).offset)] -= energy_now();
}

HolonomicModel::Evaluation HolonomicModel::evaluate(const State& s, double t) const {
  compute(s, t, false);
  Evaluation e;
  e.x = x_all_.topRows(n_);
  e.xdot = xdot_all_.topRows(n_);
  e.a = a_;
  e.lambda = lambda_x_;
  e.constraint = g_;
  e.constraint_rate = gdot_;
  if (params_.m_x > 0.0) e.xddot = xddot_;
  const Eigen::MatrixXd force = weight_force_;
  const Eigen::MatrixXd bias_force = tmp_.rowwise().sum();
  auto column = [&](std::size_t p) { return x_.is_input(p) ? n_ + input_offset_[p] : x_.offset(p); };
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    const Projection& q = network_->projections[k];
    Eigen::VectorXd f = Eigen::VectorXd::Zero(learned_.weights(layout_, s, k).size());
    const Eigen::Index r0 = x_.offset(q.to), c0 = column(q.from);
    for_each_weight(q, [&](Eigen::Index i, Eigen::Index r, Eigen::Index c) { f[i] = force(r0 + r, c0 + c); });
    e.weight_force.push_back(std::move(f));
  }
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (x_.is_input(p)) {
      e.bias_force.emplace_back();
    } else {
      e.bias_force.push_back(bias_force.middleRows(x_.offset(p), network_->populations[p].size) *
                             (bias_velocity_[p] ? 1.0 : 0.0));
    }
  }
  e.kinetic = kinetic_now();
  e.potential = potential_now();
  e.energy = energy_now();
  assemble_lambda_matrix();
  e.lambda_matrix = m_lambda_;
  scratch_ds_.assign(scratch_ds_.size(), 0.0);
  rhs(s, scratch_ds_, t);
  e.power = scratch_ds_[static_cast<std::size_t>(layout_.block(budget_).offset)];
  return e;
}

std::vector<std::string> HolonomicModel::metric_names() const {
  std::vector<std::string> names{"loss", "energy", "power_balance", "residual/constraint",
                                 "residual/constraint_rate", "min_eig_lambda_matrix"};
  for (const Projection& q : network_->projections) names.push_back("alignment/cosine/" + q.name);
  if (has_batch_targets_) names.emplace_back("accuracy");  // of the patterns, all present at once
  return names;
}

void HolonomicModel::metrics(const State& s, double t, std::span<double> out) const {
  const Evaluation e = evaluate(s, t);
  std::size_t at = 0;
  const Eigen::Index rows = params_.patterns == HolonomicPatterns::batch ? x_.outputs() : drive_->error_rows();
  out[at++] = has_target_ ? batch_loss(params_.loss, x_out_, y_, rows) : undefined;
  out[at++] = e.energy;
  out[at++] = e.energy - s[static_cast<std::size_t>(layout_.block(budget_).offset)];
  out[at++] = e.constraint.cwiseAbs().maxCoeff();
  out[at++] = e.constraint_rate.cwiseAbs().maxCoeff();
  out[at++] = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(e.lambda_matrix, Eigen::EigenvaluesOnly)
                  .eigenvalues()
                  .minCoeff();
  // Cosine of the weight force −G_Wᵀλ̃ with −∂V/∂W of the project's backprop (1: descent).
  const std::size_t n_proj = network_->projections.size();
  std::vector<double> cosine(n_proj, undefined);
  if (has_target_) {
    const auto w = weights(s);
    const auto b = biases(s);
    const Eigen::MatrixXd u = x_all_.bottomRows(n_in_);
    const auto g = reference_.gradient_batch(w, b, u, y_);
    for (std::size_t k = 0; g.converged && k < n_proj; ++k) {
      if (!learned_.weight_block(k)) continue;
      const double ng = g.weights[k].norm(), nf = e.weight_force[k].norm();
      if (ng > 0.0 && nf > 0.0) cosine[k] = e.weight_force[k].dot(g.weights[k]) / (ng * nf);
    }
  }
  for (std::size_t k = 0; k < n_proj; ++k) out[at++] = cosine[k];
  if (has_batch_targets_) {
    out[at++] = static_cast<double>(batch_correct(x_out_, y_, x_.outputs())) / static_cast<double>(patterns_);
  }
}

bool HolonomicModel::predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
                             Eigen::Ref<Eigen::MatrixXd> outputs) const {
  const auto settled = reference_.settle_batch(weights(s), biases(s), inputs);
  outputs = reference_.output(settled);
  return true;
}

std::vector<ParameterArray> HolonomicModel::parameters(const State& s) const {
  return network_parameters(*network_, weights(s), biases(s));
}

}  // namespace lf
