#include "models/eqprop.hpp"

#include <fmt/format.h>

#include <Eigen/LU>
#include <algorithm>
#include <boost/numeric/odeint/integrate/integrate_adaptive.hpp>
#include <boost/numeric/odeint/stepper/generation.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_dopri5.hpp>
#include <cassert>
#include <cmath>
#include <limits>

#include "models/backprop.hpp"
#include "sim/core/errors.hpp"

namespace lf {
namespace {

constexpr double undefined = std::numeric_limits<double>::quiet_NaN();
// Above this many free neurons the dense Hessian solve of the alignment metric is skipped (NaN).
constexpr Eigen::Index max_exact_neurons = 2000;

double cosine(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const double n = a.norm() * b.norm();
  return n > 0.0 ? a.dot(b) / n : undefined;
}

bool layered(const Network& net) {
  return std::any_of(net.projections.begin(), net.projections.end(),
                     [](const Projection& q) { return q.key == "network.layers"; });
}

// The config key of population p's activation.
std::string activation_key(const Network& net, std::size_t p) {
  if (layered(net)) {
    return net.populations[p].role == Role::output ? "network.output_activation" : "network.activation";
  }
  return fmt::format("network.population[{}].activation", p);
}

}  // namespace

EqpropModel::EqpropModel(const Network& network, const EqpropParams& params, const Drive& drive)
    : network_(&network), params_(params), drive_(&drive), examples_(drive.examples()),
      layout_(drive.signal().batch_shape()), index_(network, layout_, "u") {
  const auto& pops = network.populations;
  const InputSpec& input = drive.signal().spec();

  // Phases: exactly "free" and "nudged".
  const auto& names = input.phase_names;
  const std::string phases_key = input.kind == InputKind::dataset ? "train.phases" : "input.phases";
  free_phase_ = static_cast<std::size_t>(std::find(names.begin(), names.end(), "free") - names.begin());
  nudged_phase_ = static_cast<std::size_t>(std::find(names.begin(), names.end(), "nudged") - names.begin());
  if (names.size() != 2 || free_phase_ == names.size() || nudged_phase_ == names.size()) {
    std::string got;
    for (const auto& n : names) got += (got.empty() ? "\"" : ", \"") + n + "\"";
    throw ConfigError(phases_key, "", fmt::format(
        "{}: model 'eqprop' needs exactly the phases \"free\" and \"nudged\", e.g. phases = "
        "[{{ name = \"free\", duration = 20.0 }}, {{ name = \"nudged\", duration = 10.0 }}] (got: {})",
        phases_key, got.empty() ? "no phases" : got));
  }

  // Activations: bounded and C¹ (hard_sigmoid relaxes in projected form, see the header).
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (index_.is_input(p)) continue;
    const Activation f = pops[p].activation;
    if (f != Activation::hard_sigmoid && f != Activation::logistic && f != Activation::tanh) {
      const std::string key = activation_key(network, p);
      throw ConfigError(key, "", fmt::format(
          "{}: model 'eqprop' needs a bounded activation with a continuous derivative (or "
          "hard_sigmoid, relaxed in projected form), so that the energy is bounded below and "
          "the relaxation smooth, but population '{}' uses '{}' (choose hard_sigmoid, logistic "
          "or tanh)", key, pops[p].name, activation_name(f)));
    }
  }
  if (index_.outputs() == 0) {
    throw ConfigError("network.population", "", "network.population: model 'eqprop' needs an "
                      "output population (role = \"output\"): the cost C = ½‖y − u_out‖² nudges it");
  }

  // Connections: one per undirected pair, the reverse of a symmetric pair shares its weights.
  connection_of_.assign(network.projections.size(), -1);
  for (std::size_t k = 0; k < network.projections.size(); ++k) {
    const Projection& q = network.projections[k];
    if (q.sparse) {
      throw ConfigError(q.key, "", fmt::format(
          "{}: model 'eqprop' needs dense projections (one symmetric weight array per "
          "connection), but projection '{}' is an edge list", q.key, q.name));
    }
    const bool input_source = index_.is_input(q.from);
    if (!input_source && !q.symmetric) {
      throw ConfigError(q.key + ".symmetric", "", fmt::format(
          "{}.symmetric: model 'eqprop' needs symmetric weights (an energy needs W_ij = W_ji): "
          "set symmetric = true on projection '{}' and on its reverse from '{}' to '{}' (or use "
          "the layered shorthand)", q.key, q.name, pops[q.to].name, pops[q.from].name));
    }
    if (q.from == q.to) {
      for (Eigen::Index i = 0; i < q.dense.rows(); ++i) {
        if (q.dense(i, i) != 0.0) {
          throw ConfigError(q.key, "", fmt::format(
              "{}: model 'eqprop' needs W_ii = 0 (no neuron is connected to itself), but "
              "projection '{}' has W[{}, {}] = {:g}", q.key, q.name, i, i, q.dense(i, i)));
        }
      }
    }
    if (q.reverse >= 0 && static_cast<std::size_t>(q.reverse) < k) continue;  // the transpose
    connection_of_[k] = static_cast<std::ptrdiff_t>(connections_.size());
    connections_.push_back({k, q.from, q.to, q.from == q.to, input_source, 0});
  }

