#pragma once
// How large a run will be, computed from its description before anything large is built or
// written (issue 8: huge configs ended in std::bad_alloc or the OOM killer without naming a key,
// and a run that would write 100 GB started without a word).
//
// Two checks, both throwing ConfigError naming the key responsible:
// - check_schedule, at config time (load_experiment), from the Experiment alone: the lengths of
//   the lists built in full before the run (sample times, input segments, the training order)
//   and a lower bound of the memory the network and state will take, so that nothing is
//   allocated for a run that cannot fit;
// - check_run_size, once the model exists (Run::Run before the output file is created, and
//   `learnflow validate`): the estimated memory against the machine's physical memory and the
//   estimated output file against output.max_bytes.
#include <functional>
#include <string>
#include <string_view>

#include "sim/core/input.hpp"
#include "sim/core/model.hpp"
#include "sim/core/network.hpp"
#include "sim/experiment.hpp"

namespace lf {

// Sample times, input segments and training slots (epochs × minibatches × batch) are lists
// held in full during a run: at most this many entries each.
inline constexpr double max_list_entries = 1e8;

// The default of output.max_bytes: the largest output file a run may write without asking.
inline constexpr double default_max_output_bytes = 50e9;

// The machine's physical memory in bytes (sysconf); +inf when unknown.
double physical_memory_bytes();

// Lengths of the run's lists, counted from the config without building them (upper bounds).
struct ScheduleSize {
  double samples = 0;   // sample times k·sample_dt in [t0, t_end]
  double segments = 0;  // input segments: presentations, phases and switches
  double slots = 0;     // training runs: the order list, epochs × minibatches × batch
};
ScheduleSize schedule_size(const Experiment& ex);

// Maps a dotted config key ("output.sample_dt", "network.projection[1]") to where it was
// written ("file:line", "--set", or the file).
using KeyLocator = std::function<std::string(std::string_view key)>;

// The config-time check (above), against `memory` bytes (the machine's). Throws ConfigError.
void check_schedule(const Experiment& ex, const KeyLocator& where,
                    double memory = physical_memory_bytes());

// A run's estimated size, in bytes.
struct SizeEstimate {
  double memory = 0;      // state × the copies the stepper and driver keep, the model's scratch,
                          // network, data set, lists, the writer's chunk buffers
  double file = 0;        // the output file: samples × recorded values, metrics, tables, parameters
  double samples = 0;     // sample times
  double values_per_sample = 0;  // recorded doubles per sample (state blocks, metrics, time)
  std::string memory_key;  // the config key behind the largest share of the memory
  std::string memory_share;  // that share, described ("the state, 12 copies of 3.1e8 values")
};

// Estimates the run of `ex` with its model, network and input built (nothing else allocated),
// and throws ConfigError when the memory exceeds the machine's physical memory (naming the
// responsible key) or the file exceeds output.max_bytes. Returns the estimate.
SizeEstimate check_run_size(const Experiment& ex, const Model& model, const Network& network,
                            const InputSignal& signal, double memory = physical_memory_bytes());

// "estimated memory: 1.2 GiB, output file: 340 MiB"
std::string describe_size(const SizeEstimate& size);

// "340 MiB", "1.2 GiB", "512 bytes"
std::string format_bytes(double bytes);

}  // namespace lf
