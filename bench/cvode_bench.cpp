// learnflow_cvode_bench: the CVODE peer of the work-precision benchmark (bench/wp_bench.py).
// SUNDIALS' CVODE integrates learnflow's own ODE system (the model's RHS, built from the same
// config as a learnflow run), so that the comparison is between the solvers alone:
//   - "adams": variable-order Adams–Moulton (orders 1–12) with fixed-point (functional) iteration,
//     CVODE's method for non-stiff problems;
//   - "bdf":   variable-order BDF (orders 1–5) with Newton iteration and matrix-free GMRES (the
//     Jacobian's action by CVODE's difference quotient, no preconditioner): CVODE's stiff method
//     for a system too large for a dense Jacobian.
// It integrates segment by segment, re-initialising CVODE at every boundary of the input schedule
// (as learnflow's driver restarts its stepper there), with the same scalar rtol and atol, and
// CVODE's own weighted RMS error norm.
// The N_Vector is SUNDIALS' OpenMP vector with as many threads as learnflow's RHS (the serial one
// for short states, below). The RHS takes
// learnflow's State (std::vector<double>), so each evaluation copies y in and dy/dt out; the time
// of those two copies is measured here and reported (copy_seconds_per_rhs), and wp_bench.py
// subtracts it, so CVODE is not charged for them.
//
//   learnflow_cvode_bench CONFIG.toml --method adams|bdf --rtol R --atol A [--set key=value]...
//                         [--threads N] [--repeats N] [--warmup N] [--state-out FILE]
// Prints one JSON object; --state-out writes the final state (float64, the layout's order) and
// the JSON lists the blocks (name, offset, size) to read it.
#include <CLI/CLI.hpp>
#include <cvode/cvode.h>
#include <fmt/format.h>
#include <nvector/nvector_openmp.h>
#include <nvector/nvector_serial.h>
#include <sundials/sundials_context.h>
#include <sunlinsol/sunlinsol_spgmr.h>
#include <sunnonlinsol/sunnonlinsol_fixedpoint.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "models/registry.hpp"
#include "sim/config.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/input.hpp"
#include "sim/core/threads.hpp"
#include "sim/experiment.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The OpenMP N_Vector opens a parallel region in every vector operation: below this length (the
// threshold of learnflow's own stepper algebra, integrators/algebra.hpp) that costs far more than
// it saves (S1, 17 states, 2 threads: ~300x slower than serial), so shorter states get the serial
// vector, as a CVODE user would choose; the RHS still runs on all threads.
constexpr sunindextype parallel_vector_min = 32768;

// What CVODE's callback needs: the model, its drive, and the State buffers it copies through.
struct Problem {
  const lf::Model* model = nullptr;
  lf::State y, dy;
};

int rhs_callback(sunrealtype t, N_Vector y, N_Vector ydot, void* user) {
  auto& p = *static_cast<Problem*>(user);
  const double* in = N_VGetArrayPointer(y);
  std::copy(in, in + p.y.size(), p.y.begin());
  p.model->rhs(p.y, p.dy, t);
  std::copy(p.dy.begin(), p.dy.end(), N_VGetArrayPointer(ydot));
  return 0;
}

void check(int flag, const char* what) {
  if (flag < 0) throw std::runtime_error(fmt::format("CVODE: {} failed (flag {})", what, flag));
}

struct Stats {
  long steps = 0, rhs_evals = 0, error_test_fails = 0, nonlinear_iterations = 0,
       nonlinear_failures = 0, jv_rhs_evals = 0, linear_iterations = 0;
  std::string blocks;  // the layout's blocks as JSON objects (name, offset, size)
};

