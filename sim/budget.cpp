#include "sim/budget.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <utility>
#include <variant>
#include <vector>

#include "sim/core/errors.hpp"

namespace lf {
namespace {

constexpr double bytes_per_value = 8.0;  // every value of the state, the lists and the file is a double

// The key that sets the populations' sizes: the layered shorthand or the population tables.
std::string population_key(const Experiment& ex) {
  for (const ProjectionSpec& p : ex.network.projections) {
    if (p.key == "network.layers") return "network.layers";
  }
  return "network.population";
}

// The sizes of the network as configured: its parameters (dense weights, edges, biases), the
// largest projection's key, and its non-input neurons.
struct NetworkSize {
  double weights = 0;  // dense entries
  double edges = 0;    // sparse entries
  double biases = 0;
  double neurons = 0;  // non-input neurons of one example
  std::string largest_projection_key;
};

NetworkSize network_size(const Experiment& ex) {
  NetworkSize n;
  auto size_of = [&](const std::string& name) {
    for (const PopulationSpec& p : ex.network.populations) {
      if (p.name == name) return static_cast<double>(p.size);
    }
    return 0.0;
  };
  for (const PopulationSpec& p : ex.network.populations) {
    n.biases += static_cast<double>(p.size);
    if (p.role != Role::input) n.neurons += static_cast<double>(p.size);
  }
  double largest = -1;
  for (const ProjectionSpec& p : ex.network.projections) {
    const double entries = p.sparse ? static_cast<double>(p.edges.size()) : size_of(p.to) * size_of(p.from);
    (p.sparse ? n.edges : n.weights) += entries;
    if (entries > largest) {
      largest = entries;
      n.largest_projection_key = p.key;
    }
  }
  if (n.largest_projection_key.empty()) n.largest_projection_key = population_key(ex);
  return n;
}

// Bytes of the network's parameters as learnflow holds them: dense doubles, CSR values with
// their column indices (12 bytes an entry), biases.
double network_bytes(const NetworkSize& n) {
  return bytes_per_value * (n.weights + n.biases) + 12.0 * n.edges;
}

// State-sized vectors alive during a run: the stepper's stages and error estimate, its wrapper's
// copies (dopri5: x, dx/dt, the previous and the trial step's), the driver's (initial step,
// interpolation, the convergence search), the run's own state, the model's scratch and the
// observer's derivative. Measured as the peak resident memory of a run of 10^6 neurons (leaky,
// state 7.6 MiB, Release build): dopri5 177 MiB, rk4 124, rkf78 208, bs 193 (the process
// itself ~10 MiB); rkck54 and euler by their stage counts.
double state_copies(const std::string& stepper) {
  if (stepper == "dopri5") return 23;
  if (stepper == "rkck54") return 19;
  if (stepper == "rkf78") return 27;
  if (stepper == "bs") return 25;
  if (stepper == "rk4") return 15;
  return 11;  // euler, and any stepper added without an entry here
}

// What a share of the memory is, the key that controls it, and its size.
struct Share {
  double bytes;
  std::string key;
  std::string what;
};

const Share& largest(const std::vector<Share>& shares) {
  return *std::max_element(shares.begin(), shares.end(),
                           [](const Share& a, const Share& b) { return a.bytes < b.bytes; });
}

double total(const std::vector<Share>& shares) {
  double sum = 0;
  for (const Share& s : shares) sum += s.bytes;
  return sum;
}

bool training(const Experiment& ex) { return ex.input.kind == InputKind::dataset; }

// The keys of the schedule: [input] for sequences, [train] for training runs.
std::string schedule_key(const Experiment& ex, std::string_view key) {
  return fmt::format("{}.{}", training(ex) ? "train" : "input", key);
}

std::string shorten_hint(const Experiment& ex) {
  return training(ex) ? "train.epochs" : "integrator.t_end";
}

std::string located(const std::string& where, const std::string& key, const std::string& message) {
  return where.empty() ? fmt::format("{}: {}", key, message)
                       : fmt::format("{}: {}: {}", where, key, message);
}

}  // namespace

std::string format_bytes(double bytes) {
  if (!std::isfinite(bytes)) return "unbounded";
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::size_t u = 0;
  while (bytes >= 1024.0 && u + 1 < std::size(units)) {
    bytes /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f} bytes", bytes);
  return fmt::format("{:.3g} {}", bytes, units[u]);
}

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(pages) * static_cast<double>(page_size);
}

