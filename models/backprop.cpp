#include "models/backprop.hpp"

#include <Eigen/Dense>
#include <cmath>
#include <limits>

namespace lf {

double loss_value(Loss loss, const Eigen::Ref<const Eigen::VectorXd>& x,
                  const Eigen::Ref<const Eigen::VectorXd>& y) {
  if (loss == Loss::squared) return 0.5 * (y - x).squaredNorm();
  const double m = x.maxCoeff();
  const double log_sum = m + std::log((x.array() - m).exp().sum());
  return -(y.array() * (x.array() - log_sum)).sum();
}

void loss_error(Loss loss, const Eigen::Ref<const Eigen::VectorXd>& x,
                const Eigen::Ref<const Eigen::VectorXd>& y, Eigen::Ref<Eigen::VectorXd> e) {
  if (loss == Loss::squared) {
    e = y - x;
    return;
  }
  // −∂V/∂x = y − (Σ y) softmax(x): the targets' total weights the softmax (1 for a one-hot or
  // probability target). e holds exp(x − max x) first: no temporary (the RHS allocates nothing).
  e = (x.array() - x.maxCoeff()).exp();
  const double total = e.sum();
  e = y.array() - y.sum() * (e.array() / total);
}

double batch_loss(Loss loss, const Eigen::Ref<const Eigen::MatrixXd>& x,
                  const Eigen::Ref<const Eigen::MatrixXd>& y, Eigen::Index rows) {
  // Summed from the first example's value (not from 0.0, which would turn a loss of −0.0 into
  // +0.0): one example gives exactly its own loss.
  double sum = loss_value(loss, x.col(0).head(rows), y.col(0).head(rows));
  for (Eigen::Index b = 1; b < x.cols(); ++b) {
    sum += loss_value(loss, x.col(b).head(rows), y.col(b).head(rows));
  }
  return sum / static_cast<double>(x.cols());
}

void batch_error(Loss loss, const Eigen::Ref<const Eigen::MatrixXd>& x,
                 const Eigen::Ref<const Eigen::MatrixXd>& y, Eigen::Index rows,
                 Eigen::Ref<Eigen::MatrixXd> e) {
  for (Eigen::Index b = 0; b < x.cols(); ++b) {
    loss_error(loss, x.col(b).head(rows), y.col(b).head(rows), e.col(b).head(rows));
  }
  e.bottomRows(e.rows() - rows).setZero();
}

Eigen::Index batch_correct(const Eigen::Ref<const Eigen::MatrixXd>& x,
                           const Eigen::Ref<const Eigen::MatrixXd>& y, Eigen::Index rows) {
  Eigen::Index right = 0;
  for (Eigen::Index b = 0; b < x.cols(); ++b) {
    if (rows == 1) {
      right += std::abs(x(0, b) - y(0, b)) < 0.5;
      continue;
    }
    Eigen::Index predicted = 0, expected = 0;
    x.col(b).head(rows).maxCoeff(&predicted);
    y.col(b).head(rows).maxCoeff(&expected);
    right += predicted == expected;
  }
  return right;
}

void target_error(Loss loss, const Drive& drive, const Eigen::Ref<const Eigen::MatrixXd>& x,
                  Eigen::Ref<Eigen::MatrixXd> e) {
  if (drive.has_target()) {
    batch_error(loss, x, drive.target(), drive.error_rows(), e);
  } else {
    e.setZero();
  }
}

double target_loss(Loss loss, const Drive& drive, const Eigen::Ref<const Eigen::MatrixXd>& x) {
  if (!drive.has_target()) return std::numeric_limits<double>::quiet_NaN();
  return batch_loss(loss, x, drive.target(), drive.error_rows());
}

ExactBackprop::ExactBackprop(const Network& network, double c, Loss loss, Eigen::Index error_rows)
    : network_(&network), c_(c), loss_(loss), error_rows_(error_rows) {
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
  g.x = s.x;
  const Eigen::VectorXd out = output(s);
  const Eigen::Index rows = error_rows_ < 0 ? out.size() : error_rows_;
  g.loss = loss_value(loss_, out.head(rows), y.head(rows));
  Eigen::VectorXd e_out = Eigen::VectorXd::Zero(out.size());
  loss_error(loss_, out.head(rows), y.head(rows), e_out.head(rows));

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

namespace lf {

ExactBackprop::SettledBatch ExactBackprop::settle_batch(std::span<const WeightView> w,
                                                        std::span<const Eigen::VectorXd> b,
                                                        const Eigen::Ref<const Eigen::MatrixXd>& u) const {
  const auto& pops = network_->populations;
  const Eigen::Index examples = u.cols();
  SettledBatch s;
  s.x.resize(pops.size());
  s.a.resize(pops.size());
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (offset_[p] < 0) s.x[p] = u.middleRows(input_offset_[p], pops[p].size);
  }
  if (acyclic_) {
    for (const std::size_t p : order_) {
      Eigen::MatrixXd a(pops[p].size, examples);
      a.colwise() = b[p];
      for (std::size_t k = 0; k < network_->projections.size(); ++k) {
        const Projection& q = network_->projections[k];
        if (q.to == p) add_rows_times(w[k], 0, q.rows(), s.x[q.from], a);
      }
      s.x[p].resize(pops[p].size, examples);
      activate(pops[p].activation, a, s.x[p]);
      s.x[p] /= c_;
      s.a[p] = std::move(a);
    }
    s.converged = true;
    return s;
  }
  s.converged = true;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (offset_[p] >= 0) {
      s.x[p].resize(pops[p].size, examples);
      s.a[p].resize(pops[p].size, examples);
    }
  }
  for (Eigen::Index j = 0; j < examples; ++j) {
    const Settled one = settle(w, b, u.col(j));
    s.converged = s.converged && one.converged;
    for (std::size_t p = 0; p < pops.size(); ++p) {
      if (offset_[p] < 0) continue;
      s.x[p].col(j) = one.x[p];
      s.a[p].col(j) = one.a[p];
    }
  }
  return s;
}

Eigen::MatrixXd ExactBackprop::output(const SettledBatch& settled) const {
  Eigen::Index n = 0;
  for (const Population& p : network_->populations) n += p.role == Role::output ? p.size : 0;
  const Eigen::Index examples = settled.x.empty() ? 0 : settled.x.front().cols();
  Eigen::MatrixXd out(n, examples);
  Eigen::Index at = 0;
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (network_->populations[p].role != Role::output) continue;
    out.middleRows(at, settled.x[p].rows()) = settled.x[p];
    at += settled.x[p].rows();
  }
  return out;
}

