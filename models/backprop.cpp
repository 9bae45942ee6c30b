#include "models/backprop.hpp"

#include <Eigen/Dense>
#include <cmath>

namespace lf {

double loss_value(Loss loss, const Eigen::VectorXd& x, const Eigen::VectorXd& y) {
  if (loss == Loss::squared) return 0.5 * (y - x).squaredNorm();
  const double m = x.maxCoeff();
  const double log_sum = m + std::log((x.array() - m).exp().sum());
  return -(y.array() * (x.array() - log_sum)).sum();
}

void loss_error(Loss loss, const Eigen::VectorXd& x, const Eigen::VectorXd& y,
                Eigen::Ref<Eigen::VectorXd> e) {
  if (loss == Loss::squared) {
    e = y - x;
    return;
  }
  const Eigen::ArrayXd p = (x.array() - x.maxCoeff()).exp();
  e = y.array() - p / p.sum();
}

void target_error(Loss loss, const Drive& drive, const Eigen::VectorXd& x,
                  Eigen::Ref<Eigen::VectorXd> e) {
  if (drive.has_target()) {
    loss_error(loss, x, drive.target(), e);
  } else {
    e.setZero();
  }
}

ExactBackprop::ExactBackprop(const Network& network, double c, Loss loss)
    : network_(&network), c_(c), loss_(loss) {
  const auto& pops = network.populations;
  Eigen::Index in_offset = 0;
  for (const Population& p : pops) {
    if (p.role == Role::input) {
      offset_.push_back(-1);
      input_offset_.push_back(in_offset);
      in_offset += p.size;
    } else {
      offset_.push_back(state_size_);
      input_offset_.push_back(-1);
      state_size_ += p.size;
    }
  }
  // Kahn's algorithm over the non-input populations; a self-projection or cycle leaves some
  // populations unordered.
  std::vector<int> indegree(pops.size(), 0);
  for (const Projection& q : network.projections) {
    if (pops[q.from].role != Role::input) ++indegree[q.to];
  }
  std::vector<std::size_t> ready;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (pops[p].role != Role::input && indegree[p] == 0) ready.push_back(p);
  }
  while (!ready.empty()) {
    const std::size_t p = ready.front();
    ready.erase(ready.begin());
    order_.push_back(p);
    for (const Projection& q : network.projections) {
      if (q.from == p && --indegree[q.to] == 0) ready.push_back(q.to);
    }
  }
  std::size_t non_inputs = 0;
  for (const Population& p : pops) non_inputs += p.role != Role::input;
  acyclic_ = order_.size() == non_inputs;
}

Eigen::MatrixXd ExactBackprop::assemble(std::span<const WeightView> w) const {
  Eigen::MatrixXd W = Eigen::MatrixXd::Zero(state_size_, state_size_);
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    const Projection& q = network_->projections[k];
    if (offset_[q.from] < 0) continue;
    const Eigen::MatrixXd block = q.sparse ? Eigen::MatrixXd(w[k].sparse()) : Eigen::MatrixXd(w[k].dense());
    W.block(offset_[q.to], offset_[q.from], q.rows(), q.cols()) += block;
  }
  return W;
}

ExactBackprop::Settled ExactBackprop::settle(std::span<const WeightView> w,
                                             std::span<const Eigen::VectorXd> b,
                                             const Eigen::VectorXd& u,
                                             const Eigen::VectorXd& guess) const {
  const auto& pops = network_->populations;
  Settled s;
  s.x.resize(pops.size());
  s.a.resize(pops.size());
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (offset_[p] < 0) s.x[p] = u.segment(input_offset_[p], pops[p].size);
  }
  // Pre-activations of population p from the current activities.
  auto preactivation = [&](std::size_t p) {
    Eigen::VectorXd a = b[p];
    for (std::size_t k = 0; k < network_->projections.size(); ++k) {
      const Projection& q = network_->projections[k];
      if (q.to == p) add_rows_times(w[k], 0, q.rows(), s.x[q.from], a);
    }
    return a;
  };
  auto apply = [&](std::size_t p) {
    s.a[p] = preactivation(p);
    s.x[p].resize(pops[p].size);
    activate(pops[p].activation, s.a[p], s.x[p]);
    s.x[p] /= c_;
  };

  if (acyclic_) {
    for (const std::size_t p : order_) apply(p);
    s.converged = true;
    return s;
  }
  // Damped Newton on F(x) = c x − σ(a(x)) over all non-input neurons.
  const Eigen::MatrixXd W = assemble(w);
  Eigen::VectorXd x = guess.size() == state_size_ ? guess : Eigen::VectorXd::Zero(state_size_);
  auto residual = [&](const Eigen::VectorXd& v, Eigen::VectorXd& F, Eigen::VectorXd& d) {
    for (std::size_t p = 0; p < pops.size(); ++p) {
      if (offset_[p] >= 0) s.x[p] = v.segment(offset_[p], pops[p].size);
    }
    F.resize(state_size_);
    d.resize(state_size_);
    for (std::size_t p = 0; p < pops.size(); ++p) {
      if (offset_[p] < 0) continue;
      s.a[p] = preactivation(p);
      Eigen::VectorXd sigma(pops[p].size), deriv(pops[p].size);
      activate(pops[p].activation, s.a[p], sigma);
      activate_derivative(pops[p].activation, s.a[p], deriv);
      F.segment(offset_[p], pops[p].size) = c_ * v.segment(offset_[p], pops[p].size) - sigma;
      d.segment(offset_[p], pops[p].size) = deriv;
    }
  };
  Eigen::VectorXd F, d, F_try, d_try;
  residual(x, F, d);
  for (int iteration = 0; iteration < 100; ++iteration) {
    if (F.norm() <= 1e-14 * (1.0 + x.norm())) {
      s.converged = true;
      break;
    }
    const Eigen::MatrixXd J = c_ * Eigen::MatrixXd::Identity(state_size_, state_size_) -
                              d.asDiagonal() * W;
    const Eigen::VectorXd step = J.partialPivLu().solve(F);
    double damping = 1.0;
    Eigen::VectorXd x_try;
    for (int halving = 0; halving < 30; ++halving, damping *= 0.5) {
      x_try = x - damping * step;
      residual(x_try, F_try, d_try);
      if (F_try.norm() < F.norm()) break;
    }
    x = x_try;
    F = F_try;
    d = d_try;
  }
  residual(x, F, d);  // leaves s.x, s.a at the final x
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (offset_[p] >= 0) s.x[p] = x.segment(offset_[p], pops[p].size);
  }
  return s;
}