// One integration of the whole schedule; returns the final state.
// `seconds`: the wall time from CVODE's creation to its last step (not building the model).
lf::State integrate(const lf::Experiment& ex, const std::string& method, double rtol, double atol,
                    int threads, Stats& stats, double& seconds) {
  const lf::Network network = lf::build_network(ex.network);
  const lf::InputSignal signal(ex.input, ex.integrator.t0, ex.integrator.t_end);
  lf::Drive drive(signal);
  const auto model = lf::make_model(ex.model, network, drive);
  const auto n = static_cast<sunindextype>(model->layout().size());
  Problem problem;
  problem.model = model.get();
  problem.y.assign(static_cast<std::size_t>(n), 0.0);
  problem.dy.assign(static_cast<std::size_t>(n), 0.0);
  lf::State s(static_cast<std::size_t>(n));
  model->initial_state(s);
  stats.blocks.clear();
  for (const lf::Block& b : model->layout().blocks()) {
    stats.blocks += fmt::format("{}{{\"name\": \"{}\", \"offset\": {}, \"size\": {}}}",
                                stats.blocks.empty() ? "" : ", ", b.name(), b.offset, b.size);
  }

  const auto start = Clock::now();
  SUNContext ctx = nullptr;
  check(SUNContext_Create(nullptr, &ctx), "SUNContext_Create");
  N_Vector y = threads > 1 && n >= parallel_vector_min
                   ? N_VNew_OpenMP(n, threads, ctx) : N_VNew_Serial(n, ctx);
  void* mem = CVodeCreate(method == "adams" ? CV_ADAMS : CV_BDF, ctx);
  SUNNonlinearSolver nls = nullptr;
  SUNLinearSolver ls = nullptr;
  const std::vector<double>& bounds = signal.boundaries();
  for (std::size_t k = 0; k + 1 < bounds.size(); ++k) {
    drive.enter_segment(k, bounds[k]);
    model->enter_segment(s, bounds[k]);
    std::copy(s.begin(), s.end(), N_VGetArrayPointer(y));
    if (k == 0) {
      check(CVodeInit(mem, rhs_callback, bounds[0], y), "CVodeInit");
      check(CVodeSStolerances(mem, rtol, atol), "CVodeSStolerances");
      check(CVodeSetUserData(mem, &problem), "CVodeSetUserData");
      check(CVodeSetMaxNumSteps(mem, 100000000L), "CVodeSetMaxNumSteps");
      if (method == "adams") {
        nls = SUNNonlinSol_FixedPoint(y, 0, ctx);
        check(CVodeSetNonlinearSolver(mem, nls), "CVodeSetNonlinearSolver");
      } else {
        ls = SUNLinSol_SPGMR(y, SUN_PREC_NONE, 0, ctx);
        check(CVodeSetLinearSolver(mem, ls, nullptr), "CVodeSetLinearSolver");
      }
    } else {
      check(CVodeReInit(mem, bounds[k], y), "CVodeReInit");
    }
    // Stop exactly at the boundary (no step past it: the input switches there).
    check(CVodeSetStopTime(mem, bounds[k + 1]), "CVodeSetStopTime");
    sunrealtype t = bounds[k];
    check(CVode(mem, bounds[k + 1], y, &t, CV_NORMAL), "CVode");
    const double* out = N_VGetArrayPointer(y);
    std::copy(out, out + n, s.begin());
    model->leave_segment(s, bounds[k + 1]);
  }
  seconds = seconds_since(start);
  long v = 0;
  CVodeGetNumSteps(mem, &v), stats.steps = v;
  CVodeGetNumRhsEvals(mem, &v), stats.rhs_evals = v;
  CVodeGetNumErrTestFails(mem, &v), stats.error_test_fails = v;
  CVodeGetNumNonlinSolvIters(mem, &v), stats.nonlinear_iterations = v;
  CVodeGetNumNonlinSolvConvFails(mem, &v), stats.nonlinear_failures = v;
  if (ls != nullptr) {
    CVodeGetNumLinRhsEvals(mem, &v), stats.jv_rhs_evals = v;
    CVodeGetNumLinIters(mem, &v), stats.linear_iterations = v;
  }
  CVodeFree(&mem);
  if (nls != nullptr) SUNNonlinSolFree(nls);
  if (ls != nullptr) SUNLinSolFree(ls);
  N_VDestroy(y);
  SUNContext_Free(&ctx);
  return s;
}