ScheduleSize schedule_size(const Experiment& ex) {
  ScheduleSize size;
  const InputSpec& in = ex.input;
  const double span = ex.integrator.t_end - ex.integrator.t0;
  // sample_times (sim/run.cpp): the multiples k·dt within [t0, t_end], up to a slack of 1e-9 dt.
  const double dt = ex.output.sample_dt, slack = 1e-9 * dt;
  size.samples = std::max(1.0, std::floor((ex.integrator.t_end + slack) / dt) -
                                   std::ceil((ex.integrator.t0 - slack) / dt) + 1.0);
  const bool itemised = in.kind == InputKind::sequence || in.kind == InputKind::dataset;
  double presentations = 0;
  if (itemised) {
    presentations = std::ceil(span / in.present);
    if (in.kind == InputKind::sequence && !in.repeat) {
      presentations = std::min(presentations, static_cast<double>(in.sequence.size()));
    }
  }
  double period = itemised ? in.present : 0.0;
  if (!itemised) {
    for (const double d : in.phase_durations) period += d;
  }
  const double phase_segments =
      in.phase_durations.empty() ? 0.0
                                 : std::ceil(span / period) * static_cast<double>(in.phase_durations.size());
  size.segments = presentations + phase_segments + 2.0;  // + a step and a target's start
  if (in.kind == InputKind::dataset && in.data) {
    const double n = static_cast<double>(in.data->train.size());
    const double b = static_cast<double>(in.train.batch);
    size.slots = static_cast<double>(in.train.epochs) * std::ceil(n / b) * b;
  }
  return size;
}

void check_schedule(const Experiment& ex, const KeyLocator& where, double memory) {
  const ScheduleSize size = schedule_size(ex);
  const InputSpec& in = ex.input;
  const double t0 = ex.integrator.t0, t_end = ex.integrator.t_end;
  auto fail = [&](const std::string& key, const std::string& message) {
    const std::string place = where(key);
    throw ConfigError(key, place, located(place, key, message));
  };
  if (training(ex) && size.slots > max_list_entries) {
    fail("train.epochs",
         fmt::format("{} epochs of {} examples make {:.3g} minibatch slots, more than {:.0e} (the "
                     "order of every epoch is drawn before the run): fewer epochs",
                     in.train.epochs, in.data->train.size(), size.slots, max_list_entries));
  }
  if (size.samples > max_list_entries) {
    fail("output.sample_dt",
         fmt::format("{:.6g} over [{:.6g}, {:.6g}] gives {:.3g} sample times, more than {:.0e} (the "
                     "sample times are listed before the run): raise output.sample_dt or shorten "
                     "the run ({})", ex.output.sample_dt, t0, t_end, size.samples, max_list_entries,
                     shorten_hint(ex)));
  }
  if (size.segments > max_list_entries) {
    // The phases split every presentation; without presentations they are the schedule.
    const bool by_phases = !in.phase_durations.empty() &&
                           ((in.kind != InputKind::sequence && in.kind != InputKind::dataset) ||
                            in.phase_durations.size() > 1);
    const std::string key = training(ex) ? (by_phases ? "train.phases" : "train.epochs")
                                         : (by_phases ? "input.phases" : "input.present");
    fail(key, fmt::format("the input switches {:.3g} times over [{:.6g}, {:.6g}], more than {:.0e} "
                          "(the segment boundaries are listed before the run): longer {} or a "
                          "shorter run ({})", size.segments, t0, t_end, max_list_entries,
                          by_phases ? "phases" : "presentations", shorten_hint(ex)));
  }

  // A lower bound of the memory the run will hold: the network's parameters once, the state's
  // per-example values three times (the state and two stepper stages at least), the lists.
  const NetworkSize net = network_size(ex);
  const double batch = training(ex) ? static_cast<double>(in.train.batch) : 1.0;
  const std::vector<Share> shares = {
      {network_bytes(net), net.largest_projection_key,
       fmt::format("the network's {:.3g} parameters", net.weights + net.edges + net.biases)},
      {3.0 * bytes_per_value * net.neurons * batch, batch > 1 ? "train.batch" : population_key(ex),
       fmt::format("{:.3g} neurons × {:.3g} examples, 3 copies at least", net.neurons, batch)},
      {bytes_per_value * size.samples, "output.sample_dt", fmt::format("{:.3g} sample times", size.samples)},
      {4.0 * bytes_per_value * size.segments, schedule_key(ex, "present"),
       fmt::format("{:.3g} input segments", size.segments)},
      {bytes_per_value * size.slots, "train.epochs", fmt::format("{:.3g} training slots", size.slots)},
  };
  if (total(shares) > memory) {
    const Share& share = largest(shares);
    fail(share.key, fmt::format("the run would need at least {} of memory, more than this "
                                "machine's {} (the largest share: {}, {})",
                                format_bytes(total(shares)), format_bytes(memory), share.what,
                                format_bytes(share.bytes)));
  }
}