  if (params.symmetric) minus_.emplace(network, layout_, "u_minus");
  for (Connection& c : connections_) {
    const Projection& q = network.projections[c.projection];
    c.w = layout_.add("W", q.name, {q.rows(), q.cols()});
  }
  Eigen::Index at = 0;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (index_.is_input(p)) {
      input_offset_.push_back(at);
      at += pops[p].size;
      bias_.emplace_back();
    } else {
      input_offset_.push_back(-1);
      bias_.emplace_back(layout_.add("b", pops[p].name, {pops[p].size}));
    }
  }
  inputs_ = at;
  if (input.kind == InputKind::sequence && !input.targets.empty()) patterns_ = input.sequence.size();
  batch_accuracy_ = input.kind == InputKind::dataset;

  const Eigen::Index n = neurons();
  for (Eigen::MatrixXd* m : {&u_, &r_, &dr_, &a_, &du_, &u_minus_, &r_minus_, &dr_minus_, &du_minus_}) {
    m->setZero(n, examples_);
  }
  rhs_params_.w.assign(connections_.size(), nullptr);
  rhs_params_.b.assign(pops.size(), nullptr);
}

void EqpropModel::point_at(const State& s, Parameters& p) const {
  for (std::size_t k = 0; k < connections_.size(); ++k) p.w[k] = s.data() + layout_.block(connections_[k].w).offset;
  for (std::size_t q = 0; q < bias_.size(); ++q) {
    p.b[q] = bias_[q] ? s.data() + layout_.block(*bias_[q]).offset : nullptr;
  }
}

EqpropModel::Parameters EqpropModel::parameters_of(const State& s) const {
  Parameters p{std::vector<const double*>(connections_.size()), std::vector<const double*>(bias_.size())};
  point_at(s, p);
  return p;
}

Eigen::MatrixXd EqpropModel::free_state(const State& s, bool minus) const {
  const NeuronIndex& index = minus ? *minus_ : index_;
  Eigen::MatrixXd u(neurons(), examples_);
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (index.is_input(p)) continue;
    u.middleRows(index.offset(p), network_->populations[p].size) = layout_.examples(s, index.block(p));
  }
  return u;
}

void EqpropModel::set_free_state(State& s, const Eigen::Ref<const Eigen::MatrixXd>& u, bool minus) const {
  const NeuronIndex& index = minus ? *minus_ : index_;
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (index.is_input(p)) continue;
    layout_.examples(s, index.block(p)) = u.middleRows(index.offset(p), network_->populations[p].size);
  }
}

void EqpropModel::initial_state(State& s) const {
  std::fill(s.begin(), s.end(), 0.0);  // u = 0: inside [0, 1] for hard_sigmoid
  for (const Connection& c : connections_) {
    layout_.matrix(s, c.w) = network_->projections[c.projection].dense;
  }
  for (std::size_t p = 0; p < bias_.size(); ++p) {
    if (bias_[p]) layout_.vector(s, *bias_[p]) = network_->bias[p];
  }
}

void EqpropModel::rho_and_derivative(const Eigen::Ref<const Eigen::MatrixXd>& u,
                                     Eigen::Ref<Eigen::MatrixXd> r, Eigen::Ref<Eigen::MatrixXd> dr) const {
  const auto& pops = network_->populations;
  for (std::size_t p = 0; p < pops.size(); ++p) {
    if (index_.is_input(p)) continue;
    const Eigen::Index o = index_.offset(p), n = pops[p].size;
    activate_with_derivative(pops[p].activation, u.middleRows(o, n), r.middleRows(o, n), dr.middleRows(o, n));
  }
}

