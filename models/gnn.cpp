#include "models/gnn.hpp"

#include <fmt/format.h>

#include <Eigen/SparseCore>
#include <Eigen/SparseLU>
#include <algorithm>
#include <cmath>
#include <functional>
#include <deque>
#include <limits>

#include "models/backprop.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/random.hpp"
#include "sim/core/threads.hpp"
#include "sim/waves.hpp"

namespace lf {
namespace {

// Nodes (and edges) are processed in chunks of fixed size, so that every column is computed by
// the same operations whatever the thread count (DESIGN §8).
constexpr Eigen::Index node_chunk = 256;
constexpr Eigen::Index edge_chunk = 1024;
// Above this many nonzeros (E·s² + N·s) the exact costate is found by fixed-point iteration
// instead of a sparse LU factorisation.
constexpr double max_lu_nonzeros = 4e6;

Eigen::Index chunks(Eigen::Index n, Eigen::Index chunk) { return (n + chunk - 1) / chunk; }

double cosine(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b) {
  const double norms = a.norm() * b.norm();
  return norms > 0.0 ? a.dot(b) / norms : std::numeric_limits<double>::quiet_NaN();
}

std::vector<double> row_major(const RowMatrix& m) { return {m.data(), m.data() + m.size()}; }
std::vector<double> values(const Eigen::VectorXd& v) { return {v.data(), v.data() + v.size()}; }

}  // namespace

struct GnnModel::Workspace {
  Weights w;                      // the weights of the state being evaluated
  Eigen::MatrixXd source_part;    // s × N: A x_u + C l_u
  Eigen::MatrixXd target_part;    // s × N: B l_v + b
  Eigen::MatrixXd pre, sig, dsig; // s × E (incoming order): a_vu, σ(a_vu), σ'(a_vu)
  Eigen::MatrixXd transition;     // s × N: F(x)
  Eigen::MatrixXd z, o, dout;     // k × N: W_out x + b_out, σ_out(z), σ_out'(z)
  Eigen::MatrixXd delta;          // k × N: σ_out'(z) ⊙ ε on S, 0 elsewhere
  Eigen::MatrixXd error;          // s × N: e = W_outᵀ δ
  Eigen::MatrixXd g;              // s × E: α_v σ'(a_vu) ⊙ λ_v
  Eigen::MatrixXd by_source, by_destination;  // s × N: sums of g over outgoing / incoming edges
  Weights flow;                   // γθ̇ + κθ (+ βP) before scaling
  // The contraction penalty.
  Eigen::VectorXd row_norms;      // s: ‖A_r‖₁
  Eigen::VectorXd direct;         // s: Σ_v w_vr dsum_vr
  Eigen::MatrixXd dsum;           // s × N: α_v Σ_{u∈ne(v)} |σ'(a_vu)|
  Eigen::MatrixXd row_sums;       // s × N: R_vr, the row sums of |J|
  Eigen::MatrixXd weight;         // s × N: 2 max(0, R_vr − μ)
  Eigen::MatrixXd ddsig, q;       // s × E: σ''(a_vu), the penalty's per-edge vectors
  Eigen::MatrixXd q_source, q_destination;
  Weights penalty_gradient;
  double penalty = 0.0;

