#pragma once
// Reading HDF5 files: learnflow's own back (initial parameters for init = "file", what
// `learnflow info` shows), and data sets of examples. HDF5 itself is confined to outputs/*.cpp.
#include <Eigen/Core>
#include <map>
#include <string>
#include <vector>

#include "sim/core/dataset.hpp"
#include "sim/core/network.hpp"

namespace lf {

// To be called before any other HDF5 call (the CLI's first statement): HDF5 then closes no file
// at exit. learnflow closes every file it opens; one whose H5Fclose failed (a full disk) HDF5
// 1.10 closed a second time at exit, and crashed (issue 8). It is left to the system instead.
void skip_hdf5_cleanup_at_exit();

// The initial (/parameters/W/<proj>, /parameters/b/<pop>) or the final (/parameters/final/…)
// parameters of a run file. Throws DataFileError when the file cannot be read or holds none.
ParameterFile read_parameter_file(const std::string& path, const std::string& which = "initial");

// Examples from an HDF5 file: /x [N, d] the features, with /y [N] class labels or /targets
// [N, k] target vectors (not both; neither: features only). Any integer or float type, read as
// double. DataFileError naming the file and the dataset: no /x, a rank or an N that differs,
// values that are not numbers.
ExampleTable read_hdf5_examples(const std::string& path);

// The numeric dataset `dataset` of rank `rank` in the HDF5 file `path` (integers converted),
// with its shape; `meaning` describes it for the error. Throws DataFileError naming file and
// dataset.
std::vector<double> read_hdf5_array(const std::string& path, const std::string& dataset, int rank,
                                    const char* meaning, std::vector<unsigned long long>& shape);

struct DatasetInfo {
  std::string path;                 // "/state/x/layer1"
  std::vector<unsigned long long> shape;
  std::map<std::string, std::string> attributes;  // rendered as text
  std::map<std::string, std::vector<double>> numbers;  // the floating-point attributes, in full
};

// Everything `learnflow info` needs, read from a run file.
struct RunFileSummary {
  std::map<std::string, std::string> root_attributes;
  std::map<std::string, std::string> solver_attributes;
  std::vector<DatasetInfo> datasets;
  std::vector<double> time;
  std::vector<double> boundaries;  // t0, breakpoints…, t_end
  std::vector<std::string> populations;  // network order
  // The wave arrivals the run stored (/waves/<kind>/<pop>, /waves/neurons/<kind>/<pop>), x and
  // h (forward waves) before λ (backward waves), each in network order.
  struct Wave {
    std::string kind;  // "x", "h" or "lambda"
    std::string population;
    std::size_t depth = 0;           // the population's index in the network
    std::vector<double> arrival;     // per measured segment (NaN: undefined)
    std::vector<double> quartiles;   // per measured segment: median, 25 %, 75 % of neuron half-times
  };
  std::vector<Wave> waves;
  // /metrics/phase/<name>: one row per input segment (start, duration, phase, converged,
  // diverged, residual_start, residual_end), and the phase names.
  std::map<std::string, std::vector<double>> phases;
  std::vector<std::string> phase_names;
  // A training run: /data attributes and the learning curve /metrics/epoch/<name> (columns in
  // the order of `evaluation_names`), with the initial network's scores (attributes).
  std::map<std::string, std::string> data_attributes;
  std::vector<std::string> evaluation_names;
  std::vector<std::vector<double>> evaluations;
  std::map<std::string, std::string> evaluation_attributes;
};

// Throws DataFileError when the file is not a readable learnflow run file.
RunFileSummary read_run_summary(const std::string& path);

// What `learnflow watch` shows of a run file that may still be written: read without locking
// the file (the writer must be able to reopen it when the run ends), SWMR-consistent.
struct RunProgress {
  std::size_t samples = 0;
  double t = 0.0, t0 = 0.0, t_end = 0.0;  // last sample; the schedule
  bool finished = false;                  // /solver written: the run has ended
  std::string outcome;                    // /solver outcome (when finished)
  std::vector<std::pair<std::string, double>> metrics;  // /metrics/<name> at the last sample
  std::vector<std::pair<std::string, double>> epoch;    // the last row of /metrics/epoch
  std::size_t phases = 0, converged = 0, diverged = 0;  // rows of /metrics/phase so far
};
RunProgress read_run_progress(const std::string& path);

}  // namespace lf