Eigen::MatrixXd EqpropModel::rho(const Eigen::Ref<const Eigen::MatrixXd>& u) const {
  Eigen::MatrixXd r(u.rows(), u.cols()), dr(u.rows(), u.cols());
  rho_and_derivative(u, r, dr);
  return r;
}

void EqpropModel::drive_of(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                           const Eigen::Ref<const Eigen::MatrixXd>& r, Eigen::Ref<Eigen::MatrixXd> a) const {
  const auto& pops = network_->populations;
  for (std::size_t q = 0; q < pops.size(); ++q) {
    if (index_.is_input(q)) continue;
    a.middleRows(index_.offset(q), pops[q].size).colwise() =
        Eigen::Map<const Eigen::VectorXd>(p.b[q], pops[q].size);
  }
  for (std::size_t k = 0; k < connections_.size(); ++k) {
    const Connection& c = connections_[k];
    const Eigen::Index n_to = pops[c.to].size, n_from = pops[c.from].size;
    const Eigen::Map<const RowMatrix> w(p.w[k], n_to, n_from);
    const Eigen::Index o_to = index_.offset(c.to);
    if (c.input_source) {
      a.middleRows(o_to, n_to).noalias() += w * x.middleRows(input_offset_[c.from], n_from);
      continue;
    }
    const Eigen::Index o_from = index_.offset(c.from);
    a.middleRows(o_to, n_to).noalias() += w * r.middleRows(o_from, n_from);
    if (!c.self) a.middleRows(o_from, n_from).noalias() += w.transpose() * r.middleRows(o_to, n_to);
  }
}

void EqpropModel::flow(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                       const Eigen::Ref<const Eigen::MatrixXd>& u, double beta,
                       const Eigen::MatrixXd* y, Eigen::Ref<Eigen::MatrixXd> du) const {
  Eigen::MatrixXd r(u.rows(), u.cols()), dr(u.rows(), u.cols()), a(u.rows(), u.cols());
  flow_into(p, x, u, beta, y, r, dr, a, du);
}

void EqpropModel::flow_into(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                            const Eigen::Ref<const Eigen::MatrixXd>& u, double beta,
                            const Eigen::MatrixXd* y, Eigen::Ref<Eigen::MatrixXd> r,
                            Eigen::Ref<Eigen::MatrixXd> dr, Eigen::Ref<Eigen::MatrixXd> a,
                            Eigen::Ref<Eigen::MatrixXd> du) const {
  rho_and_derivative(u, r, dr);
  drive_of(p, x, r, a);
  const auto& pops = network_->populations;
  const Eigen::Index error_rows = drive_->error_rows();
  for (std::size_t q = 0; q < pops.size(); ++q) {
    if (index_.is_input(q)) continue;
    const Eigen::Index o = index_.offset(q), n = pops[q].size;
    auto aq = a.middleRows(o, n);
    const auto uq = u.middleRows(o, n);
    // The nudge β (y − u) on the outputs that carry the loss (−∂(βC)/∂u there).
    const Eigen::Index out = index_.output_offset(q);
    const Eigen::Index nudged = out < 0 || y == nullptr || beta == 0.0
                                    ? 0 : std::clamp<Eigen::Index>(error_rows - out, 0, n);
    if (hard(q)) {
      // Projected form: τ u̇ = clip(a + β (y − u), 0, 1) − u.
      if (nudged > 0) aq.topRows(nudged) += beta * (y->middleRows(out, nudged) - uq.topRows(nudged));
      du.middleRows(o, n) = aq.array().max(0.0).min(1.0).matrix() - uq;
    } else {
      // τ u̇ = ρ'(u) ⊙ (W ρ + b) − u + β (y − u).
      du.middleRows(o, n) = dr.middleRows(o, n).cwiseProduct(aq) - uq;
      if (nudged > 0) {
        du.middleRows(o, nudged) += beta * (y->middleRows(out, nudged) - uq.topRows(nudged));
      }
    }
  }
}

Eigen::RowVectorXd EqpropModel::energy(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                                       const Eigen::Ref<const Eigen::MatrixXd>& u) const {
  // a_full = W_int ρ + W_ext x + b counts each free–free pair twice (W and Wᵀ) and a self
  // connection once per ordered pair: E = ½‖u‖² − ½ ρ·a_full − ½ ρ·(W_ext x + b).
  const Eigen::MatrixXd r = rho(u);
  Eigen::MatrixXd full(u.rows(), u.cols()), external(u.rows(), u.cols());
  drive_of(p, x, r, full);
  drive_of(p, x, Eigen::MatrixXd::Zero(u.rows(), u.cols()), external);
  return 0.5 * u.cwiseProduct(u).colwise().sum() - 0.5 * r.cwiseProduct(full).colwise().sum() -
         0.5 * r.cwiseProduct(external).colwise().sum();
}