  Workspace(Eigen::Index s, Eigen::Index p, Eigen::Index k, Eigen::Index n, Eigen::Index e)
      : source_part(s, n), target_part(s, n), pre(s, e), sig(s, e), dsig(s, e), transition(s, n),
        z(k, n), o(k, n), dout(k, n), delta(k, n), error(s, n), g(s, e), by_source(s, n),
        by_destination(s, n), row_norms(s), direct(s), dsum(s, n), row_sums(s, n), weight(s, n), ddsig(s, e), q(s, e),
        q_source(s, n), q_destination(s, n) {
    for (Weights* v : {&w, &flow, &penalty_gradient}) {
      v->A.resize(s, s);
      v->B.resize(s, p);
      v->C.resize(s, p);
      v->b.resize(s);
      v->W_out.resize(k, s);
      v->b_out.resize(k);
    }
  }
};

Eigen::VectorXd GnnModel::Weights::flat() const {
  Eigen::VectorXd out(A.size() + B.size() + C.size() + b.size() + W_out.size() + b_out.size());
  Eigen::Index at = 0;
  for (const RowMatrix* m : {&A, &B, &C}) {
    out.segment(at, m->size()) = m->reshaped<Eigen::RowMajor>();
    at += m->size();
  }
  out.segment(at, b.size()) = b;
  at += b.size();
  out.segment(at, W_out.size()) = W_out.reshaped<Eigen::RowMajor>();
  at += W_out.size();
  out.segment(at, b_out.size()) = b_out;
  return out;
}

void GnnModel::Weights::set_flat(const Eigen::Ref<const Eigen::VectorXd>& v) {
  Eigen::Index at = 0;
  for (RowMatrix* m : {&A, &B, &C}) {
    m->reshaped<Eigen::RowMajor>() = v.segment(at, m->size());
    at += m->size();
  }
  b = v.segment(at, b.size());
  at += b.size();
  W_out.reshaped<Eigen::RowMajor>() = v.segment(at, W_out.size());
  at += W_out.size();
  b_out = v.segment(at, b_out.size());
}

const std::vector<std::string>& GnnModel::parameter_names() {
  static const std::vector<std::string> names = {"W/A", "W/B", "W/C", "b/transition", "W/readout",
                                                 "b/readout"};
  return names;
}

GnnModel::GnnModel(const GnnParams& params, std::uint64_t seed, const Drive& drive)
    : params_(params), drive_(&drive), seed_(seed) {
  if (!params_.graph) {
    throw ConfigError("graph", "", "graph: model 'gnn' needs a [graph] table (edges, features, labels)");
  }
  const Graph& g = *params_.graph;
  nodes_ = g.nodes;
  s_ = params_.state;
  p_ = g.feature_size();
  k_ = g.classes;
  edges_ = g.edges();
  if (params_.contraction > 0.0 && !twice_differentiable(params_.activation)) {
    throw ConfigError("model.activation", "",
                      fmt::format("model.activation: the contraction penalty needs a twice "
                                  "differentiable transition activation, not '{}'",
                                  activation_name(params_.activation)));
  }
  incoming_ = index_by(g.dst, nodes_);
  outgoing_ = index_by(g.src, nodes_);
  in_position_.resize(static_cast<std::size_t>(edges_));
  in_source_.resize(static_cast<std::size_t>(edges_));
  in_target_.resize(static_cast<std::size_t>(edges_));
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) {
      const Eigen::Index e = incoming_.edge[j];
      in_position_[e] = j;
      in_source_[j] = g.src[e];
      in_target_[j] = v;
    }
  }
  alpha_.resize(nodes_);
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    const Eigen::Index degree = incoming_.start[v + 1] - incoming_.start[v];
    alpha_[v] = params_.aggregate == GnnAggregate::sum || degree == 0 ? 1.0 : 1.0 / static_cast<double>(degree);
  }
  features_ = g.features.transpose();
  targets_ = Eigen::MatrixXd::Zero(k_, nodes_);
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    targets_(g.labels[v], v) = 1.0;
    if (g.train_mask[v] != 0) supervised_.push_back(v);
  }

  layout_ = StateLayout(BatchShape{nodes_, true});
  x_ = layout_.add_per_example("x", "nodes", s_);
  lambda_ = layout_.add_per_example("lambda", "nodes", s_);
  A_ = layout_.add("W", "A", {s_, s_});
  B_ = layout_.add("W", "B", {s_, p_});
  C_ = layout_.add("W", "C", {s_, p_});
  // Blocks of one kind stay together (the residual metrics walk the layout kind by kind).
  W_out_ = layout_.add("W", "readout", {k_, s_});
  b_ = layout_.add("b", "transition", {s_});
  b_out_ = layout_.add("b", "readout", {k_});
  if (params_.mode == GnnMode::discrete) steps_ = layout_.add("steps", "taken", {1});
  rhs_workspace_ = std::make_unique<Workspace>(s_, p_, k_, nodes_, edges_);
}

GnnModel::~GnnModel() = default;

void GnnModel::initial_state(State& s) const {
  std::fill(s.begin(), s.end(), 0.0);
  // One random stream per parameter array (as build_network draws one per projection).
  const BlockId weights[] = {A_, B_, C_, W_out_};
  for (std::size_t k = 0; k < 4; ++k) {
    Random rng(derive_seed(seed_, k));
    auto w = layout_.matrix(s, weights[k]);
    const double spread = params_.init_scale / std::sqrt(static_cast<double>(std::max<Eigen::Index>(w.cols(), 1)));
    for (Eigen::Index i = 0; i < w.rows(); ++i) {
      for (Eigen::Index j = 0; j < w.cols(); ++j) {
        if (params_.init_weights == "normal") w(i, j) = spread * rng.normal();
        else if (params_.init_weights == "uniform") w(i, j) = spread * std::sqrt(3.0) * rng.uniform(-1.0, 1.0);
        else w(i, j) = 0.0;
      }
    }
  }
  const BlockId biases[] = {b_, b_out_};
  for (std::size_t k = 0; k < 2; ++k) {
    Random rng(derive_seed(seed_, 4 + k));
    auto b = layout_.vector(s, biases[k]);
    if (params_.init_bias == "normal") {
      for (Eigen::Index i = 0; i < b.size(); ++i) b[i] = params_.init_bias_scale * rng.normal();
    }
  }
  if (steps_) settle(s);
}

