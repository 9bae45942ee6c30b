#pragma once
// An Experiment is the plain-data description of a run, as read and validated from TOML
// (DESIGN §9). It holds no solver, file or thread: sim/run.hpp executes it.
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "models/params.hpp"
#include "sim/activation.hpp"

namespace lf {

enum class Role { input, hidden, output };

// How the weights (and biases) of projections are initialised, seeded by network.seed.
struct InitSpec {
  std::string weights = "normal";  // normal | uniform | orthogonal | zeros | file
  double scale = 1.0;              // normal: N(0, scale²/fan_in); uniform: same variance
  std::string bias = "zeros";      // zeros | normal (N(0, bias_scale²)) | file
  double bias_scale = 1.0;
  std::string file;                // HDF5 file with /parameters/W/<proj>, /parameters/b/<pop>
};

struct PopulationSpec {
  std::string name;
  long size = 0;
  Role role = Role::hidden;
  Activation activation = Activation::tanh;
};

struct EdgeSpec {
  long src = 0;  // neuron index in the source population
  long dst = 0;  // neuron index in the target population
  double weight = std::numeric_limits<double>::quiet_NaN();  // NaN: drawn from the init scheme
  std::string where;  // "file:line" of the edge, for messages
};

struct ProjectionSpec {
  std::string name;
  std::string from;
  std::string to;
  bool plastic = false;
  bool sparse = false;           // true when given as an edge list (CSR storage)
  std::vector<EdgeSpec> edges;
  std::string weights_csv;       // dense weight matrix from CSV (rows = targets), optional
  std::string key;               // config key of this projection, for messages
};

struct NetworkSpec {
  std::vector<PopulationSpec> populations;
  std::vector<ProjectionSpec> projections;
  InitSpec init;
  std::uint64_t seed = 1;
};

enum class InputKind { constant, step, sine, sequence };

// The external input: a vector over the concatenated input populations, as a function of time.
struct InputSpec {
  InputKind kind = InputKind::constant;
  std::vector<double> value;              // constant, step (after t0)
  std::vector<double> before;             // step: before t0 (default zeros)
  double t_step = 0.0;                    // step: switch time
  std::vector<double> amplitude, frequency, phase, offset;  // sine: offset + A sin(2π f t + φ)
  std::vector<std::vector<double>> sequence;  // sequence: the vectors shown in turn
  double present = 1.0;                   // sequence: time each vector is held
  bool repeat = true;                     // sequence: cycle through the vectors until t_end

  // Phases of each example (DESIGN §5): names and durations, repeated with period Σ durations
  // from t0 (for a sequence, the period is `present`). Every phase switch is a breakpoint.
  std::vector<std::string> phase_names;
  std::vector<double> phase_durations;

  // Targets y for the output populations (learning models): one per sequence vector, or one
  // constant target for the other kinds, present from target_t0 on (before it: no target, e = 0).
  std::vector<std::vector<double>> targets;
  std::vector<double> target;
  double target_t0 = -std::numeric_limits<double>::infinity();
};

struct IntegratorSpec {
  std::string stepper = "dopri5";
  double rtol = 1e-6;
  double atol = 1e-6;
  double dt0 = 0.0;            // initial step; 0: chosen from the tolerances
  double dt_max = std::numeric_limits<double>::infinity();
  long max_steps = 100'000'000;
  double t0 = 0.0;
  double t_end = 10.0;
};

// What is written for a state block at each sample.
struct RecordMode {
  enum Kind { all, every, norm, none } kind = all;
  long stride = 1;  // every:K
};

struct OutputSpec {
  std::string file = "run.h5";
  double sample_dt = 0.05;
  std::map<std::string, RecordMode> record;  // key: block kind ("x") or block name ("x/layer1")
  long flush_every = 100;      // flushes happen only after a multiple of this many samples …
  double flush_seconds = 1.0;  // … and at least this long (wall time) after the previous one
  bool residual = false;  // write /metrics/residual/<kind> = ‖d(block kind)/dt‖₂ at each sample

  // The mode of block "kind/member": the exact name wins over the kind; default "all".
  RecordMode mode_for(const std::string& kind, const std::string& member) const;
};

struct Experiment {
  std::string config_path;  // file the experiment was read from
  std::string config_text;  // the full TOML text after --set overrides
  NetworkSpec network;
  ModelParams model;
  InputSpec input;
  IntegratorSpec integrator;
  OutputSpec output;

  std::size_t input_size() const;   // total size of the input populations
  std::size_t output_size() const;  // total size of the output populations
};

}  // namespace lf