Eigen::RowVectorXd EqpropModel::cost(const Eigen::Ref<const Eigen::MatrixXd>& u, const Eigen::MatrixXd& y) const {
  Eigen::RowVectorXd c = Eigen::RowVectorXd::Zero(u.cols());
  const auto& pops = network_->populations;
  const Eigen::Index error_rows = drive_->error_rows();
  for (std::size_t q = 0; q < pops.size(); ++q) {
    const Eigen::Index out = index_.output_offset(q);
    if (out < 0) continue;
    const Eigen::Index n = std::clamp<Eigen::Index>(error_rows - out, 0, pops[q].size);
    if (n == 0) continue;
    const Eigen::MatrixXd e = y.middleRows(out, n) - u.middleRows(index_.offset(q), n);
    c += 0.5 * e.cwiseProduct(e).colwise().sum();
  }
  return c;
}

Eigen::MatrixXd EqpropModel::relax(const Parameters& p, const Eigen::Ref<const Eigen::MatrixXd>& x,
                                   Eigen::MatrixXd u, double beta, const Eigen::MatrixXd* y, double tol,
                                   double residual, double t_max) const {
  namespace odeint = boost::numeric::odeint;
  const Eigen::Index n = u.rows(), b = u.cols();
  const Eigen::MatrixXd xs = x;
  std::vector<double> state(u.data(), u.data() + u.size());
  Eigen::MatrixXd du(n, b);
  const double tau = params_.tau;
  auto system = [&](const std::vector<double>& v, std::vector<double>& dv, double) {
    const Eigen::Map<const Eigen::MatrixXd> uv(v.data(), n, b);
    Eigen::Map<Eigen::MatrixXd> duv(dv.data(), n, b);
    flow(p, xs, uv, beta, y, duv);
    duv /= tau;
  };
  auto stepper = odeint::make_controlled(tol, tol, odeint::runge_kutta_dopri5<std::vector<double>>());
  const double chunk = 5.0 * tau;
  for (double t = 0.0; t < t_max; t += chunk) {
    odeint::integrate_adaptive(stepper, system, state, t, t + chunk, 0.01 * tau);
    const Eigen::Map<const Eigen::MatrixXd> uv(state.data(), n, b);
    flow(p, xs, uv, beta, y, du);
    if (du.cwiseAbs().maxCoeff() < residual) break;
  }
  return Eigen::Map<const Eigen::MatrixXd>(state.data(), n, b);
}


void EqpropModel::rhs(const State& s, State& ds, double t) const {
  const Eigen::MatrixXd& x = drive_->at(t);
  const bool nudged = in_nudged() && drive_->has_target();
  const Eigen::MatrixXd* y = nudged ? &drive_->target() : nullptr;
  const auto& pops = network_->populations;
  point_at(s, rhs_params_);
  auto gather = [&](const NeuronIndex& index, Eigen::MatrixXd& into) {
    for (std::size_t q = 0; q < pops.size(); ++q) {
      if (index.is_input(q)) continue;
      into.middleRows(index.offset(q), pops[q].size) = layout_.examples(s, index.block(q));
    }
  };
  auto scatter = [&](const NeuronIndex& index, const Eigen::MatrixXd& from) {
    for (std::size_t q = 0; q < pops.size(); ++q) {
      if (index.is_input(q)) continue;
      layout_.examples(ds, index.block(q)) = from.middleRows(index.offset(q), pops[q].size) / params_.tau;
    }
  };
  gather(index_, u_);
  flow_into(rhs_params_, x, u_, nudged ? params_.beta : 0.0, y, r_, dr_, a_, du_);
  scatter(index_, du_);
  if (minus_) {
    if (nudged) {
      // The −β copy, relaxing side by side with u from the same u⁰.
      gather(*minus_, u_minus_);
      flow_into(rhs_params_, x, u_minus_, -params_.beta, y, r_minus_, dr_minus_, a_, du_minus_);
      scatter(*minus_, du_minus_);
    } else {
      for (std::size_t q = 0; q < pops.size(); ++q) {
        if (!minus_->is_input(q)) layout_.vector(ds, minus_->block(q)).setZero();
      }
    }
  }
  if (nudged && params_.update == EqpropUpdate::flow) {
    flow_parameters(ds, x);
  } else {
    for (const Connection& c : connections_) layout_.vector(ds, c.w).setZero();
    for (const auto& b : bias_) {
      if (b) layout_.vector(ds, *b).setZero();
    }
  }
}

