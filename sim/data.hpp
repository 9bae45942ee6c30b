#pragma once
// The [data] table of an experiment: the examples a network trains on, from files (CSV, IDX,
// HDF5, by name: data_format) or a built-in data set, and how they are prepared (DataOptions).
//
//   [data]
//   name = "digits"                  # or "fashion-mnist"; or files instead:
//   # train = "train.csv"            # features (paths relative to the config file)
//   # train_labels = "labels.csv"    # or train_targets, or label_column = true (CSV)
//   # test = "test.csv"              # with test_labels / test_targets; else test_fraction
//   scale = 0.0625                   # default: 1/255 for IDX uint8 and fashion-mnist, 1/16 digits
//   one_hot = true
//   classes = 10                     # default: max label + 1
//   test_fraction = 0.2              # held out of train when there is no test file
//   split_seed = 1                   # default: network.seed
//   limit = 1000                     # only the first examples of each file (quick runs)
#include <Eigen/Core>
#include <cstdint>
#include <string>

#include "sim/core/dataset.hpp"

namespace lf {

class ConfigSection;

// [data], as read from the config.
struct DataSpec {
  std::string name;  // "digits" | "fashion-mnist" | "" (files)
  // Resolved paths ("" when not given).
  std::string train, train_labels, train_targets, test, test_labels, test_targets;
  bool label_column = false;  // CSV: label in the last column of the features file
  DataOptions options;
  // "file:line" of data.classes, data.test_fraction and data.scale (of [data] when absent): where
  // load_data_set reports what only the data and the network reveal (classes > outputs, a
  // fraction that leaves no training example, a scale that makes values infinite).
  std::string classes_where, test_fraction_where, scale_where;
};

// The files of the built-in data sets, where Debian installs them.
inline constexpr const char* digits_file =
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";  // python3-sklearn
inline constexpr const char* fashion_mnist_dir =
    "/usr/share/datasets/fashion-mnist";  // dataset-fashion-mnist

// Reads and checks [data] (keys that exclude each other, formats, ranges); ConfigError naming
// the key. Calls data.finish(): an unknown key is an error. split_seed defaults to
// `default_split_seed` (network.seed).
DataSpec read_data_spec(const ConfigSection& data, std::uint64_t default_split_seed);

// Reads the files by format (or the built-in data set) and prepares them for a network of n_in
// inputs and n_out outputs (make_data_set). InputError (DataFileError, ConfigError) on bad data.
DataSet load_data_set(const DataSpec& spec, Eigen::Index n_in, Eigen::Index n_out);

}  // namespace lf
