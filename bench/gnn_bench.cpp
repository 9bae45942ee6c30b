// learnflow_gnn_bench: the time of one RHS evaluation of model gnn (models/gnn.hpp) on a large
// graph against a measured floor, at the given thread counts, printed as one JSON object on stdout
// (bench/gnn_bench.py reads it; bench/README.md "gnn"). Issue 12 item 7.
//
//   learnflow_gnn_bench CONFIG.toml [--set key=value]... [--threads 1,2] [--repeats N]
//
// The RHS is evaluated on a fixed state: the initial weights, x and λ filled with deterministic
// values in (−1, 1) (λ nonzero, so that the costate's per-edge work is real). Each call is timed
// alone (one call takes tens of milliseconds on 10^6 edges); the median over `repeats` calls,
// after 2 untimed ones, is reported per thread count.
//
// The floor: what any implementation of this RHS must do at least, written as directly as we can
// (hand-written CSR loops over the same edge indices, one OpenMP loop per pass over disjoint
// outputs, rows of s = state contiguous):
//   sparse  the products the RHS cannot avoid, with the nonlinearity left out: Y = A X (a GEMM
//           over the nodes), the forward gather-sum F_v = α_v Σ_{u∈ne(v)} Y_u (each edge read once,
//           by destination), the backward gather-sum M_u = Σ_{v: u∈ne(v)} α_v Λ_v (each edge read
//           once, by source), the costate's Aᵀ M and the weight flow M Xᵀ (GEMMs over the nodes);
//   edges   the same with the per-edge transition an edge-wise GNN must evaluate: σ(Y_u + Z_v) and
//           σ' per edge and component (tanh: E·s of them, by the project's vectorised tanh over
//           contiguous blocks of edges), σ' kept per edge for the backward pass, which then sums
//           σ'_vu ⊙ α_v Λ_v by source.
// Neither floor includes the readout (k × s per node) or the flows of B, C, b, W_out: they are
// O(N s k) and O(N s p), small beside the edge work at s = 16, k = 4, p = 1.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "models/batch_kernels.hpp"
#include "models/gnn.hpp"
#include "sim/core/activation.hpp"
#include "sim/config.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/threads.hpp"
#include "sim/simulation.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::string json_array(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += fmt::format("{}{:.6g}", i ? ", " : "", v[i]);
  return out + "]";
}

// The floor's data: CSR by destination (incoming) and by source (outgoing) over the same edges,
// node-major arrays [N, s] (one contiguous row per node).
class Floor {
 public:
  Floor(const lf::Graph& g, const Eigen::MatrixXd& A, bool aggregate_mean)
      : n_(g.nodes), s_(A.rows()), A_(A) {
    const Eigen::Index e = g.edges();
    in_start_.assign(static_cast<std::size_t>(n_ + 1), 0);
    out_start_.assign(static_cast<std::size_t>(n_ + 1), 0);
    for (Eigen::Index k = 0; k < e; ++k) {
      ++in_start_[static_cast<std::size_t>(g.dst[k] + 1)];
      ++out_start_[static_cast<std::size_t>(g.src[k] + 1)];
    }
    for (Eigen::Index v = 0; v < n_; ++v) {
      in_start_[v + 1] += in_start_[v];
      out_start_[v + 1] += out_start_[v];
    }
    in_source_.resize(static_cast<std::size_t>(e));
    out_target_.resize(static_cast<std::size_t>(e));
    out_edge_.resize(static_cast<std::size_t>(e));
    std::vector<Eigen::Index> in_at(in_start_.begin(), in_start_.end() - 1);
    std::vector<Eigen::Index> in_position(static_cast<std::size_t>(e));
    for (Eigen::Index k = 0; k < e; ++k) {
      const Eigen::Index j = in_at[g.dst[k]]++;
      in_source_[j] = g.src[k];
      in_position[k] = j;
    }
    std::vector<Eigen::Index> out_at(out_start_.begin(), out_start_.end() - 1);
    for (Eigen::Index k = 0; k < e; ++k) {
      const Eigen::Index i = out_at[g.src[k]]++;
      out_target_[i] = g.dst[k];
      out_edge_[i] = in_position[k];  // its row in the per-edge σ' array (incoming order)
    }
    alpha_.resize(n_);
    for (Eigen::Index v = 0; v < n_; ++v) {
      const Eigen::Index degree = in_start_[v + 1] - in_start_[v];
      alpha_[v] = aggregate_mean && degree > 0 ? 1.0 / static_cast<double>(degree) : 1.0;
    }
    x_ = RowMajor(n_, s_);
    lambda_ = RowMajor(n_, s_);
    for (Eigen::Index i = 0; i < x_.size(); ++i) {
      x_.data()[i] = 0.9 * std::sin(0.37 * static_cast<double>(i));
      lambda_.data()[i] = 0.9 * std::cos(0.91 * static_cast<double>(i));
    }
    y_ = z_ = f_ = m_ = dl_ = RowMajor(n_, s_);
    z_.rowwise() = Eigen::RowVectorXd::LinSpaced(s_, -0.5, 0.5);  // B l_v + b: any fixed rows
    pre_ = sig_ = dsig_ = RowMajor(e, s_);
    tanh_.kind = lf::Activation::tanh;
    flow_ = Eigen::MatrixXd(s_, s_);
  }