void EqpropModel::flow_parameters(State& ds, const Eigen::MatrixXd& x) const {
  // d/dt ρ(u) = ρ'(u) ⊙ u̇ (du_ holds τu̇); Ẇ = (η/(β_span B)) Σ_b d/dt[ρ_to ρ_fromᵀ] (− the −β copy's).
  const auto& pops = network_->populations;
  const double span = params_.symmetric ? 2.0 * params_.beta : params_.beta;
  const double scale = params_.eta / (span * params_.tau * static_cast<double>(examples_));
  dr_.array() *= du_.array();  // ρ' ⊙ τu̇, in place: ρ' is not needed any more in this call
  if (minus_) dr_minus_.array() *= du_minus_.array();
  for (const Connection& c : connections_) {
    auto dw = layout_.matrix(ds, c.w);
    const Eigen::Index n_to = pops[c.to].size, n_from = pops[c.from].size, o_to = index_.offset(c.to);
    auto add = [&](const Eigen::MatrixXd& r, const Eigen::MatrixXd& rdot, double sign) {
      if (c.input_source) {
        dw.noalias() += (sign * scale) * rdot.middleRows(o_to, n_to) *
                        x.middleRows(input_offset_[c.from], n_from).transpose();
        return;
      }
      const Eigen::Index o_from = index_.offset(c.from);
      dw.noalias() += (sign * scale) * rdot.middleRows(o_to, n_to) * r.middleRows(o_from, n_from).transpose();
      dw.noalias() += (sign * scale) * r.middleRows(o_to, n_to) * rdot.middleRows(o_from, n_from).transpose();
    };
    dw.setZero();
    add(r_, dr_, 1.0);
    if (minus_) add(r_minus_, dr_minus_, -1.0);
    if (c.self) dw.diagonal().setZero();
  }
  for (std::size_t q = 0; q < pops.size(); ++q) {
    if (!bias_[q]) continue;
    auto db = layout_.vector(ds, *bias_[q]);
    const Eigen::Index o = index_.offset(q), n = pops[q].size;
    db = scale * dr_.middleRows(o, n).rowwise().sum();
    if (minus_) db -= scale * dr_minus_.middleRows(o, n).rowwise().sum();
  }
}

void EqpropModel::enter_segment(State& s, double) const {
  const std::size_t k = drive_->segment();
  const bool nudged_before = k > 0 && drive_->signal().phase(k - 1) == nudged_phase_;
  if (!in_nudged() || nudged_before) return;
  // A nudged phase starts from the free state u⁰ (no reset): keep it, with its parameters.
  free_state_ = s;
  free_stored_ = true;
  exact_.reset();
  if (minus_) set_free_state(s, free_state(s), true);
}

void EqpropModel::leave_segment(State& s, double t) const {
  const std::size_t k = drive_->segment();
  const InputSignal& signal = drive_->signal();
  const bool nudged_next = k + 1 < signal.segments() && signal.phase(k + 1) == nudged_phase_;
  if (in_nudged() && !nudged_next && params_.update == EqpropUpdate::discrete) apply_update(s, t);
}

void EqpropModel::apply_update(State& s, double t) const {
  if (!drive_->has_target() || !free_stored_) return;
  const Eigen::MatrixXd& x = drive_->at(t);
  const Eigen::MatrixXd u_plus = free_state(s);
  const Eigen::MatrixXd u_minus = minus_ ? free_state(s, true) : free_state(free_state_);
  const Direction d = ep_direction(x, u_plus, u_minus, params_.symmetric ? 2.0 * params_.beta : params_.beta);
  for (std::size_t k = 0; k < connections_.size(); ++k) layout_.vector(s, connections_[k].w) += params_.eta * d.weights[k];
  const auto& pops = network_->populations;
  for (std::size_t q = 0; q < pops.size(); ++q) {
    if (bias_[q]) layout_.vector(s, *bias_[q]) += params_.eta * d.biases.segment(index_.offset(q), pops[q].size);
  }
}

