#pragma once
// Reading learnflow's HDF5 files back: initial parameters (for init = "file") and what
// `learnflow info` shows. HDF5 itself is confined to outputs/*.cpp.
#include <Eigen/Core>
#include <map>
#include <string>
#include <vector>

#include "sim/core/network.hpp"

namespace lf {

// Throws DataFileError when the file cannot be read or holds no /parameters.
ParameterFile read_parameter_file(const std::string& path);

struct DatasetInfo {
  std::string path;                 // "/state/x/layer1"
  std::vector<unsigned long long> shape;
  std::map<std::string, std::string> attributes;  // rendered as text
};

// Everything `learnflow info` needs, read from a run file.
struct RunFileSummary {
  std::map<std::string, std::string> root_attributes;
  std::map<std::string, std::string> solver_attributes;
  std::vector<DatasetInfo> datasets;
  std::vector<double> time;
  std::vector<double> boundaries;  // t0, breakpoints…, t_end
  std::vector<std::string> populations;  // network order
  // Mean activity per recorded population over its sample times: x blocks (forward waves),
  // then λ blocks (backward waves).
  struct Activity {
    std::string kind;  // "x" or "lambda"
    std::string population;
    std::vector<double> time;
    std::vector<double> mean;
  };
  std::vector<Activity> activity;
};

// Throws DataFileError when the file is not a readable learnflow run file.
RunFileSummary read_run_summary(const std::string& path);

}  // namespace lf
