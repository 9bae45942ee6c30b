#include "sim/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <thread>

#include "integrators/registry.hpp"
#include "models/registry.hpp"
#include "outputs/h5file.hpp"
#include "sim/budget.hpp"
#include "sim/config.hpp"
#include "sim/core/diagnostics.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/interrupt.hpp"
#include "sim/mpi_session.hpp"
#include "sim/run.hpp"
#include "sim/sweep.hpp"
#include "sim/waves.hpp"

namespace lf {
namespace {

void print_error(const std::string& message) { eprint("learnflow: error: {}\n", message); }

int command_run(const std::string& config, const std::vector<std::string>& overrides,
                RunOptions options, bool quiet) {
  // From here a signal stops the run at its first step boundary after it (one during the set-up
  // is kept until then: the file is never left half created).
  install_interrupt_handlers();
  Experiment ex = load_experiment(config, overrides);
  Run run(std::move(ex), options);
  const RunReport report = run.execute();
  const SolverStats& st = report.result.stats;
  if (report.resumed_at && !quiet) {
    eprint("learnflow: resumed {} from its checkpoint at t = {}\n", report.output_path,
               *report.resumed_at);
  }
  // Stopped by a signal or the wall-time limit: the file is complete up to there and closed;
  // --resume continues from the checkpoint written at the stop.
  const Outcome stop = report.adjoint && report.result.outcome == Outcome::success
                           ? report.adjoint->outcome : report.result.outcome;
  if (stop == Outcome::interrupted || stop == Outcome::wall_limit) {
    const IntegrationResult& r = report.adjoint && report.result.outcome == Outcome::success
                                     ? *report.adjoint : report.result;
    print_error(fmt::format("{}{}; the {} sample(s) before it are kept in {}{}",
                            report.adjoint && report.result.outcome == Outcome::success
                                ? "the adjoint (backward) sweep stopped: " : "",
                            r.message, report.samples, report.output_path,
                            report.checkpoint.empty()
                                ? std::string()
                                : fmt::format("; continue with: learnflow run {} -o {} --resume",
                                              config, report.output_path)));
    return stop == Outcome::interrupted ? exit_interrupted_base + interrupt_signal() : exit_numerical;
  }
  if (report.result.outcome != Outcome::success) {
    print_error(fmt::format("numerical failure ({}): {}; the {} sample(s) before it are kept in {}",
                            outcome_name(report.result.outcome), report.result.message,
                            report.samples, report.output_path));
    return exit_numerical;
  }
  if (report.adjoint && report.adjoint->outcome != Outcome::success) {
    print_error(fmt::format("numerical failure in the adjoint (backward) sweep ({}): {}; the "
                            "forward trajectory is kept in {}",
                            outcome_name(report.adjoint->outcome), report.adjoint->message,
                            report.output_path));
    return exit_numerical;
  }
  if (report.diverged_phases > 0) {
    // Not an error (integrator.on_divergence = "stop" makes it one): the run is kept, flagged.
    eprint("learnflow: warning: {} phase(s) diverged (their residual grew); the first: "
           "{}. See /metrics/phase/diverged; integrator.on_divergence = \"stop\" ends such "
           "a run with exit status 3\n", report.diverged_phases, report.first_divergence);
  }
  if (!quiet && report.adjoint) {
    const SolverStats& back = report.adjoint->stats;
    eprint("learnflow: adjoint sweep: {} steps, {} rejected, {} RHS evaluations, "
           "{:.3f} s; gradients in /adjoint/grad\n", back.steps, back.rejected,
           back.rhs_evals, back.wall_seconds);
  }
  if (!quiet) {
    eprint("learnflow: wrote {} samples to {} ({} steps, {} rejected, {} RHS "
           "evaluations, {:.3f} s, {} thread(s))\n", report.samples, report.output_path,
           st.steps, st.rejected, st.rhs_evals, st.wall_seconds, report.threads);
  }
  return exit_ok;
}

struct SweepArgs {
  std::string file, dir, program;
  int jobs = 0;      // 0: the cores (one MPI rank: 1)
  int threads = 1;
  bool force = false, quiet = false, list = false;
  long point = -1;   // >= 0: run only this point, in this process
};

// Rank 0's part before any point runs: every point's experiment validated, the limits, and the
// directory created with its manifest, or found holding this very sweep (a restart).
void prepare_sweep(const Sweep& sweep, const SweepArgs& args) {
  namespace fs = std::filesystem;
  const fs::path manifest_path = fs::path(args.dir) / "sweep.manifest";
  if (!args.force && sweep.points.size() > sweep_max_points) {
    throw InputError(fmt::format("{}: {} points, above the limit of {} points: run it with --force",
                                 sweep.file, sweep.points.size(), sweep_max_points));
  }
  const SweepCheck check = validate_sweep(sweep);
  if (!args.force && check.bytes > sweep_max_bytes) {
    throw InputError(fmt::format("{}: the {} points' output files are estimated at {}, above the "
                                 "limit of {}: run it with --force", sweep.file,
                                 sweep.points.size(), format_bytes(check.bytes),
                                 format_bytes(sweep_max_bytes)));
  }
  if (args.list) {
    for (const SweepPoint& p : sweep.points) {
      std::string line = p.name;
      for (std::size_t k = 0; k < sweep.keys.size(); ++k) {
        line += fmt::format(" {}={}", sweep.keys[k], p.values[k].toml);
      }
      fmt::print("{}\n", line);
    }
    fmt::print("{} points, estimated output {}\n", sweep.points.size(), format_bytes(check.bytes));
    return;
  }
  const bool restart = fs::exists(manifest_path);
  if (!restart && fs::exists(args.dir) && !fs::is_empty(args.dir)) {
    throw DataFileError(args.dir, 0, fmt::format("{}: the sweep directory exists and holds no "
                                                 "sweep (no sweep.manifest): choose another -o", args.dir));
  }
  const std::string manifest = sweep_manifest(sweep, check);
  if (restart) {
    std::ifstream in(manifest_path, std::ios::binary);
    const std::string found((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (found != manifest) {
      // The first line that differs names the point (or the header: the sweep file, the base).
      std::istringstream a(found), b(manifest);
      std::string was, is;
      std::size_t line = 0;
      while (true) {
        ++line;
        const bool more_a = static_cast<bool>(std::getline(a, was));
        const bool more_b = static_cast<bool>(std::getline(b, is));
        if (!more_a || !more_b || was != is) break;
      }
      throw DataFileError(manifest_path.string(), static_cast<long>(line), fmt::format(
          "{}:{}: {} holds another sweep than {} now describes (it has: '{}'; now: '{}'): the "
          "sweep file or its base changed; finish it with the old files or choose "
          "another -o", manifest_path.string(), line, args.dir, sweep.file, was, is));
    }
    return;
  }
  fs::create_directories(args.dir);
  std::ofstream out(manifest_path, std::ios::binary);
  out << manifest;
  if (!out.flush()) {
    throw DataFileError(manifest_path.string(), 0, fmt::format("{}: cannot write", manifest_path.string()));
  }
}

int run_sweep(const Sweep& sweep, const SweepArgs& args, MpiSession& mpi);

// `learnflow sweep`: every point of the sweep file, each in a process of its own, `jobs` at a
// time, spread over the ranks under mpirun or srun; then the index (sim/sweep.hpp).
int command_sweep(const SweepArgs& args) {
  install_interrupt_handlers();
  const Sweep sweep = load_sweep(args.file);
  if (args.point >= 0) {
    // One point, in this process: what the sweep runs in each of its children.
    if (static_cast<std::size_t>(args.point) >= sweep.points.size()) {
      throw InputError(fmt::format("--point {}: the sweep has {} points (0 to {})", args.point,
                                   sweep.points.size(), sweep.points.size() - 1));
    }
    const auto i = static_cast<std::size_t>(args.point);
    RunOptions options{point_path(sweep, args.dir, i, ".h5"), args.threads, false, false};
    return command_run(sweep.base, sweep.points[i].overrides, options, args.quiet);
  }
  MpiSession mpi;
  int status = exit_ok;
  if (mpi.rank() == 0) {
    try {
      prepare_sweep(sweep, args);
    } catch (const InputError& e) {
      print_error(e.what());
      status = exit_bad_input;
    } catch (const std::filesystem::filesystem_error& e) {
      print_error(e.what());
      status = exit_bad_input;
    }
  }
  if (mpi.broadcast(status) != exit_ok) return exit_bad_input;
  if (args.list) return exit_ok;
  try {
    return run_sweep(sweep, args, mpi);
  } catch (const std::exception& e) {
    // Printed here, before the other ranks are stopped: MPI_Abort ends this process too.
    print_error(dynamic_cast<const InputError*>(&e) != nullptr
                    ? std::string(e.what()) : fmt::format("cannot write the output: {}", e.what()));
    mpi.abort(exit_bad_input);
    return exit_bad_input;
  }
}

// The sweep's points, run by this rank (all of them without MPI), then rank 0's index.
int run_sweep(const Sweep& sweep, const SweepArgs& args, MpiSession& mpi) {
  const std::size_t n = sweep.points.size();
  SweepRunOptions options{args.dir, args.program, args.jobs, args.threads, mpi.rank()};
  if (options.jobs == 0) {
    options.jobs = mpi.active() ? 1 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  std::size_t counter = 0;
  const std::function<std::optional<std::size_t>()> next = [&]() -> std::optional<std::size_t> {
    const std::size_t i = mpi.active() ? mpi.next_index() : counter++;
    if (i < n) return i;
    return std::nullopt;
  };
  if (mpi.rank() == 0 && !args.quiet) {
    eprint("learnflow: sweep of {} points into {}, {} at a time{}\n", n, args.dir, options.jobs,
           mpi.active() ? fmt::format(" on each of {} MPI ranks", mpi.size()) : std::string());
  }
  const std::size_t ran = run_sweep_points(sweep, options, next, [&] { mpi.progress(); });
  const int signal = mpi.max(interrupt_signal());
  mpi.barrier();
  if (mpi.rank() != 0) return signal != 0 ? exit_interrupted_base + signal : exit_ok;

  std::size_t done = 0;
  for (std::size_t i = 0; i < n; ++i) done += std::filesystem::exists(point_path(sweep, args.dir, i, ".done"));
  if (done < n) {
    print_error(fmt::format("the sweep stopped with {} of {} points done; run the same command "
                            "again to run the others", done, n));
    return signal != 0 ? exit_interrupted_base + signal : exit_numerical;
  }
  const std::size_t failed = write_sweep_index(sweep, args.dir);
  if (failed > 0) {
    eprint("learnflow: warning: {} of {} points failed (their status, outcome and message are "
           "in the index; their output in {}/point-NNNN.log)\n", failed, n, args.dir);
  }
  if (!args.quiet) {
    eprint("learnflow: sweep done: {} points ({} run now), index in {}/index.h5 and index.csv\n",
           n, ran, args.dir);
  }
  return exit_ok;
}

int command_validate(const std::string& config, const std::vector<std::string>& overrides) {
  const Experiment ex = load_experiment(config, overrides);
  fmt::print("{}: valid\n{}", config, validate_experiment(ex));
  return exit_ok;
}

// The value of column `name` of /metrics/phase in row r (NaN when absent).
double phase_value(const RunFileSummary& s, const char* name, std::size_t r) {
  const auto it = s.phases.find(name);
  return it != s.phases.end() && r < it->second.size() ? it->second[r]
                                                        : std::numeric_limits<double>::quiet_NaN();
}

// Per phase name: how many segments, how many converged (with their mean duration), diverged.
void print_phases(const RunFileSummary& s) {
  const std::size_t rows = s.phases.at("start").size();
  const std::size_t kinds = std::max<std::size_t>(1, s.phase_names.size());
  std::vector<std::size_t> count(kinds), converged(kinds), diverged(kinds);
  std::vector<double> duration(kinds), converged_duration(kinds);
  std::size_t first_diverged = rows;
  for (std::size_t r = 0; r < rows; ++r) {
    const double p = phase_value(s, "phase", r);
    const std::size_t k = std::isfinite(p) && p >= 0 && p < static_cast<double>(kinds)
                              ? static_cast<std::size_t>(p) : 0;
    ++count[k];
    duration[k] += phase_value(s, "duration", r);
    if (phase_value(s, "converged", r) != 0.0) {
      ++converged[k];
      converged_duration[k] += phase_value(s, "duration", r);
    }
    if (phase_value(s, "diverged", r) != 0.0) {
      ++diverged[k];
      first_diverged = std::min(first_diverged, r);
    }
  }
  fmt::print("phases ({} input segments; /metrics/phase):\n", rows);
  fmt::print("  {:<16} {:>9} {:>14} {:>10} {:>22} {:>9}\n", "phase", "segments", "mean duration",
             "converged", "mean time to converge", "diverged");
  for (std::size_t k = 0; k < kinds; ++k) {
    if (count[k] == 0) continue;
    fmt::print("  {:<16} {:>9} {:>14.6g} {:>10} {:>22} {:>9}\n",
               s.phase_names.empty() ? std::string("(none)") : s.phase_names[k], count[k],
               duration[k] / static_cast<double>(count[k]), converged[k],
               converged[k] > 0 ? fmt::format("{:.6g}", converged_duration[k] / static_cast<double>(converged[k]))
                                : std::string("-"),
               diverged[k]);
  }
  if (first_diverged < rows) {
    fmt::print("warning: {} phase(s) diverged (the residual ‖ds/dt‖ grew over the phase); the "
               "first is segment {} (t = {:.6g}): residual {:.3g} -> {:.3g}\n",
               std::accumulate(diverged.begin(), diverged.end(), std::size_t{0}), first_diverged,
               phase_value(s, "start", first_diverged), phase_value(s, "residual_start", first_diverged),
               phase_value(s, "residual_end", first_diverged));
  }
}

// The stored arrivals per segment, the neurons' half-times, and the front's speed per kind.
void print_waves(const RunFileSummary& s, std::size_t max_segments) {
  const std::size_t segments = s.waves.front().arrival.size();
  const auto start = [&](std::size_t k) { return segment_start(s, k); };
  fmt::print("wave arrival times (‖x(t) − x(t_s)‖ reaches half its change over the segment; x, h: "
             "forward wave, lambda: backward wave){}:\n", segments > max_segments
                 ? fmt::format(", first {} of {} measured segments", max_segments, segments) : "");
  fmt::print("  {:<7} {:<16} {:>7} {:>12} {:>16} {:>12} {:>30}\n", "kind", "population", "segment",
             "start", "arrival", "delay", "neuron half-time delay: median [IQR]");
  for (const auto& w : s.waves) {
    for (std::size_t k = 0; k < std::min(segments, max_segments); ++k) {
      const double t0 = start(k), a = w.arrival[k];
      std::string neurons = "-";
      if (w.quartiles.size() >= 3 * (k + 1) && std::isfinite(w.quartiles[3 * k])) {
        neurons = fmt::format("{:.4g} [{:.4g}, {:.4g}]", w.quartiles[3 * k] - t0,
                              w.quartiles[3 * k + 1] - t0, w.quartiles[3 * k + 2] - t0);
      }
      if (std::isfinite(a)) {
        fmt::print("  {:<7} {:<16} {:>7} {:>12.6g} {:>16.10g} {:>12.6g} {:>30}\n", w.kind,
                   w.population, k, t0, a, a - t0, neurons);
      } else {
        fmt::print("  {:<7} {:<16} {:>7} {:>12.6g} {:>16} {:>12} {:>30}\n", w.kind, w.population, k,
                   t0, "-", "-", neurons);
      }
    }
  }
  // The front: delay against depth (population index), fitted per kind and segment.
  fmt::print("wave front speed (least squares of delay against layer; layers per unit time, "
             "negative: towards the input):\n");
  for (const std::string kind : {"x", "h", "lambda"}) {
    const std::vector<FrontFit> fits = stored_front_speeds(s, kind);
    for (std::size_t k = 0; k < std::min(segments, max_segments); ++k) {
      const FrontFit& fit = fits[k];
      if (fit.points < 2) continue;
      fmt::print("  {:<7} segment {:>4}: {:>10.4g} layers per unit time over {} populations (r² {:.4f})\n",
                 kind, k, fit.speed, fit.points, fit.r2);
    }
  }
}

// `learnflow watch`: the progress and latest metrics of a run file, every `interval` seconds,
// until the run has ended (its /solver is written) — or once, with --once.
int command_watch(const std::string& file, double interval, bool once) {
  for (;;) {
    RunProgress p;
    try {
      p = read_run_progress(file);
    } catch (const InputError&) {
      if (once) throw;
      // The run may be between flushes or reopening its file at the end: try again.
      std::this_thread::sleep_for(std::chrono::duration<double>(interval));
      continue;
    }
    const double span = p.t_end - p.t0;
    std::string line = fmt::format("t = {:.6g} / {:.6g}", p.t, p.t_end);
    if (span > 0) line += fmt::format(" ({:.1f} %)", 100.0 * (p.t - p.t0) / span);
    line += fmt::format(", {} samples", p.samples);
    if (p.phases > 0) {
      line += fmt::format(", {} phases ({} converged, {} diverged)", p.phases, p.converged, p.diverged);
    }
    for (const auto& [name, value] : p.epoch) {
      if (name == "epoch" || name.find("accuracy") != std::string::npos || name.find("loss") != std::string::npos) {
        line += fmt::format(", {} {:.6g}", name, value);
      }
    }
    for (const auto& [name, value] : p.metrics) line += fmt::format(", {} {:.6g}", name, value);
    if (p.finished) line += fmt::format(" [ended: {}]", p.outcome);
    fmt::print("{}\n", line);
    std::fflush(stdout);
    if (p.finished || once) return exit_ok;
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
  }
}

int command_info(const std::string& file, std::size_t max_segments, bool show_config) {
  const RunFileSummary s = read_run_summary(file);
  fmt::print("{}\n", file);
  for (const auto& [k, v] : s.root_attributes) {
    if (k != "config") fmt::print("  {:<18} {}\n", k, v);
  }
  if (s.solver_attributes.empty()) {
    fmt::print("solver: no statistics (the run did not finish)\n");
  } else {
    fmt::print("solver:\n");
    for (const auto& [k, v] : s.solver_attributes) fmt::print("  {:<18} {}\n", k, v);
  }
  fmt::print("samples: {}", s.time.size());
  if (!s.time.empty()) fmt::print(" (t = {} .. {})", s.time.front(), s.time.back());
  fmt::print("\ndatasets:\n");
  for (const DatasetInfo& d : s.datasets) {
    std::string shape;
    for (const auto n : d.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(n);
    std::string attrs;
    if (const auto it = d.attributes.find("record"); it != d.attributes.end()) {
      attrs = "  record=" + it->second;
    }
    fmt::print("  {:<32} [{}]{}\n", d.path, shape, attrs);
    for (const char* rate : {"fitted_rate", "predicted_rate", "diverged"}) {
      if (const auto it = d.attributes.find(rate); it != d.attributes.end()) {
        fmt::print("      {:<15} {} (per target phase)\n", rate, it->second);
      }
    }
  }
  if (!s.data_attributes.empty()) {
    const auto attr = [&](const char* key) {
      const auto it = s.data_attributes.find(key);
      return it == s.data_attributes.end() ? std::string("-") : it->second;
    };
    fmt::print("data: {}: {} training examples of {} features (crc32 {}), {} held out (crc32 {})\n",
               attr("name"), attr("train_examples"), attr("train_features"), attr("train_crc32"),
               attr("test_examples"), attr("test_crc32"));
  }
  if (!s.evaluations.empty()) {
    // The learning curve: one row per evaluation, the initial network first.
    fmt::print("learning curve ({} evaluations):\n", s.evaluations.front().size());
    fmt::print("  {:>8} {:>12}", "epoch", "time");
    for (const auto& name : s.evaluation_names) {
      if (name != "epoch" && name != "time") fmt::print(" {:>15}", name);
    }
    fmt::print("\n  {:>8} {:>12}", 0, "-");
    for (const auto& name : s.evaluation_names) {
      if (name == "epoch" || name == "time") continue;
      const auto it = s.evaluation_attributes.find("initial_" + name);
      if (it == s.evaluation_attributes.end()) {
        fmt::print(" {:>15}", "-");
      } else {
        fmt::print(" {:>15.6g}", std::stod(it->second));
      }
    }
    fmt::print("\n");
    const auto column = [&](const char* name) -> const std::vector<double>* {
      for (std::size_t i = 0; i < s.evaluation_names.size(); ++i) {
        if (s.evaluation_names[i] == name) return &s.evaluations[i];
      }
      return nullptr;
    };
    for (std::size_t r = 0; r < s.evaluations.front().size(); ++r) {
      const auto* epoch = column("epoch");
      const auto* time = column("time");
      fmt::print("  {:>8.4g} {:>12.6g}", epoch ? (*epoch)[r] : 0.0, time ? (*time)[r] : 0.0);
      for (std::size_t i = 0; i < s.evaluation_names.size(); ++i) {
        if (s.evaluation_names[i] == "epoch" || s.evaluation_names[i] == "time") continue;
        fmt::print(" {:>15.6g}", s.evaluations[i][r]);
      }
      fmt::print("\n");
    }
  }
  if (!s.phases.empty() && !s.phases.at("start").empty()) print_phases(s);
  if (!s.waves.empty()) print_waves(s, max_segments);
  if (show_config) {
    const auto it = s.root_attributes.find("config");
    fmt::print("config:\n{}\n", it != s.root_attributes.end() ? it->second : "(none)");
  }
  return exit_ok;
}

}  // namespace

int run_cli(int argc, char** argv) {
  skip_hdf5_cleanup_at_exit();
  CLI::App app{"learnflow: learning in neural networks as continuous-time dynamics"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(LEARNFLOW_VERSION));

  std::string config, output, info_file;
  std::vector<std::string> overrides;
  int threads = 0;
  bool quiet = false, progress = false, show_config = false;
  std::size_t max_segments = 10;

  CLI::App* run = app.add_subcommand("run", "integrate an experiment and stream it to HDF5");
  run->add_option("config", config, "experiment file (TOML)")->required();
  run->add_option("-o,--output", output, "output file (overrides output.file)");
  run->add_option("--set", overrides, "override a config key: key.path=value (repeatable)")
      ->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  // At most 1024: libgomp segfaulted creating 65536 threads (4096 still ran).
  run->add_option("--threads", threads,
                  "OpenMP threads, 1 to 1024 (default: OMP_NUM_THREADS or all cores)")
      ->check(CLI::Range(1, 1024));
  run->add_flag("--quiet", quiet, "print nothing on success");
  run->add_flag("--progress", progress, "draw the progress line even when stderr is not a terminal");
  bool force = false, resume = false;
  run->add_flag("--force", force, "replace the output file if it is an earlier run file");
  run->add_flag("--resume", resume, "continue the interrupted run in the output file from its "
                                    "checkpoint (OUT.h5.checkpoint)");

  CLI::App* validate = app.add_subcommand("validate", "check an experiment file without running it");
  validate->add_option("config", config, "experiment file (TOML)")->required();
  validate->add_option("--set", overrides, "override a config key: key.path=value (repeatable)")
      ->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  CLI::App* info = app.add_subcommand("info", "summarise a run file: attributes, datasets, waves");
  info->add_option("file", info_file, "run file (HDF5)")->required();
  info->add_option("--segments", max_segments, "show arrival times of this many segments");
  info->add_flag("--config", show_config, "print the config text stored in the file");

  std::string watch_file;
  double watch_interval = 2.0;
  bool watch_once = false;
  CLI::App* watch = app.add_subcommand("watch", "follow a run file while it is written: progress "
                                                "and the latest metrics, until the run ends");
  watch->add_option("file", watch_file, "run file (HDF5)")->required();
  watch->add_option("--interval", watch_interval, "seconds between two looks (default 2)")
      ->check(CLI::Range(0.05, 3600.0));
  watch->add_flag("--once", watch_once, "print one line and exit");

  SweepArgs sweep_args;
  CLI::App* sweep = app.add_subcommand("sweep", "run every point of a parameter sweep (README: "
                                                "Sweeps); under mpirun or srun, over the ranks");
  sweep->add_option("sweep_file", sweep_args.file, "sweep file (TOML): base = ..., [sweep]")->required();
  sweep->add_option("-o,--output", sweep_args.dir, "directory of the run files and the index")->required();
  sweep->add_option("--jobs", sweep_args.jobs, "points run at a time (default: the cores; under "
                                               "MPI: 1 per rank)")->check(CLI::Range(1, 4096));
  sweep->add_option("--threads", sweep_args.threads, "OpenMP threads of each point (default 1)")
      ->check(CLI::Range(1, 1024));
  sweep->add_flag("--force", sweep_args.force, "run a sweep above the limit of points or bytes");
  sweep->add_flag("--quiet", sweep_args.quiet, "print nothing but errors and warnings");
  sweep->add_flag("--list", sweep_args.list, "validate every point and list them with their "
                                             "values; run nothing, write nothing");
  sweep->add_option("--point", sweep_args.point, "run only point K (0-based), in this process, "
                                                 "into DIR/point-NNNN.h5 (what the sweep runs for each point)")
      ->check(CLI::NonNegativeNumber);

  CLI::App* models = app.add_subcommand("models", "list the models");
  CLI::App* integrators = app.add_subcommand("integrators", "list the steppers");

  // CLI11 takes an unknown subcommand for a stray argument and says only "A subcommand is
  // required": name the word, the closest subcommand and the choices instead.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string word = argv[1];
    std::string names, guess;
    std::size_t best = 3;  // a plausible typo: at most 2 edits
    bool known = false;
    for (const CLI::App* sub : {run, validate, info, watch, sweep, models, integrators}) {
      const std::string& name = sub->get_name();
      known = known || name == word;
      names += (names.empty() ? "" : ", ") + name;
      if (const std::size_t d = edit_distance(word, name); d < best) {
        best = d;
        guess = fmt::format(" (did you mean '{}'?)", name);
      }
    }
    if (!known) {
      print_error(fmt::format("unknown subcommand '{}'{} (choose one of: {})", word, guess, names));
      return exit_bad_input;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return exit_bad_input;
  }

  try {
    if (*run) {
      const bool terminal = isatty(STDERR_FILENO) != 0;
      if (force && resume) {
        print_error("--force and --resume exclude each other: --force starts the run afresh, "
                    "--resume continues it");
        return exit_bad_input;
      }
      RunOptions options{output, threads, !quiet && (progress || terminal), !quiet};
      options.force = force;
      options.resume = resume;
      return command_run(config, overrides, options, quiet);
    }
    if (*validate) return command_validate(config, overrides);
    if (*sweep) {
      std::error_code error;
      sweep_args.program = std::filesystem::read_symlink("/proc/self/exe", error).string();
      if (error) sweep_args.program = argv[0];
      return command_sweep(sweep_args);
    }
    if (*info) return command_info(info_file, max_segments, show_config);
    if (*watch) return command_watch(watch_file, watch_interval, watch_once);
    if (*models) {
      for (const ModelInfo& m : model_infos()) fmt::print("{:<10} {}\n", m.name, m.summary);
      return exit_ok;
    }
    if (*integrators) {
      for (const StepperInfo& s : stepper_infos()) {
        fmt::print("{:<8} order {:<2} {:<9} {}\n", s.name, s.order == 0 ? std::string("var")
                                                                         : std::to_string(s.order),
                   s.adaptive ? "adaptive" : "fixed", s.summary);
      }
      return exit_ok;
    }
  } catch (const InputError& e) {
    print_error(e.what());
    return exit_bad_input;
  } catch (const std::exception& e) {
    // An HDF5 or system failure while writing (a full disk, a vanished directory): the output
    // cannot be written, which the CLI reports like an unwritable output path.
    print_error(fmt::format("cannot write the output: {}", e.what()));
    return exit_bad_input;
  }
  return exit_bad_input;
}

}  // namespace lf