EqpropModel::Direction EqpropModel::ep_direction(const Eigen::Ref<const Eigen::MatrixXd>& x,
                                                 const Eigen::Ref<const Eigen::MatrixXd>& u_plus,
                                                 const Eigen::Ref<const Eigen::MatrixXd>& u_minus,
                                                 double beta_span) const {
  const auto& pops = network_->populations;
  const Eigen::MatrixXd rp = rho(u_plus), rm = rho(u_minus);
  const double scale = 1.0 / (beta_span * static_cast<double>(u_plus.cols()));
  Direction d;
  for (const Connection& c : connections_) {
    const Eigen::Index n_to = pops[c.to].size, n_from = pops[c.from].size, o_to = index_.offset(c.to);
    RowMatrix g(n_to, n_from);
    if (c.input_source) {
      const auto xs = x.middleRows(input_offset_[c.from], n_from);
      g.noalias() = scale * (rp.middleRows(o_to, n_to) - rm.middleRows(o_to, n_to)) * xs.transpose();
    } else {
      const Eigen::Index o_from = index_.offset(c.from);
      g.noalias() = scale * rp.middleRows(o_to, n_to) * rp.middleRows(o_from, n_from).transpose();
      g.noalias() -= scale * rm.middleRows(o_to, n_to) * rm.middleRows(o_from, n_from).transpose();
    }
    if (c.self) g.diagonal().setZero();
    d.weights.emplace_back(Eigen::Map<const Eigen::VectorXd>(g.data(), g.size()));
  }
  d.biases = scale * (rp - rm).rowwise().sum();
  return d;
}

Eigen::MatrixXd EqpropModel::hessian(const Parameters& p, const Eigen::Ref<const Eigen::VectorXd>& x,
                                     const Eigen::Ref<const Eigen::VectorXd>& u) const {
  const auto& pops = network_->populations;
  const Eigen::Index n = neurons();
  Eigen::MatrixXd r(n, 1), dr(n, 1), a(n, 1);
  rho_and_derivative(u, r, dr);
  drive_of(p, x, r, a);
  // ρ'' and, for hard_sigmoid, the active set: ρ' = 1 where 0 < a < 1 (the projected flow's
  // Jacobian), 0 where the neuron is saturated.
  Eigen::VectorXd d2 = Eigen::VectorXd::Zero(n);
  for (std::size_t q = 0; q < pops.size(); ++q) {
    if (index_.is_input(q)) continue;
    const Eigen::Index o = index_.offset(q), m = pops[q].size;
    for (Eigen::Index i = o; i < o + m; ++i) {
      switch (pops[q].activation.kind) {
        case Activation::logistic: d2[i] = dr(i, 0) * (1.0 - 2.0 * r(i, 0)); break;
        case Activation::tanh: d2[i] = -2.0 * r(i, 0) * dr(i, 0); break;
        case Activation::hard_sigmoid: dr(i, 0) = a(i, 0) > 0.0 && a(i, 0) < 1.0 ? 1.0 : 0.0; break;
        default: break;
      }
    }
  }
  Eigen::MatrixXd w = Eigen::MatrixXd::Zero(n, n);
  for (std::size_t k = 0; k < connections_.size(); ++k) {
    const Connection& c = connections_[k];
    if (c.input_source) continue;
    const Eigen::Index n_to = pops[c.to].size, n_from = pops[c.from].size;
    const Eigen::Map<const RowMatrix> wk(p.w[k], n_to, n_from);
    w.block(index_.offset(c.to), index_.offset(c.from), n_to, n_from) += wk;
    if (!c.self) w.block(index_.offset(c.from), index_.offset(c.to), n_from, n_to) += wk.transpose();
  }
  Eigen::MatrixXd h = -(dr.col(0).asDiagonal() * w * dr.col(0).asDiagonal());
  h.diagonal().array() += 1.0 - d2.array() * a.col(0).array();
  return h;
}