Eigen::VectorXd ExactBackprop::output(const Settled& settled) const {
  Eigen::Index n = 0;
  for (const Population& p : network_->populations) n += p.role == Role::output ? p.size : 0;
  Eigen::VectorXd out(n);
  Eigen::Index at = 0;
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (network_->populations[p].role != Role::output) continue;
    out.segment(at, settled.x[p].size()) = settled.x[p];
    at += settled.x[p].size();
  }
  return out;
}

ExactBackprop::Gradient ExactBackprop::gradient(std::span<const WeightView> w,
                                                std::span<const Eigen::VectorXd> b,
                                                const Eigen::VectorXd& u, const Eigen::VectorXd& y,
                                                const Eigen::VectorXd& guess) const {
  const auto& pops = network_->populations;
  const Settled s = settle(w, b, u, guess);
  Gradient g;
  g.converged = s.converged;
  const Eigen::VectorXd out = output(s);
  g.loss = loss_value(loss_, out, y);
  Eigen::VectorXd e_out(out.size());
  loss_error(loss_, out, y, e_out);

  // e and σ'(a) per population, in the concatenated order.
  Eigen::VectorXd e = Eigen::VectorXd::Zero(state_size_), d(state_size_);
  Eigen::Index at = 0;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (offset_[p] < 0) continue;
    Eigen::VectorXd deriv(pops[p].size);
    activate_derivative(pops[p].activation, s.a[p], deriv);
    d.segment(offset_[p], pops[p].size) = deriv;
    if (pops[p].role == Role::output) {
      e.segment(offset_[p], pops[p].size) = e_out.segment(at, pops[p].size);
      at += pops[p].size;
    }
  }

  Eigen::VectorXd lambda = Eigen::VectorXd::Zero(state_size_);
  if (acyclic_) {
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      const std::size_t p = *it;
      Eigen::VectorXd acc = e.segment(offset_[p], pops[p].size);
      for (std::size_t k = 0; k < network_->projections.size(); ++k) {
        const Projection& q = network_->projections[k];
        if (q.from != p || offset_[q.to] < 0) continue;
        const Eigen::VectorXd delta = d.segment(offset_[q.to], q.rows()).cwiseProduct(
            lambda.segment(offset_[q.to], q.rows()));
        add_columns_transposed_times(w[k], 0, q.cols(), delta, acc);
      }
      lambda.segment(offset_[p], pops[p].size) = acc / c_;
    }
  } else {
    const Eigen::MatrixXd W = assemble(w);
    const Eigen::MatrixXd A = c_ * Eigen::MatrixXd::Identity(state_size_, state_size_) -
                              W.transpose() * d.asDiagonal();
    lambda = A.partialPivLu().solve(e);
  }

  g.lambda.resize(pops.size());
  g.biases.resize(pops.size());
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (offset_[p] < 0) continue;
    g.lambda[p] = lambda.segment(offset_[p], pops[p].size);
    g.biases[p] = d.segment(offset_[p], pops[p].size).cwiseProduct(g.lambda[p]);
  }
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    const Projection& q = network_->projections[k];
    Eigen::VectorXd grad(w[k].size());
    outer_rows(w[k], 0, q.rows(), g.biases[q.to], s.x[q.from], 1.0, 0.0, grad.data());
    g.weights.push_back(std::move(grad));
  }
  return g;
}

}  // namespace lf
