// learnflow_bench: runs one experiment in-process, several times, and prints what bench/run_bench.py
// needs as one JSON object on stdout:
//   - the solver statistics (steps, rejected, RHS evaluations; identical in every repeat),
//   - the wall time of each repeat's integration (SolverStats::wall_seconds, i.e. Run::execute()
//     without building the network, opening the file or closing it), their median, and the median
//     divided by the number of RHS evaluations, and the process CPU time of each execute()
//     (CPU / (wall x threads) well below 1 means other processes took the CPUs),
//   - the "floor": the median time of the bare matrix-vector products of one RHS evaluation
//     (y = W x for every projection of the same network, Eigen), on as many threads as the run
//     (each thread its share of every product's rows, one parallel region per RHS, as the
//     model's RHS), against which the time per RHS evaluation is judged.
// The final state is not printed: it is the last row of /state/x/<population> in the output file.
//
//   learnflow_bench CONFIG.toml [--set key=value]... [--repeats N] [--warmup N] [--threads N]
//                   [-o OUT.h5] [--floor-batches N]
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "sim/config.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/network.hpp"
#include "sim/run.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of the whole process (all threads), in seconds. Compared with the wall time it tells
// whether a run was descheduled by other processes on the machine.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + 1e-6 * static_cast<double>(tv.tv_usec);
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_array(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += fmt::format("{}{:.9g}", i ? ", " : "", v[i]);
  return out + "]";
}

struct Floor {
  double seconds_per_rhs = 0.0;     // median over batches of (batch time / batch size)
  long batch_size = 0;              // RHS-worth of products per timed batch (>= ~2 ms)
  long batches = 0;
  double single_rhs_seconds = 0.0;  // median over the same number of one-RHS batches
  long long multiply_adds = 0;      // per RHS: Σ entries of the weight matrices
};

// The bare matrix-vector products of one RHS of the leaky model: y_k = W_k x_from(k) for every
// projection k, with the same matrices (dense or CSR) the model multiplies. Batches of products
// are timed so that one batch lasts at least ~2 ms: like a run's time per RHS (a mean over
// milliseconds), a batch then includes its share of what the machine does meanwhile (timer
// interrupts, a VM's exits), and the median over batches still drops the disturbed ones. Timing
// each RHS alone and taking the median would pick the calls that nothing interrupted: a floor
// ~5% lower than any run can reach on this 2-CPU VM (P1 L = 8: 62 µs against 66 µs), which is
// reported beside it for reference.
Floor measure_floor(const lf::Network& net, long batches, int threads) {
  std::vector<Eigen::VectorXd> activity;  // one vector per population, any finite values
  for (const lf::Population& p : net.populations) {
    activity.push_back(Eigen::VectorXd::LinSpaced(p.size, -0.9, 0.9));
  }
  std::vector<Eigen::VectorXd> product;
  Floor floor;
  for (const lf::Projection& proj : net.projections) {
    product.emplace_back(proj.rows());
    floor.multiply_adds += proj.sparse ? proj.csr.nonZeros() : proj.dense.size();
  }
  double sink = 0.0;
  // Rows [begin, end) of every product: thread i of `parts` takes the i-th contiguous share.
  auto products = [&](int part, int parts) {
    for (std::size_t k = 0; k < net.projections.size(); ++k) {
      const lf::Projection& proj = net.projections[k];
      const Eigen::Index rows = proj.rows();
      const Eigen::Index begin = rows * part / parts, end = rows * (part + 1) / parts;
      if (end <= begin) continue;
      if (proj.sparse) {
        product[k].segment(begin, end - begin).noalias() =
            proj.csr.middleRows(begin, end - begin) * activity[proj.from];
      } else {
        product[k].segment(begin, end - begin).noalias() =
            proj.dense.middleRows(begin, end - begin) * activity[proj.from];
      }
    }
  };
  auto one_rhs = [&] {
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
      products(omp_get_thread_num(), omp_get_num_threads());
    } else {
      products(0, 1);
    }
    for (const Eigen::VectorXd& y : product) sink += y.size() > 0 ? y[0] : 0.0;
  };

  // Calibrate the batch size (and warm the caches) on at least 10 ms of products.
  long calls = 0;
  const auto start = Clock::now();
  do {
    one_rhs();
    ++calls;
  } while (seconds_since(start) < 0.01);
  const double estimate = seconds_since(start) / static_cast<double>(calls);
  floor.batch_size = std::max(1L, static_cast<long>(std::ceil(2e-3 / estimate)));
  floor.batches = batches;

  auto median_per_rhs = [&](long batch_size) {
    std::vector<double> per_rhs;
    per_rhs.reserve(static_cast<std::size_t>(batches));
    for (long b = 0; b < batches; ++b) {
      const auto t0 = Clock::now();
      for (long i = 0; i < batch_size; ++i) one_rhs();
      per_rhs.push_back(seconds_since(t0) / static_cast<double>(batch_size));
    }
    return median(per_rhs);
  };
  floor.single_rhs_seconds = median_per_rhs(1);
  floor.seconds_per_rhs = median_per_rhs(floor.batch_size);
  // Keep the products observable so that the compiler cannot drop them.
  if (!std::isfinite(sink)) std::fputs("", stderr);
  return floor;
}