bool GnnModel::settle(State& s) const {
  const Weights w = weights(s);
  const std::optional<Eigen::MatrixXd> x = fixed_point(w, node_states(s), 1e-13, 100000);
  if (!x) {
    layout_.examples(s, x_).setConstant(std::numeric_limits<double>::quiet_NaN());
    layout_.examples(s, lambda_).setConstant(std::numeric_limits<double>::quiet_NaN());
    return false;
  }
  layout_.examples(s, x_) = *x;
  layout_.examples(s, lambda_) = exact_costate(w, *x);
  return true;
}

bool GnnModel::project(State& s, double t) const {
  if (!steps_) return false;
  double& taken = layout_.vector(s, *steps_)[0];
  // Steps due by t: one per unit of time since t0 (the slack absorbs t's rounding at integers).
  const double due = std::floor(t - drive_->signal().boundaries().front() + 1e-9);
  if (taken >= due) return false;
  while (taken < due) {
    const Weights w = weights(s);
    const Eigen::MatrixXd x = node_states(s);
    Eigen::VectorXd descent = costate_flow(w, x, node_costates(s)).flat() - params_.kappa * w.flat();
    if (params_.contraction > 0.0) descent -= params_.contraction_weight * penalty_gradient(w, x).flat();
    Weights next = w;
    next.set_flat(w.flat() + params_.eta * descent);
    set_weights(s, next);
    taken += 1.0;
    if (!settle(s)) break;
  }
  return true;
}

void GnnModel::weights_into(const State& s, Weights& w) const {
  w.A = layout_.matrix(s, A_);
  w.B = layout_.matrix(s, B_);
  w.C = layout_.matrix(s, C_);
  w.b = layout_.vector(s, b_);
  w.W_out = layout_.matrix(s, W_out_);
  w.b_out = layout_.vector(s, b_out_);
}

GnnModel::Weights GnnModel::weights(const State& s) const {
  Weights w;
  weights_into(s, w);
  return w;
}

void GnnModel::set_weights(State& s, const Weights& w) const {
  layout_.matrix(s, A_) = w.A;
  layout_.matrix(s, B_) = w.B;
  layout_.matrix(s, C_) = w.C;
  layout_.vector(s, b_) = w.b;
  layout_.matrix(s, W_out_) = w.W_out;
  layout_.vector(s, b_out_) = w.b_out;
}

Eigen::MatrixXd GnnModel::node_states(const State& s) const { return layout_.examples(s, x_); }
Eigen::MatrixXd GnnModel::node_costates(const State& s) const { return layout_.examples(s, lambda_); }
void GnnModel::set_node_states(State& s, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  layout_.examples(s, x_) = x;
}

// a_vu for every edge (incoming order), σ, σ', and F(x).
void GnnModel::forward(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x, Workspace& ws) const {
  const Eigen::Index node_blocks = chunks(nodes_, node_chunk);
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index c = 0; c < node_blocks; ++c) {
    const Eigen::Index j0 = c * node_chunk, n = std::min(node_chunk, nodes_ - j0);
    ws.source_part.middleCols(j0, n).noalias() = w.A * x.middleCols(j0, n);
    ws.source_part.middleCols(j0, n).noalias() += w.C * features_.middleCols(j0, n);
    ws.target_part.middleCols(j0, n).noalias() = w.B * features_.middleCols(j0, n);
    ws.target_part.middleCols(j0, n).colwise() += w.b;
  }
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index j = 0; j < edges_; ++j) {
    ws.pre.col(j) = ws.source_part.col(in_source_[j]) + ws.target_part.col(in_target_[j]);
  }
  const Eigen::Index edge_blocks = chunks(edges_, edge_chunk);
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index c = 0; c < edge_blocks; ++c) {
    const Eigen::Index j0 = c * edge_chunk, n = std::min(edge_chunk, edges_ - j0);
    activate_with_derivative(params_.activation, ws.pre.middleCols(j0, n), ws.sig.middleCols(j0, n),
                             ws.dsig.middleCols(j0, n));
  }
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    auto f = ws.transition.col(v);
    f.setZero();
    for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) f += ws.sig.col(j);
    f *= alpha_[v];
  }
}

