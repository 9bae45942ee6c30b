#include "sim/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "integrators/registry.hpp"
#include "models/registry.hpp"
#include "outputs/h5file.hpp"
#include "sim/config.hpp"
#include "sim/core/errors.hpp"
#include "sim/run.hpp"
#include "sim/waves.hpp"

namespace lf {
namespace {

void print_error(const std::string& message) { fmt::print(stderr, "learnflow: error: {}\n", message); }

int command_run(const std::string& config, const std::vector<std::string>& overrides,
                RunOptions options, bool quiet) {
  Experiment ex = load_experiment(config, overrides);
  Run run(std::move(ex), options);
  const RunReport report = run.execute();
  const SolverStats& st = report.result.stats;
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
  if (!quiet && report.adjoint) {
    const SolverStats& back = report.adjoint->stats;
    fmt::print(stderr, "learnflow: adjoint sweep: {} steps, {} rejected, {} RHS evaluations, "
               "{:.3f} s; gradients in /adjoint/grad\n", back.steps, back.rejected,
               back.rhs_evals, back.wall_seconds);
  }
  if (!quiet) {
    fmt::print(stderr, "learnflow: wrote {} samples to {} ({} steps, {} rejected, {} RHS "
               "evaluations, {:.3f} s, {} thread(s))\n", report.samples, report.output_path,
               st.steps, st.rejected, st.rhs_evals, st.wall_seconds, report.threads);
  }
  return exit_ok;
}

int command_validate(const std::string& config, const std::vector<std::string>& overrides) {
  const Experiment ex = load_experiment(config, overrides);
  fmt::print("{}: valid\n{}", config, validate_experiment(ex));
  return exit_ok;
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
    for (const char* rate : {"fitted_rate", "predicted_rate"}) {
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
  if (!s.activity.empty() && s.boundaries.size() >= 2 && s.data_attributes.empty()) {
    const std::size_t segments = s.boundaries.size() - 1;
    fmt::print("wave arrival times (mean activity reaches half its change; x: forward wave, "
               "lambda: backward wave){}:\n", segments > max_segments
                   ? fmt::format(", first {} of {} segments", max_segments, segments) : "");
    fmt::print("  {:<7} {:<16} {:>7} {:>12} {:>18} {:>12}\n", "kind", "population", "segment",
               "start", "arrival", "delay");
    for (const auto& act : s.activity) {
      for (std::size_t k = 0; k < std::min(segments, max_segments); ++k) {
        const auto arrival = arrival_time(act.time, act.mean, s.boundaries[k], s.boundaries[k + 1]);
        if (arrival) {
          fmt::print("  {:<7} {:<16} {:>7} {:>12.6g} {:>18.12g} {:>12.6g}\n", act.kind,
                     act.population, k, s.boundaries[k], *arrival, *arrival - s.boundaries[k]);
        } else {
          fmt::print("  {:<7} {:<16} {:>7} {:>12.6g} {:>18} {:>12}\n", act.kind, act.population, k,
                     s.boundaries[k], "-", "-");
        }
      }
    }
  }
  if (show_config) {
    const auto it = s.root_attributes.find("config");
    fmt::print("config:\n{}\n", it != s.root_attributes.end() ? it->second : "(none)");
  }
  return exit_ok;
}

}  // namespace

int run_cli(int argc, char** argv) {
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

  CLI::App* validate = app.add_subcommand("validate", "check an experiment file without running it");
  validate->add_option("config", config, "experiment file (TOML)")->required();
  validate->add_option("--set", overrides, "override a config key: key.path=value (repeatable)")
      ->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  CLI::App* info = app.add_subcommand("info", "summarise a run file: attributes, datasets, waves");
  info->add_option("file", info_file, "run file (HDF5)")->required();
  info->add_option("--segments", max_segments, "show arrival times of this many segments");
  info->add_flag("--config", show_config, "print the config text stored in the file");

  CLI::App* models = app.add_subcommand("models", "list the models");
  CLI::App* integrators = app.add_subcommand("integrators", "list the steppers");

  // CLI11 takes an unknown subcommand for a stray argument and says only "A subcommand is
  // required": name the word, the closest subcommand and the choices instead.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string word = argv[1];
    std::string names, guess;
    std::size_t best = 3;  // a plausible typo: at most 2 edits
    bool known = false;
    for (const CLI::App* sub : {run, validate, info, models, integrators}) {
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
      return command_run(config, overrides,
                         {output, threads, !quiet && (progress || terminal), !quiet}, quiet);
    }
    if (*validate) return command_validate(config, overrides);
    if (*info) return command_info(info_file, max_segments, show_config);
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