EqpropModel::Direction EqpropModel::exact_direction(const Parameters& p,
                                                    const Eigen::Ref<const Eigen::MatrixXd>& x,
                                                    const Eigen::Ref<const Eigen::MatrixXd>& u,
                                                    const Eigen::MatrixXd& y) const {
  const auto& pops = network_->populations;
  const Eigen::Index n = neurons(), batch = u.cols();
  Direction d;
  for (const Connection& c : connections_) {
    d.weights.emplace_back(Eigen::VectorXd::Zero(pops[c.to].size * pops[c.from].size));
  }
  d.biases = Eigen::VectorXd::Zero(n);
  if (n > max_exact_neurons) {
    for (auto& g : d.weights) g.setConstant(undefined);
    d.biases.setConstant(undefined);
    return d;
  }
  const double scale = -1.0 / static_cast<double>(batch);  // −dC/dθ, batch mean
  const Eigen::Index error_rows = drive_->error_rows();
  for (Eigen::Index b = 0; b < batch; ++b) {
    const Eigen::MatrixXd h = hessian(p, x.col(b), u.col(b));
    Eigen::MatrixXd r(n, 1), dr(n, 1), a(n, 1);
    rho_and_derivative(u.col(b), r, dr);
    drive_of(p, x.col(b), r, a);
    Eigen::VectorXd dc = Eigen::VectorXd::Zero(n);  // ∂C/∂u = −(y − u_out)
    for (std::size_t q = 0; q < pops.size(); ++q) {
      if (hard(q) && !index_.is_input(q)) {
        for (Eigen::Index i = index_.offset(q); i < index_.offset(q) + pops[q].size; ++i) {
          dr(i, 0) = a(i, 0) > 0.0 && a(i, 0) < 1.0 ? 1.0 : 0.0;
        }
      }
      const Eigen::Index out = index_.output_offset(q);
      if (out < 0) continue;
      const Eigen::Index m = std::clamp<Eigen::Index>(error_rows - out, 0, pops[q].size);
      dc.segment(index_.offset(q), m) = u.col(b).segment(index_.offset(q), m) - y.col(b).segment(out, m);
    }
    const Eigen::VectorXd lambda = h.partialPivLu().solve(dc);
    const Eigen::VectorXd g = dr.col(0).cwiseProduct(lambda);  // ρ' ⊙ λ
    for (std::size_t k = 0; k < connections_.size(); ++k) {
      const Connection& c = connections_[k];
      const Eigen::Index n_to = pops[c.to].size, n_from = pops[c.from].size, o_to = index_.offset(c.to);
      RowMatrix gk(n_to, n_from);
      if (c.input_source) {
        gk.noalias() = g.segment(o_to, n_to) * x.col(b).segment(input_offset_[c.from], n_from).transpose();
      } else {
        const Eigen::Index o_from = index_.offset(c.from);
        gk.noalias() = g.segment(o_to, n_to) * r.col(0).segment(o_from, n_from).transpose();
        gk.noalias() += r.col(0).segment(o_to, n_to) * g.segment(o_from, n_from).transpose();
      }
      if (c.self) gk.diagonal().setZero();
      d.weights[k] += scale * Eigen::Map<const Eigen::VectorXd>(gk.data(), gk.size());
    }
    d.biases += scale * g;
  }
  return d;
}

void EqpropModel::save_events(Snapshot& out) const {
  out.put("model/eqprop/free_stored", free_stored_ ? 1.0 : 0.0);
  if (free_stored_) out.put("model/eqprop/free_state", free_state_);
}

void EqpropModel::restore_events(const Snapshot& in) const {
  free_stored_ = in.scalar("model/eqprop/free_stored") != 0.0;
  exact_.reset();
  if (!free_stored_) return;
  free_state_ = in.get("model/eqprop/free_state");
  if (static_cast<Eigen::Index>(free_state_.size()) != layout_.size()) {
    throw InputError("the checkpoint's eqprop entry 'model/eqprop/free_state' does not match this network");
  }
}

std::vector<std::string> EqpropModel::metric_names() const {
  std::vector<std::string> names{"energy", "total_energy", "loss"};
  for (const Connection& c : connections_) names.push_back("alignment/cosine/" + network_->projections[c.projection].name);
  for (const Connection& c : connections_) names.push_back("alignment/norm_ratio/" + network_->projections[c.projection].name);
  if (patterns_) {
    names.emplace_back("accuracy");
    names.emplace_back("dataset_loss");
  }
  if (batch_accuracy_) names.emplace_back("accuracy");
  return names;
}