// z, o, σ_out', δ on the supervised nodes and e = W_outᵀ δ.
void GnnModel::readout_error(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x,
                             Workspace& ws) const {
  const Eigen::Index node_blocks = chunks(nodes_, node_chunk);
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index c = 0; c < node_blocks; ++c) {
    const Eigen::Index j0 = c * node_chunk, n = std::min(node_chunk, nodes_ - j0);
    ws.z.middleCols(j0, n).noalias() = w.W_out * x.middleCols(j0, n);
    ws.z.middleCols(j0, n).colwise() += w.b_out;
    activate_with_derivative(params_.output_activation, ws.z.middleCols(j0, n),
                             ws.o.middleCols(j0, n), ws.dout.middleCols(j0, n));
    ws.delta.middleCols(j0, n).setZero();
  }
  const auto supervised = static_cast<Eigen::Index>(supervised_.size());
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index i = 0; i < supervised; ++i) {
    const Eigen::Index v = supervised_[static_cast<std::size_t>(i)];
    auto d = ws.delta.col(v);
    loss_error(params_.loss, ws.o.col(v), targets_.col(v), d);  // ε = −∂ℓ/∂o
    d.array() *= ws.dout.col(v).array();
  }
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index c = 0; c < node_blocks; ++c) {
    const Eigen::Index j0 = c * node_chunk, n = std::min(node_chunk, nodes_ - j0);
    ws.error.middleCols(j0, n).noalias() = w.W_out.transpose() * ws.delta.middleCols(j0, n);
  }
}

void GnnModel::gather(const Eigen::MatrixXd& g, Eigen::MatrixXd& by_source,
                      Eigen::MatrixXd& by_destination) const {
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index u = 0; u < nodes_; ++u) {
    auto m = by_source.col(u);
    m.setZero();
    for (Eigen::Index i = outgoing_.start[u]; i < outgoing_.start[u + 1]; ++i) {
      m += g.col(in_position_[outgoing_.edge[i]]);
    }
    auto k = by_destination.col(u);
    k.setZero();
    for (Eigen::Index j = incoming_.start[u]; j < incoming_.start[u + 1]; ++j) k += g.col(j);
  }
}

// Σ_edges g x_uᵀ = M xᵀ, Σ g l_uᵀ = M Lᵀ, Σ g l_vᵀ = K Lᵀ, Σ g = K 1, and the readout's from δ.
// Sums over nodes: one thread, in node order.
void GnnModel::outer_flows(const Eigen::MatrixXd& by_source, const Eigen::MatrixXd& by_destination,
                           const Eigen::MatrixXd* delta, const Eigen::Ref<const Eigen::MatrixXd>& x,
                           Weights& out) const {
  out.A.noalias() = by_source * x.transpose();
  out.C.noalias() = by_source * features_.transpose();
  out.B.noalias() = by_destination * features_.transpose();
  out.b = by_destination.rowwise().sum();
  if (delta != nullptr) {
    out.W_out.noalias() = *delta * x.transpose();
    out.b_out = delta->rowwise().sum();
  } else {
    out.W_out.setZero();
    out.b_out.setZero();
  }
}

// The row sums of |J|, the penalty P and (gradient) ∂P/∂θ at fixed x, from forward()'s σ'.
void GnnModel::penalty_terms(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x,
                             Workspace& ws, bool gradient) const {
  // R_vr = α_v Σ_{u∈ne(v)} |σ'(a_vu)_r| ‖A_r‖₁ = dsum_vr ‖A_r‖₁.
  ws.row_norms = w.A.cwiseAbs().rowwise().sum();
  const Eigen::VectorXd& row_norms = ws.row_norms;
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    auto d = ws.dsum.col(v);
    d.setZero();
    for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) d += ws.dsig.col(j).cwiseAbs();
    d *= alpha_[v];
    ws.row_sums.col(v) = d.cwiseProduct(row_norms);
  }
  ws.weight = 2.0 * (ws.row_sums.array() - params_.contraction).max(0.0);
  ws.penalty = 0.25 * ws.weight.squaredNorm();  // Σ max(0, R − μ)²
  if (!gradient) return;
  const Eigen::Index edge_blocks = chunks(edges_, edge_chunk);
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index c = 0; c < edge_blocks; ++c) {
    const Eigen::Index j0 = c * edge_chunk, n = std::min(edge_chunk, edges_ - j0);
    activate_second_derivative(params_.activation, ws.pre.middleCols(j0, n), ws.ddsig.middleCols(j0, n));
  }
  // ∂P/∂a_vu = α_v sign(σ'(a_vu)) ⊙ σ''(a_vu) ⊙ ‖A_r‖₁ ⊙ w_v: the per-edge vector q.
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) {
      ws.q.col(j) = alpha_[v] * (ws.ddsig.col(j).array() * ws.dsig.col(j).array().sign() *
                                 row_norms.array() * ws.weight.col(v).array()).matrix();
    }
  }
  gather(ws.q, ws.q_source, ws.q_destination);
  outer_flows(ws.q_source, ws.q_destination, nullptr, x, ws.penalty_gradient);
  // The direct dependence of R_vr on |A_rk|: sign(A_rk) Σ_v w_vr dsum_vr.
  ws.direct = ws.weight.cwiseProduct(ws.dsum).rowwise().sum();
  ws.penalty_gradient.A.noalias() += (w.A.array().sign().colwise() * ws.direct.array()).matrix();
}