  // One floor evaluation; `edges`: with the per-edge transition (σ, σ').
  void evaluate(bool edges) {
    const Eigen::Index s = s_;
    // Y = X Aᵀ (rows: A x_u).
#pragma omp parallel for schedule(static) num_threads(lf::thread_count())
    for (Eigen::Index c = 0; c < chunks(); ++c) {
      const Eigen::Index r0 = c * chunk, r = std::min(chunk, n_ - r0);
      y_.middleRows(r0, r).noalias() = x_.middleRows(r0, r) * A_.transpose();
    }
    // Forward: by destination, each edge once, over chunks of nodes whose incoming edges are one
    // contiguous block of rows. With the transition: a_vu = Y_u + Z_v per edge, then σ and σ' over
    // the whole block at once by the project's vectorised tanh (sim/core/activation.hpp, the
    // kernel the model uses), then the sums.
#pragma omp parallel for schedule(static) num_threads(lf::thread_count())
    for (Eigen::Index c = 0; c < chunks(); ++c) {
      const Eigen::Index v0 = c * chunk, v1 = std::min(v0 + chunk, n_);
      if (edges) {
        const Eigen::Index j0 = in_start_[v0], j1 = in_start_[v1];
        for (Eigen::Index v = v0; v < v1; ++v) {
          for (Eigen::Index j = in_start_[v]; j < in_start_[v + 1]; ++j) {
            pre_.row(j) = y_.row(in_source_[j]) + z_.row(v);
          }
        }
        const Eigen::Index len = (j1 - j0) * s;
        lf::activate_with_derivative(tanh_, Eigen::Map<const Eigen::MatrixXd>(pre_.data() + j0 * s, len, 1),
                                     Eigen::Map<Eigen::MatrixXd>(sig_.data() + j0 * s, len, 1),
                                     Eigen::Map<Eigen::MatrixXd>(dsig_.data() + j0 * s, len, 1));
      }
      const RowMajor& summed = edges ? sig_ : y_;
      for (Eigen::Index v = v0; v < v1; ++v) {
        auto f = f_.row(v);
        f.setZero();
        for (Eigen::Index j = in_start_[v]; j < in_start_[v + 1]; ++j) {
          f += summed.row(edges ? j : in_source_[j]);
        }
        f *= alpha_[v];
      }
    }
    // Backward: by source, each edge once.
#pragma omp parallel for schedule(static) num_threads(lf::thread_count())
    for (Eigen::Index u = 0; u < n_; ++u) {
      auto m = m_.row(u);
      m.setZero();
      for (Eigen::Index i = out_start_[u]; i < out_start_[u + 1]; ++i) {
        const Eigen::Index v = out_target_[i];
        if (edges) {
          m.array() += alpha_[v] * dsig_.row(out_edge_[i]).array() * lambda_.row(v).array();
        } else {
          m += alpha_[v] * lambda_.row(v);
        }
      }
    }
    // The costate's Aᵀ M and the flow M Xᵀ (sum over nodes on one thread, as the model does).
#pragma omp parallel for schedule(static) num_threads(lf::thread_count())
    for (Eigen::Index c = 0; c < chunks(); ++c) {
      const Eigen::Index r0 = c * chunk, r = std::min(chunk, n_ - r0);
      dl_.middleRows(r0, r).noalias() = m_.middleRows(r0, r) * A_;
    }
    flow_.noalias() = m_.transpose() * x_;
    sink_ += f_(0, 0) + dl_(n_ - 1, s - 1) + flow_(0, 0);
  }
  double sink() const { return sink_; }