void EqpropModel::metrics(const State& s, double t, std::span<double> out) const {
  const Eigen::MatrixXd& x = drive_->at(t);
  const bool target = drive_->has_target();
  const bool nudged = in_nudged() && target;
  const Parameters p = parameters_of(s);
  const Eigen::MatrixXd u = free_state(s);
  const double batch = static_cast<double>(examples_);
  std::size_t at = 0;
  const double e = energy(p, x, u).sum() / batch;
  const double c = target ? cost(u, drive_->target()).sum() / batch : undefined;
  out[at++] = e;
  out[at++] = nudged ? e + params_.beta * c : e;
  out[at++] = c;

  std::vector<double> cos(connections_.size(), undefined), ratio(connections_.size(), undefined);
  if (nudged && free_stored_) {
    const Eigen::MatrixXd u0 = free_state(free_state_);
    if (!exact_) exact_ = exact_direction(parameters_of(free_state_), x, u0, drive_->target());
    const Direction ep = ep_direction(x, u, minus_ ? free_state(s, true) : u0,
                                      params_.symmetric ? 2.0 * params_.beta : params_.beta);
    for (std::size_t k = 0; k < connections_.size(); ++k) {
      cos[k] = cosine(ep.weights[k], exact_->weights[k]);
      const double norm = exact_->weights[k].norm();
      if (norm > 0.0) ratio[k] = ep.weights[k].norm() / norm;
    }
  }
  for (const double v : cos) out[at++] = v;
  for (const double v : ratio) out[at++] = v;

  const Eigen::Index error_rows = drive_->error_rows();
  if (patterns_) {
    // Every (input, target) pair of the sequence settled at the current weights.
    const InputSpec& spec = drive_->signal().spec();
    const Eigen::Index count = static_cast<Eigen::Index>(*patterns_);
    const Eigen::Index n_out = index_.outputs();
    Eigen::MatrixXd xs(inputs_, count), ys(n_out, count), outputs(n_out, count);
    for (Eigen::Index i = 0; i < count; ++i) {
      xs.col(i) = Eigen::Map<const Eigen::VectorXd>(spec.sequence[static_cast<std::size_t>(i)].data(), inputs_);
      ys.col(i) = Eigen::Map<const Eigen::VectorXd>(spec.targets[static_cast<std::size_t>(i)].data(), n_out);
    }
    predict(s, xs, outputs);
    out[at++] = static_cast<double>(batch_correct(outputs, ys, error_rows)) / static_cast<double>(count);
    out[at++] = batch_loss(Loss::squared, outputs, ys, error_rows);
  }
  if (batch_accuracy_) {
    Eigen::MatrixXd outputs(index_.outputs(), examples_);
    index_.gather_outputs(layout_, s, outputs);
    out[at++] = static_cast<double>(batch_correct(outputs, drive_->target(), error_rows)) / batch;
  }
}

bool EqpropModel::predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
                          Eigen::Ref<Eigen::MatrixXd> outputs) const {
  // The free phase settled from u = 0 at the parameters of s, one example at a time: one step
  // size would serve a whole chunk, and a hard sigmoid's kinks, crossed somewhere in a large chunk
  // at almost every step, keep it small (digits, initial network: 0.4 s one by one, 1.2 s in
  // chunks of 32, 2.9 s in chunks of 1000).
  const Parameters p = parameters_of(s);
  const auto& pops = network_->populations;
  const Eigen::Index chunk = 1;
  for (Eigen::Index begin = 0; begin < inputs.cols(); begin += chunk) {
    const Eigen::Index count = std::min(chunk, inputs.cols() - begin);
    const Eigen::MatrixXd u = relax(p, inputs.middleCols(begin, count), Eigen::MatrixXd::Zero(neurons(), count),
                                    0.0, nullptr, 1e-5, 1e-4, 200.0 * params_.tau);
    for (std::size_t q = 0; q < pops.size(); ++q) {
      const Eigen::Index out = index_.output_offset(q);
      if (out >= 0) {
        outputs.block(out, begin, pops[q].size, count) = u.middleRows(index_.offset(q), pops[q].size);
      }
    }
  }
  return true;
}

std::vector<ParameterArray> EqpropModel::parameters(const State& s) const {
  // Every projection: a connection's weights from the state, the reverse of a pair as their
  // transpose.
  const auto& projections = network_->projections;
  std::vector<RowMatrix> transposed(projections.size());
  std::vector<WeightView> w;
  for (std::size_t k = 0; k < projections.size(); ++k) {
    if (connection_of_[k] >= 0) {
      w.push_back({&projections[k], s.data() + layout_.block(connections_[static_cast<std::size_t>(connection_of_[k])].w).offset});
    } else {
      const auto primary = static_cast<std::size_t>(connection_of_[static_cast<std::size_t>(projections[k].reverse)]);
      transposed[k] = layout_.matrix(s, connections_[primary].w).transpose();
      w.push_back({&projections[k], transposed[k].data()});
    }
  }
  std::vector<Eigen::VectorXd> b;
  for (std::size_t q = 0; q < bias_.size(); ++q) {
    b.emplace_back(bias_[q] ? Eigen::VectorXd(layout_.vector(s, *bias_[q])) : network_->bias[q]);
  }
  return network_parameters(*network_, w, b);
}

}  // namespace lf