// ∂P/∂x_u = Aᵀ Σ_{v: u∈ne(v)} q_vu = Aᵀ q_source_u: the penalty's source of the costate, taken
// from e (after penalty_terms with the gradient).
void GnnModel::penalty_source(const Weights& w, Workspace& ws) const {
  const double beta = params_.contraction_weight;
  const Eigen::Index node_blocks = chunks(nodes_, node_chunk);
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index c = 0; c < node_blocks; ++c) {
    const Eigen::Index j0 = c * node_chunk, n = std::min(node_chunk, nodes_ - j0);
    ws.error.middleCols(j0, n).noalias() -= beta * (w.A.transpose() * ws.q_source.middleCols(j0, n));
  }
}

void GnnModel::rhs(const State& s, State& ds, double /*t*/) const {
  if (steps_) {  // discrete mode: nothing flows between the gradient steps
    std::fill(ds.begin(), ds.end(), 0.0);
    return;
  }
  Workspace& ws = *rhs_workspace_;
  weights_into(s, ws.w);
  const ConstBatchView x = layout_.examples(s, x_);
  const ConstBatchView lambda = layout_.examples(s, lambda_);
  forward(ws.w, x, ws);
  readout_error(ws.w, x, ws);
  if (params_.contraction > 0.0) {
    penalty_terms(ws.w, x, ws, true);
    penalty_source(ws.w, ws);  // e ← e − β ∂P/∂x: the costate of V + βP
  }
  BatchView dx = layout_.examples(ds, x_);
  BatchView dlambda = layout_.examples(ds, lambda_);
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    dx.col(v) = (ws.transition.col(v) - params_.c * x.col(v)) / params_.tau_x;
    for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) {
      ws.g.col(j) = alpha_[v] * ws.dsig.col(j).cwiseProduct(lambda.col(v));
    }
  }
  gather(ws.g, ws.by_source, ws.by_destination);
  const Eigen::Index node_blocks = chunks(nodes_, node_chunk);
#pragma omp parallel for schedule(static) num_threads(thread_count())
  for (Eigen::Index c = 0; c < node_blocks; ++c) {
    const Eigen::Index j0 = c * node_chunk, n = std::min(node_chunk, nodes_ - j0);
    auto dl = dlambda.middleCols(j0, n);
    dl.noalias() = ws.w.A.transpose() * ws.by_source.middleCols(j0, n);
    dl += ws.error.middleCols(j0, n) - params_.c * lambda.middleCols(j0, n);
    dl /= params_.tau_lambda;
  }
  if (!params_.learn) {
    for (const BlockId id : {A_, B_, C_, b_, W_out_, b_out_}) layout_.vector(ds, id).setZero();
    return;
  }
  outer_flows(ws.by_source, ws.by_destination, &ws.delta, x, ws.flow);
  if (params_.contraction > 0.0) {
    const double beta = params_.contraction_weight;
    ws.flow.A -= beta * ws.penalty_gradient.A;
    ws.flow.B -= beta * ws.penalty_gradient.B;
    ws.flow.C -= beta * ws.penalty_gradient.C;
    ws.flow.b -= beta * ws.penalty_gradient.b;
  }
  const double rate = 1.0 / params_.gamma, kappa = params_.kappa;
  layout_.matrix(ds, A_) = rate * (ws.flow.A - kappa * ws.w.A);
  layout_.matrix(ds, B_) = rate * (ws.flow.B - kappa * ws.w.B);
  layout_.matrix(ds, C_) = rate * (ws.flow.C - kappa * ws.w.C);
  layout_.vector(ds, b_) = rate * (ws.flow.b - kappa * ws.w.b);
  layout_.matrix(ds, W_out_) = rate * (ws.flow.W_out - kappa * ws.w.W_out);
  layout_.vector(ds, b_out_) = rate * (ws.flow.b_out - kappa * ws.w.b_out);
}

