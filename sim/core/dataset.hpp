#pragma once
// PLACEHOLDER until the data-readers branch lands: the plain-data types of a training data set.
#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

namespace lf {

struct ExampleSet {               // the examples of one split, ready for training
  Eigen::MatrixXd inputs;         // d × N: one column per example (scaled)
  Eigen::MatrixXd targets;        // n_out × N
  std::vector<int> labels;        // N class labels (empty when targets were given)
  std::vector<long> index;        // row of each example in its source file (0-based)
  std::string source;             // features file
  std::uint32_t crc32 = 0;
  Eigen::Index size() const { return inputs.cols(); }
};

struct DataSet {
  std::string name;
  ExampleSet train, test;
  Eigen::Index error_rows = 0;    // outputs that carry the target error and the argmax
  bool has_labels = false;
};

}  // namespace lf