SizeEstimate check_run_size(const Experiment& ex, const Model& model, const Network& network,
                            const InputSignal& signal, double memory) {
  const StateLayout& layout = model.layout();
  const OutputSpec& out = ex.output;
  const ScheduleSize schedule = schedule_size(ex);
  const double samples = schedule.samples;
  const double segments = static_cast<double>(signal.segments());
  const bool train = training(ex);
  const double batch = static_cast<double>(layout.examples());
  const double recorded_examples =
      train && !out.examples.empty() ? static_cast<double>(out.examples.size()) : batch;

  // ---- the output file
  // Every series is chunked along time, min(flush_every, 4 MiB / row) rows a chunk, and its
  // last chunk is stored whole; the writer holds three chunks of each state series in memory.
  auto chunk_rows = [&](double row_values) {
    return std::clamp(std::floor(4194304.0 / (bytes_per_value * std::max(row_values, 1.0))), 1.0,
                      static_cast<double>(out.flush_every));
  };
  auto stored = [&](double rows, double row_values) {
    const double chunk = chunk_rows(row_values);
    return std::ceil(rows / chunk) * chunk * row_values;
  };
  double metrics = static_cast<double>(model.metric_names().size());
  std::set<std::string> kinds;
  double per_example_values = 0, shared_values = 0, wave_values = 0, wave_blocks = 0;
  double per_sample = 1.0;  // /time
  double state_series = 0;  // stored values of the recorded state blocks
  double chunk_buffers = 0;
  for (const Block& b : layout.blocks()) {
    kinds.insert(b.kind);
    const double size = static_cast<double>(b.size);
    (b.per_example() ? per_example_values : shared_values) += size;
    if (b.kind == "x" || b.kind == "h" || b.kind == "lambda") {
      wave_values += size;
      ++wave_blocks;
    }
    const double row = b.per_example() ? size / batch * recorded_examples : size;
    const RecordMode mode = out.mode_for(b.kind, b.member);
    switch (mode.kind) {
      case RecordMode::all:
      case RecordMode::every: {
        const double stride = mode.kind == RecordMode::all ? 1.0 : static_cast<double>(mode.stride);
        per_sample += row / stride;
        state_series += stored(std::ceil(samples / stride), row);
        chunk_buffers += 3.0 * bytes_per_value * chunk_rows(row) * row;
        break;
      }
      case RecordMode::norm:
        per_sample += 1.0;
        state_series += stored(samples, 1.0);
        chunk_buffers += 3.0 * bytes_per_value * chunk_rows(1.0);
        break;
      case RecordMode::none: break;
    }
  }
  if (out.residual) metrics += static_cast<double>(kinds.size());
  per_sample += metrics;
  double parameter_values = 0, edges = 0;
  for (const Projection& p : network.projections) {
    parameter_values += p.sparse ? static_cast<double>(p.csr.nonZeros())
                                 : static_cast<double>(p.dense.size());
    if (p.sparse) edges += static_cast<double>(p.csr.nonZeros());
  }
  for (const auto& b : network.bias) parameter_values += static_cast<double>(b.size());
  // /parameters: the initial ones (sparse projections also as their edge list), and the learned
  // ones of a learning model at the end (counted as many again; dtp's decoders are as large).
  const bool learning = !std::holds_alternative<LeakyParams>(ex.model);
  const double parameter_file_values = (learning ? 2.0 : 1.0) * parameter_values + 3.0 * edges;
  const double measured_segments =
      std::min(segments, static_cast<double>(std::max(0L, out.wave_segments)));
  double data_values = 0, examples = 0;
  if (train && ex.input.data) {
    const DataSet& data = *ex.input.data;
    for (const ExampleSet* set : {&data.train, &data.test}) {
      data_values += static_cast<double>(set->inputs.size() + set->targets.size());
      examples += static_cast<double>(set->size());
    }
  }
  SizeEstimate size;
  size.samples = samples;
  size.values_per_sample = per_sample;
  size.file = bytes_per_value * ((1.0 + metrics) * stored(samples, 1.0) + state_series +
                                 stored(segments, 1.0) * (7.0 + (train ? 6.0 : 0.0)) +  // tables
                                 measured_segments * wave_blocks * 4.0 +  // /waves
                                 parameter_file_values + examples) +      // /data indices
              65536.0;                                                    // groups, attributes

  // ---- the memory
  const NetworkSize configured = network_size(ex);
  const double state = static_cast<double>(layout.size());
  const std::string state_key = shared_values > per_example_values ? configured.largest_projection_key
                                : batch > 1                       ? "train.batch"
                                                                  : population_key(ex);
  // The samples of the current segment kept for its wave arrivals (the longest segment).
  double longest = 0;
  const auto& bounds = signal.boundaries();
  for (std::size_t k = 0; k + 1 < bounds.size(); ++k) longest = std::max(longest, bounds[k + 1] - bounds[k]);
  const double segment_samples =
      measured_segments > 0 ? std::min(samples, std::floor(longest / out.sample_dt) + 2.0) : 0.0;
  const double copies = state_copies(ex.integrator.stepper);
  const std::vector<Share> shares = {
      {bytes_per_value * copies * state, state_key,
       fmt::format("the state, {:.0f} copies of {:.3g} values", copies, state)},
      {network_bytes(configured), configured.largest_projection_key,
       fmt::format("the network's {:.3g} parameters", parameter_values)},
      {bytes_per_value * data_values, "data.limit", fmt::format("the data set's {:.3g} values", data_values)},
      {bytes_per_value * samples, "output.sample_dt", fmt::format("{:.3g} sample times", samples)},
      {bytes_per_value * segment_samples * wave_values, "output.waves",
       fmt::format("the {:.3g} samples of a segment kept for its wave arrivals", segment_samples)},
      {4.0 * bytes_per_value * segments, schedule_key(ex, "present"),
       fmt::format("{:.3g} input segments", segments)},
      {bytes_per_value * schedule.slots, "train.epochs", fmt::format("{:.3g} training slots", schedule.slots)},
      {chunk_buffers, "output.record", "the output's chunk buffers"},
  };
  size.memory = total(shares);
  const Share& share = largest(shares);
  size.memory_key = share.key;
  size.memory_share = fmt::format("{}, {}", share.what, format_bytes(share.bytes));

  const std::string where = ex.config_path;
  if (size.memory > memory) {
    throw ConfigError(share.key, where,
                      located(where, share.key,
                              fmt::format("the run would need an estimated {} of memory, more "
                                          "than this machine's {} (the largest share: {})",
                                          format_bytes(size.memory), format_bytes(memory),
                                          size.memory_share)));
  }
  if (size.file > ex.max_output_bytes) {
    throw ConfigError(
        "output.max_bytes", where,
        located(where, "output.max_bytes",
                fmt::format("the output file would take an estimated {} ({:.3g} samples × {:.3g} "
                            "recorded values × 8 bytes, and the tables and parameters), more than "
                            "output.max_bytes = {:.6g} bytes ({}): record less (output.record, "
                            "output.sample_dt), shorten the run, or raise the limit (e.g. --set "
                            "output.max_bytes={:.0e})",
                            format_bytes(size.file), samples, per_sample, ex.max_output_bytes,
                            format_bytes(ex.max_output_bytes),
                            std::pow(10.0, std::ceil(std::log10(size.file * 1.01))))));
  }
  return size;
}

std::string describe_size(const SizeEstimate& size) {
  return fmt::format("estimated memory: {}, output file: {}", format_bytes(size.memory),
                     format_bytes(size.file));
}

}  // namespace lf