Eigen::MatrixXd GnnModel::transition(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  forward(w, x, ws);
  return ws.transition;
}

std::optional<Eigen::MatrixXd> GnnModel::fixed_point(const Weights& w, Eigen::MatrixXd x,
                                                     double tolerance, long max_iterations) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  for (long i = 0; i < max_iterations; ++i) {
    forward(w, x, ws);
    ws.transition /= params_.c;
    const double change = (ws.transition - x).cwiseAbs().maxCoeff();
    x.swap(ws.transition);
    if (!std::isfinite(change)) return std::nullopt;
    if (change < tolerance) return x;
  }
  return std::nullopt;
}

Eigen::MatrixXd GnnModel::readout(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  readout_error(w, x, ws);
  return ws.o;
}

double GnnModel::loss(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  const Eigen::MatrixXd o = readout(w, x);
  double sum = 0.0;
  for (const Eigen::Index v : supervised_) sum += loss_value(params_.loss, o.col(v), targets_.col(v));
  return sum;
}

double GnnModel::accuracy(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x,
                          const std::vector<std::uint8_t>& mask) const {
  const Eigen::MatrixXd o = readout(w, x);
  long right = 0, total = 0;
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    if (mask[static_cast<std::size_t>(v)] == 0) continue;
    Eigen::Index best = 0;
    o.col(v).maxCoeff(&best);
    right += best == graph().labels[static_cast<std::size_t>(v)] ? 1 : 0;
    ++total;
  }
  return total > 0 ? static_cast<double>(right) / static_cast<double>(total)
                   : std::numeric_limits<double>::quiet_NaN();
}

Eigen::MatrixXd GnnModel::exact_costate(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  forward(w, x, ws);
  readout_error(w, x, ws);
  if (params_.contraction > 0.0) {
    penalty_terms(w, x, ws, true);
    penalty_source(w, ws);
  }
  const Eigen::Index n = nodes_ * s_;
  const double nonzeros = static_cast<double>(edges_) * static_cast<double>(s_ * s_) + static_cast<double>(n);
  if (nonzeros <= max_lu_nonzeros) {
    // (cI − Jᵀ) λ = e, unknowns λ_(u,k) at u·s + k (the column-major layout of λ):
    // Jᵀ[(u,k), (v,r)] = Σ_{edges u→v} α_v A_rk σ'(a_vu)_r.
    std::vector<Eigen::Triplet<double>> entries;
    entries.reserve(static_cast<std::size_t>(nonzeros));
    for (Eigen::Index i = 0; i < n; ++i) entries.emplace_back(i, i, params_.c);
    for (Eigen::Index j = 0; j < edges_; ++j) {
      const Eigen::Index u = in_source_[j], v = in_target_[j];
      for (Eigen::Index k = 0; k < s_; ++k) {
        for (Eigen::Index r = 0; r < s_; ++r) {
          entries.emplace_back(u * s_ + k, v * s_ + r, -alpha_[v] * w.A(r, k) * ws.dsig(r, j));
        }
      }
    }
    Eigen::SparseMatrix<double> system(n, n);
    system.setFromTriplets(entries.begin(), entries.end());
    Eigen::SparseLU<Eigen::SparseMatrix<double>> lu(system);
    if (lu.info() != Eigen::Success) return Eigen::MatrixXd::Constant(s_, nodes_, std::numeric_limits<double>::quiet_NaN());
    const Eigen::VectorXd e = ws.error.reshaped();
    const Eigen::VectorXd lambda = lu.solve(e);
    return lambda.reshaped(s_, nodes_);
  }
  // λ ← (Jᵀ λ + e)/c: converges when x ↦ F(x)/c contracts.
  Eigen::MatrixXd lambda = Eigen::MatrixXd::Zero(s_, nodes_), next(s_, nodes_);
  for (long i = 0; i < 100000; ++i) {
#pragma omp parallel for schedule(static) num_threads(thread_count())
    for (Eigen::Index v = 0; v < nodes_; ++v) {
      for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) {
        ws.g.col(j) = alpha_[v] * ws.dsig.col(j).cwiseProduct(lambda.col(v));
      }
    }
    gather(ws.g, ws.by_source, ws.by_destination);
    next.noalias() = w.A.transpose() * ws.by_source;
    next = (next + ws.error) / params_.c;
    const double change = (next - lambda).cwiseAbs().maxCoeff();
    lambda.swap(next);
    if (!std::isfinite(change)) break;
    if (change <= 1e-14 * std::max(1.0, lambda.cwiseAbs().maxCoeff())) return lambda;
  }
  return Eigen::MatrixXd::Constant(s_, nodes_, std::numeric_limits<double>::quiet_NaN());
}