// The median time of the two copies one RHS evaluation makes (state in, derivative out).
double copy_seconds(std::size_t n) {
  std::vector<double> a(n, 1.0), b(n), c(n, 2.0), d(n);
  std::vector<double> times;
  for (int r = 0; r < 21; ++r) {
    const auto start = Clock::now();
    for (int i = 0; i < 20; ++i) {
      std::copy(a.begin(), a.end(), b.begin());
      std::copy(c.begin(), c.end(), d.begin());
      a[static_cast<std::size_t>(i) % n] += b[n - 1] * 1e-300;  // keep the copies live
    }
    times.push_back(seconds_since(start) / 20.0);
  }
  return median(times);
}

int bench(const std::string& config, const std::vector<std::string>& overrides,
          const std::string& method, double rtol, double atol, int threads, int repeats,
          int warmup, const std::string& state_out) {
  const lf::Experiment ex = lf::load_experiment(config, overrides);
  const lf::ScopedThreadCount scope(threads);
  std::vector<double> times;
  Stats stats;
  lf::State final_state;
  for (int r = 0; r < warmup + repeats; ++r) {
    double elapsed = 0.0;
    final_state = integrate(ex, method, rtol, atol, threads, stats, elapsed);
    if (r >= warmup) times.push_back(elapsed);
  }
  if (!state_out.empty()) {
    std::ofstream out(state_out, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(final_state.data()),
              static_cast<std::streamsize>(final_state.size() * sizeof(double)));
    if (!out) throw std::runtime_error("cannot write " + state_out);
  }
  std::string wall;
  for (double t : times) wall += fmt::format("{}{:.6g}", wall.empty() ? "" : ", ", t);
  fmt::print(
      "{{\"method\": \"cvode-{}\", \"rtol\": {:.3g}, \"atol\": {:.3g}, \"threads\": {}, "
      "\"steps\": {}, \"rhs_evals\": {}, \"error_test_fails\": {}, \"nonlinear_iterations\": {}, "
      "\"nonlinear_failures\": {}, \"jv_rhs_evals\": {}, \"linear_iterations\": {}, "
      "\"wall_seconds\": [{}], \"median_seconds\": {:.6g}, \"copy_seconds_per_rhs\": {:.6g}, "
      "\"sundials\": \"{}\", \"blocks\": [{}]}}\n",
      method, rtol, atol, threads, stats.steps, stats.rhs_evals, stats.error_test_fails,
      stats.nonlinear_iterations, stats.nonlinear_failures, stats.jv_rhs_evals,
      stats.linear_iterations, wall, median(times), copy_seconds(final_state.size()),
      SUNDIALS_VERSION, stats.blocks);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"learnflow_cvode_bench: CVODE on a learnflow model's RHS (bench/wp_bench.py)"};
  std::string config, method = "adams", state_out;
  std::vector<std::string> overrides;
  double rtol = 1e-6, atol = 1e-6;
  int threads = 1, repeats = 3, warmup = 0;
  app.add_option("config", config, "experiment TOML file")->required();
  app.add_option("--set", overrides, "override a config key: key.path=value");
  app.add_option("--method", method, "adams or bdf")->check(CLI::IsMember({"adams", "bdf"}));
  app.add_option("--rtol", rtol, "relative tolerance")->check(CLI::PositiveNumber);
  app.add_option("--atol", atol, "absolute tolerance")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "OpenMP threads (RHS and N_Vector)")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "timed integrations")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed integrations first")->check(CLI::NonNegativeNumber);
  app.add_option("--state-out", state_out, "write the final state here (float64)");
  CLI11_PARSE(app, argc, argv);
  try {
    return bench(config, overrides, method, rtol, atol, threads, repeats, warmup, state_out);
  } catch (const lf::InputError& e) {
    std::fprintf(stderr, "learnflow_cvode_bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "learnflow_cvode_bench: %s\n", e.what());
    return 1;
  }
}