int bench(const std::string& config, const std::vector<std::string>& overrides,
          const std::string& output, int threads, int repeats, int warmup, long floor_batches) {
  const lf::Experiment ex = lf::load_experiment(config, overrides);

  std::vector<double> wall, execute_wall, close_wall, execute_cpu;
  lf::SolverStats stats;
  lf::RunReport report;
  for (int r = 0; r < warmup + repeats; ++r) {
    const auto t_close = [&] {
      lf::RunOptions options{output, threads, false};
      options.force = true;  // every repetition replaces the bench's own scratch file
      lf::Run run(ex, options);
      const double cpu0 = process_cpu_seconds();
      const auto t0 = Clock::now();
      report = run.execute();
      const double execute_seconds = seconds_since(t0);
      if (r >= warmup) {
        execute_wall.push_back(execute_seconds);
        execute_cpu.push_back(process_cpu_seconds() - cpu0);
      }
      return Clock::now();
    }();  // the Run is destroyed here: the output file is flushed and closed
    if (report.result.outcome != lf::Outcome::success) {
      fmt::print(stderr, "learnflow_bench: numerical failure ({}): {}\n",
                 lf::outcome_name(report.result.outcome), report.result.message);
      return lf::exit_numerical;
    }
    if (r < warmup) continue;
    close_wall.push_back(seconds_since(t_close));
    wall.push_back(report.result.stats.wall_seconds);
    stats = report.result.stats;
  }

  const double median_wall = median(wall);
  const double per_rhs = median_wall / static_cast<double>(std::max(1L, stats.rhs_evals));
  std::string floor_json = "null";
  if (floor_batches > 0) {
    const lf::Network net = lf::build_network(ex.network);
    const Floor floor = measure_floor(net, floor_batches, report.threads);
    floor_json = fmt::format(
        "{{\"seconds_per_rhs\": {:.9g}, \"threads\": {}, \"batch_size\": {}, \"batches\": {}, "
        "\"single_rhs_seconds\": {:.9g}, \"multiply_adds\": {}, \"ratio\": {:.6g}}}",
        floor.seconds_per_rhs, report.threads, floor.batch_size, floor.batches, floor.single_rhs_seconds,
        floor.multiply_adds,
        per_rhs / floor.seconds_per_rhs);
  }
  fmt::print(
      "{{\"config\": {}, \"stepper\": {}, \"rtol\": {:.3g}, \"atol\": {:.3g}, \"threads\": {}, "
      "\"repeats\": {}, \"warmup\": {}, \"steps\": {}, \"rejected\": {}, \"rhs_evals\": {}, "
      "\"samples\": {}, \"wall_seconds\": {}, \"median_seconds\": {:.9g}, "
      "\"seconds_per_rhs\": {:.9g}, \"execute_seconds\": {}, \"execute_cpu_seconds\": {}, "
      "\"close_seconds\": {}, "
      "\"floor\": {}, \"output\": {}}}\n",
      json_string(config), json_string(ex.integrator.stepper), ex.integrator.rtol,
      ex.integrator.atol, report.threads, repeats, warmup, stats.steps, stats.rejected,
      stats.rhs_evals, report.samples, json_array(wall), median_wall, per_rhs,
      json_array(execute_wall), json_array(execute_cpu), json_array(close_wall), floor_json,
      json_string(report.output_path));
  return lf::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"learnflow benchmark driver: in-process timing of an experiment, as JSON"};
  std::string config, output;
  std::vector<std::string> overrides;
  int threads = 0, repeats = 5, warmup = 1;
  long floor_batches = 301;
  app.add_option("config", config, "experiment TOML file")->required();
  app.add_option("--set", overrides, "override a config key: key.path=value")
      ->allow_extra_args(false);
  app.add_option("-o,--output", output, "output HDF5 file (rewritten by every repeat)");
  app.add_option("--threads", threads, "OpenMP threads (0: the OpenMP default)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeats", repeats, "timed runs")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed runs before them")->check(CLI::NonNegativeNumber);
  app.add_option("--floor-batches", floor_batches,
                 "timed batches of the bare matrix-vector floor (0: skip it)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    return bench(config, overrides, output, threads, repeats, warmup, floor_batches);
  } catch (const lf::InputError& e) {
    fmt::print(stderr, "learnflow_bench: error: {}\n", e.what());
    return lf::exit_bad_input;
  }
}