ExactBackprop::BatchGradient ExactBackprop::gradient_batch(
    std::span<const WeightView> w, std::span<const Eigen::VectorXd> b,
    const Eigen::Ref<const Eigen::MatrixXd>& u, const Eigen::Ref<const Eigen::MatrixXd>& y) const {
  const auto& pops = network_->populations;
  const Eigen::Index examples = u.cols();
  BatchGradient g;
  g.lambda.resize(pops.size());
  g.biases.resize(pops.size());
  if (!acyclic_) {
    // Recurrent backprop: the linear solve of each example, averaged.
    g.converged = true;
    g.x.resize(pops.size());
    g.weights.resize(network_->projections.size());
    for (std::size_t k = 0; k < network_->projections.size(); ++k) {
      g.weights[k] = Eigen::VectorXd::Zero(w[k].size());
    }
    for (std::size_t p = 0; p < pops.size(); ++p) {
      g.x[p].resize(pops[p].size, examples);
      if (offset_[p] < 0) continue;
      g.lambda[p].resize(pops[p].size, examples);
      g.biases[p] = Eigen::VectorXd::Zero(pops[p].size);
    }
    const double inv = 1.0 / static_cast<double>(examples);
    for (Eigen::Index j = 0; j < examples; ++j) {
      const Gradient one = gradient(w, b, u.col(j), y.col(j));
      g.converged = g.converged && one.converged;
      g.loss += inv * one.loss;
      for (std::size_t k = 0; k < g.weights.size(); ++k) g.weights[k] += inv * one.weights[k];
      for (std::size_t p = 0; p < pops.size(); ++p) {
        g.x[p].col(j) = one.x[p];
        if (offset_[p] < 0) continue;
        g.lambda[p].col(j) = one.lambda[p];
        g.biases[p] += inv * one.biases[p];
      }
    }
    return g;
  }
  const SettledBatch s = settle_batch(w, b, u);
  g.converged = s.converged;
  g.x = s.x;
  const Eigen::MatrixXd out = output(s);
  const Eigen::Index rows = error_rows_ < 0 ? out.rows() : error_rows_;
  g.loss = batch_loss(loss_, out, y, rows);
  Eigen::MatrixXd e_out(out.rows(), examples);
  batch_error(loss_, out, y, rows, e_out);

  // σ'(a) ⊙ λ per population, computed in reverse topological order.
  std::vector<Eigen::MatrixXd> delta(pops.size());
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    const std::size_t p = *it;
    Eigen::MatrixXd acc = Eigen::MatrixXd::Zero(pops[p].size, examples);
    if (pops[p].role == Role::output) {
      Eigen::Index at = 0;
      for (std::size_t q = 0; q < p; ++q) at += pops[q].role == Role::output ? pops[q].size : 0;
      acc = e_out.middleRows(at, pops[p].size);
    }
    for (std::size_t k = 0; k < network_->projections.size(); ++k) {
      const Projection& q = network_->projections[k];
      if (q.from != p || offset_[q.to] < 0) continue;
      add_columns_transposed_times(w[k], 0, q.cols(), delta[q.to], acc);
    }
    g.lambda[p] = acc / c_;
    Eigen::MatrixXd d(pops[p].size, examples);
    activate_derivative(pops[p].activation, s.a[p], d);
    delta[p] = d.cwiseProduct(g.lambda[p]);
    g.biases[p] = delta[p].rowwise().mean();
  }
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    const Projection& q = network_->projections[k];
    Eigen::VectorXd grad(w[k].size());
    outer_rows(w[k], 0, q.rows(), delta[q.to], s.x[q.from], 1.0, 0.0, grad.data());
    g.weights.push_back(std::move(grad));
  }
  return g;
}

}  // namespace lf