 private:
  static constexpr Eigen::Index chunk = 256;
  Eigen::Index chunks() const { return (n_ + chunk - 1) / chunk; }
  Eigen::Index n_, s_;
  Eigen::MatrixXd A_;
  std::vector<Eigen::Index> in_start_, out_start_, in_source_, out_target_, out_edge_;
  Eigen::VectorXd alpha_;
  RowMajor x_, lambda_, y_, z_, f_, m_, dl_, pre_, sig_, dsig_;
  lf::Activation tanh_;
  Eigen::MatrixXd flow_;
  double sink_ = 0.0;
};

template <class F>
std::vector<double> time_calls(F&& call, int repeats) {
  for (int i = 0; i < 2; ++i) call();  // warm the caches and the OpenMP team
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    call();
    seconds.push_back(seconds_since(t0));
  }
  return seconds;
}

int bench(const std::string& config, const std::vector<std::string>& overrides,
          const std::vector<int>& threads, int repeats) {
  const lf::Experiment ex = lf::load_experiment(config, overrides);
  lf::Simulation sim(ex);
  const auto* model = dynamic_cast<const lf::GnnModel*>(sim.model.get());
  if (model == nullptr) throw lf::InputError(fmt::format("{}: not a gnn experiment", config));
  const lf::BatchKernels& kernels = lf::batch_kernels();
  lf::State s(static_cast<std::size_t>(model->layout().size()));
  model->initial_state(s);
  {
    const lf::BlockId x = model->layout().find("x", "nodes"), lambda = model->layout().find("lambda", "nodes");
    auto xs = model->layout().vector(s, x);
    auto ls = model->layout().vector(s, lambda);
    for (Eigen::Index i = 0; i < xs.size(); ++i) {
      xs[i] = 0.9 * std::sin(0.37 * static_cast<double>(i));
      ls[i] = 0.9 * std::cos(0.91 * static_cast<double>(i));
    }
  }
  lf::State ds(s.size());
  const lf::GnnModel::Weights w = model->weights(s);
  Floor floor(model->graph(), w.A, model->params().aggregate == lf::GnnAggregate::mean);

  std::string per_thread;
  for (const int t : threads) {
    const lf::ScopedThreadCount scope(t);
    const std::vector<double> rhs = time_calls([&] { model->rhs(s, ds, 0.0); }, repeats);
    const std::vector<double> sparse = time_calls([&] { floor.evaluate(false); }, repeats);
    const std::vector<double> edges = time_calls([&] { floor.evaluate(true); }, repeats);
    const double r = median(rhs), fs = median(sparse), fe = median(edges);
    per_thread += fmt::format(
        "{}{{\"threads\": {}, \"rhs_seconds\": {}, \"rhs_median\": {:.6g}, \"floor_sparse_seconds\": {}, "
        "\"floor_sparse_median\": {:.6g}, \"floor_edges_seconds\": {}, \"floor_edges_median\": {:.6g}, "
        "\"ratio_sparse\": {:.4g}, \"ratio_edges\": {:.4g}}}",
        per_thread.empty() ? "" : ", ", lf::thread_count(), json_array(rhs), r, json_array(sparse), fs,
        json_array(edges), fe, r / fs, r / fe);
  }
  if (!std::isfinite(floor.sink()) || !std::isfinite(ds[0])) std::fputs("", stderr);
  fmt::print(
      "{{\"config\": \"{}\", \"nodes\": {}, \"edges\": {}, \"state\": {}, \"features\": {}, "
      "\"classes\": {}, \"contraction\": {}, \"learn\": {}, \"kernels\": \"{}\", \"repeats\": {}, "
      "\"runs\": [{}]}}\n",
      config, model->nodes(), model->graph().edges(), model->state_size(), model->graph().feature_size(),
      model->graph().classes, model->params().contraction, model->params().learn ? "true" : "false",
      kernels.name, repeats, per_thread);
  return lf::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"learnflow gnn benchmark: time per RHS evaluation against a measured floor, as JSON"};
  std::string config;
  std::vector<std::string> overrides;
  std::string threads = "1,2";
  int repeats = 11;
  app.add_option("config", config, "gnn experiment TOML file")->required();
  app.add_option("--set", overrides, "override a config key: key.path=value")->allow_extra_args(false);
  app.add_option("--threads", threads, "comma-separated thread counts (default 1,2)");
  app.add_option("--repeats", repeats, "timed calls per measurement")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  std::vector<int> counts;
  std::stringstream list(threads);
  for (std::string item; std::getline(list, item, ',');) counts.push_back(std::max(1, std::stoi(item)));
  try {
    return bench(config, overrides, counts, repeats);
  } catch (const lf::InputError& e) {
    fmt::print(stderr, "learnflow_gnn_bench: error: {}\n", e.what());
    return lf::exit_bad_input;
  }
}
