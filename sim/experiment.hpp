#pragma once
// An Experiment is the plain-data description of a run, as read and validated from TOML
// (DESIGN §9): each layer's own spec, gathered. It holds no solver, file or thread: sim/run.hpp
// executes it.
#include <optional>
#include <string>

#include "integrators/registry.hpp"
#include "models/params.hpp"
#include "outputs/trajectory_writer.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"
#include "sim/data.hpp"

namespace lf {

struct Experiment {
  std::string config_path;  // file the experiment was read from
  std::string config_text;  // the full TOML text after --set overrides
  std::string result_config;  // the same without the keys that shape no result (resume checks it)
  NetworkSpec network;
  ModelParams model;
  InputSpec input;            // a training run: kind dataset, with the examples and [train]
  IntegratorSpec integrator;
  OutputSpec output;
  // output.max_bytes: a run whose estimated output file is larger is refused (sim/budget.hpp).
  double max_output_bytes = 50e9;
  std::optional<DataSpec> data;  // [data] of a training run, as configured
  // Every file the experiment reads: the config, network.init.file, edge and weight CSVs, input
  // sequences, data files (a run refuses to write its output over any of them).
  std::vector<std::string> input_files;

  std::size_t input_size() const;   // total size of the input populations
  std::size_t output_size() const;  // total size of the output populations
};

// The network of a spec, with its initial parameters read from network.init.file when the
// spec asks for a file. Throws InputError.
Network build_network(const NetworkSpec& spec);

}  // namespace lf