GnnModel::Weights GnnModel::costate_flow(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x,
                                         const Eigen::Ref<const Eigen::MatrixXd>& lambda) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  forward(w, x, ws);
  readout_error(w, x, ws);
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) {
      ws.g.col(j) = alpha_[v] * ws.dsig.col(j).cwiseProduct(lambda.col(v));
    }
  }
  gather(ws.g, ws.by_source, ws.by_destination);
  outer_flows(ws.by_source, ws.by_destination, &ws.delta, x, ws.flow);
  return ws.flow;
}

GnnModel::Weights GnnModel::exact_gradient(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Weights flow = costate_flow(w, x, exact_costate(w, x));
  Eigen::VectorXd gradient = -flow.flat();
  if (params_.contraction > 0.0) gradient += params_.contraction_weight * penalty_gradient(w, x).flat();
  flow.set_flat(gradient);
  return flow;
}

Eigen::MatrixXd GnnModel::jacobian_row_sums(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  forward(w, x, ws);
  penalty_terms(w, x, ws, false);
  return ws.row_sums;
}

double GnnModel::penalty(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  forward(w, x, ws);
  penalty_terms(w, x, ws, false);
  return ws.penalty;
}

GnnModel::Weights GnnModel::penalty_gradient(const Weights& w, const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Workspace ws(s_, p_, k_, nodes_, edges_);
  forward(w, x, ws);
  penalty_terms(w, x, ws, true);
  return ws.penalty_gradient;
}

GnnModel::Weights GnnModel::weight_flow(const State& s) const {
  const Weights w = weights(s);
  const Eigen::MatrixXd x = node_states(s);
  Weights flow = costate_flow(w, x, node_costates(s));
  Eigen::VectorXd total = flow.flat() - params_.kappa * w.flat();
  if (params_.contraction > 0.0) total -= params_.contraction_weight * penalty_gradient(w, x).flat();
  flow.set_flat(total);
  return flow;
}

std::vector<std::string> GnnModel::metric_names() const {
  std::vector<std::string> names = {"loss", "train_accuracy", "test_accuracy", "contraction_factor"};
  if (params_.contraction > 0.0) names.emplace_back("penalty");
  if (params_.learn && !steps_) {
    for (const std::string& p : parameter_names()) names.push_back("alignment/cosine/" + p);
  }
  return names;
}

void GnnModel::metrics(const State& s, double /*t*/, std::span<double> out) const {
  const Weights w = weights(s);
  const Eigen::MatrixXd x = node_states(s);
  std::size_t at = 0;
  out[at++] = loss(w, x);
  out[at++] = accuracy(w, x, graph().train_mask);
  out[at++] = accuracy(w, x, graph().test_mask);
  const Eigen::MatrixXd sums = jacobian_row_sums(w, x);
  out[at++] = (sums.size() > 0 ? sums.maxCoeff() : 0.0) / params_.c;
  if (params_.contraction > 0.0) out[at++] = penalty(w, x);
  if (!params_.learn || steps_) return;
  // The flow now against −d(V + βP)/dθ − κθ at the fixed point of the current weights (the total
  // derivative: exact_gradient).
  const Eigen::VectorXd flow = weight_flow(s).flat();
  const std::optional<Eigen::MatrixXd> settled = fixed_point(w, x, 1e-12, 100000);
  Eigen::VectorXd descent = Eigen::VectorXd::Constant(flow.size(), std::numeric_limits<double>::quiet_NaN());
  if (settled) descent = -exact_gradient(w, *settled).flat() - params_.kappa * w.flat();
  Eigen::Index offset = 0;
  for (const Eigen::Index size : {w.A.size(), w.B.size(), w.C.size(), w.b.size(), w.W_out.size(), w.b_out.size()}) {
    out[at++] = cosine(flow.segment(offset, size), descent.segment(offset, size));
    offset += size;
  }
}

std::vector<ParameterArray> GnnModel::parameters(const State& s) const {
  const Weights w = weights(s);
  return {{"W/A", {s_, s_}, row_major(w.A)},          {"W/B", {s_, p_}, row_major(w.B)},
          {"W/C", {s_, p_}, row_major(w.C)},          {"b/transition", {s_}, values(w.b)},
          {"W/readout", {k_, s_}, row_major(w.W_out)}, {"b/readout", {k_}, values(w.b_out)}};
}

std::vector<ParameterArray> GnnModel::description(const State& s) const {
  const Graph& g = graph();
  std::vector<ParameterArray> out;
  ParameterArray edges{"/graph/edges", {edges_, 2}, {}, true};
  for (Eigen::Index e = 0; e < edges_; ++e) {
    edges.values.push_back(static_cast<double>(g.src[e]));
    edges.values.push_back(static_cast<double>(g.dst[e]));
  }
  out.push_back(std::move(edges));
  out.push_back({"/graph/features", {nodes_, p_}, row_major(g.features)});
  ParameterArray labels{"/graph/labels", {nodes_}, {}, true};
  ParameterArray train{"/graph/train_mask", {nodes_}, {}, true};
  ParameterArray test{"/graph/test_mask", {nodes_}, {}, true};
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    labels.values.push_back(static_cast<double>(g.labels[v]));
    train.values.push_back(g.train_mask[v]);
    test.values.push_back(g.test_mask[v]);
  }
  out.push_back(std::move(labels));
  out.push_back(std::move(train));
  out.push_back(std::move(test));
  for (ParameterArray& p : parameters(s)) {
    p.name = "/parameters/" + p.name;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Eigen::Index> GnnModel::hop_distance() const {
  std::vector<Eigen::Index> hops(static_cast<std::size_t>(nodes_), -1);
  std::deque<Eigen::Index> queue;
  for (const Eigen::Index v : supervised_) {
    hops[static_cast<std::size_t>(v)] = 0;
    queue.push_back(v);
  }
  while (!queue.empty()) {
    const Eigen::Index v = queue.front();
    queue.pop_front();
    for (Eigen::Index j = incoming_.start[v]; j < incoming_.start[v + 1]; ++j) {
      const Eigen::Index u = in_source_[j];  // u → v: λ_u is fed by λ_v
      if (hops[static_cast<std::size_t>(u)] < 0) {
        hops[static_cast<std::size_t>(u)] = hops[static_cast<std::size_t>(v)] + 1;
        queue.push_back(u);
      }
    }
  }
  return hops;
}

std::vector<BlockId> GnnModel::node_wave_blocks() const {
  if (steps_) return {};  // discrete mode: λ is the exact costate after every step, not a wave
  return {lambda_};
}

NodeWaves GnnModel::node_waves(BlockId block, double segment_start, std::span<const double> arrivals) const {
  NodeWaves out;
  if (block != lambda_ || static_cast<Eigen::Index>(arrivals.size()) != nodes_) return out;
  const std::vector<Eigen::Index> hops = hop_distance();
  ParameterArray arrival{"/waves/graph/lambda_arrival", {nodes_}, {arrivals.begin(), arrivals.end()}};
  ParameterArray distance{"/waves/graph/hop_distance", {nodes_}, {}, true};
  std::vector<double> depth, delay;
  for (Eigen::Index v = 0; v < nodes_; ++v) {
    const auto h = hops[static_cast<std::size_t>(v)];
    distance.values.push_back(static_cast<double>(h));
    const double a = arrivals[static_cast<std::size_t>(v)];
    if (h >= 0 && std::isfinite(a)) {
      depth.push_back(static_cast<double>(h));
      delay.push_back(a - segment_start);
    }
  }
  // delay = a + hops / speed by least squares over the nodes with an arrival and a hop distance.
  const FrontFit fit = front_speed(depth, delay);
  out.attributes = {{arrival.name, "front_speed", {fit.speed}},
                    {arrival.name, "front_r2", {fit.r2}},
                    {arrival.name, "front_points", {static_cast<double>(fit.points)}},
                    {arrival.name, "segment_start", {segment_start}}};
  out.arrays.push_back(std::move(arrival));
  out.arrays.push_back(std::move(distance));
  return out;
}

std::vector<ParameterArray> GnnModel::results(const State& s) const {
  // The exact gradient of V at the fixed point of the final weights (Jacobi from the final x).
  const Weights w = weights(s);
  const std::optional<Eigen::MatrixXd> settled = fixed_point(w, node_states(s), 1e-13, 100000);
  Weights gradient = w;
  if (settled) {
    gradient = exact_gradient(w, *settled);
  } else {
    gradient.set_flat(Eigen::VectorXd::Constant(w.flat().size(), std::numeric_limits<double>::quiet_NaN()));
  }
  std::vector<ParameterArray> out;
  for (ParameterArray& p : parameters(std::invoke([&] {
         State copy = s;
         set_weights(copy, gradient);
         return copy;
       }))) {
    p.name = "/gradient/" + p.name;
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace lf
