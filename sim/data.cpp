#include "sim/data.hpp"

#include <fmt/format.h>

#include <cassert>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "outputs/h5file.hpp"
#include "sim/config.hpp"
#include "sim/core/errors.hpp"

namespace lf {
namespace {

struct BuiltinDataSet {
  std::string_view name;
  std::string_view package;          // the Debian package that ships its files
  std::vector<std::string> files;    // train features (+ labels), then test features + labels
  double scale;                      // maps its values to [0, 1]
};

const std::vector<BuiltinDataSet>& builtin_data_sets() {
  static const std::string fashion = std::string(fashion_mnist_dir) + "/";
  static const std::vector<BuiltinDataSet> sets = {
      {"digits", "python3-sklearn", {digits_file}, 1.0 / 16.0},
      {"fashion-mnist", "dataset-fashion-mnist",
       {fashion + "train-images-idx3-ubyte.gz", fashion + "train-labels-idx1-ubyte.gz",
        fashion + "t10k-images-idx3-ubyte.gz", fashion + "t10k-labels-idx1-ubyte.gz"},
       1.0 / 255.0},
  };
  return sets;
}

const BuiltinDataSet* find_builtin(std::string_view name) {
  for (const auto& set : builtin_data_sets()) {
    if (set.name == name) return &set;
  }
  return nullptr;
}

std::string_view format_name(DataFormat format) {
  switch (format) {
    case DataFormat::csv: return "a CSV file";
    case DataFormat::idx: return "an IDX file";
    default: return "an HDF5 file";
  }
}

// A file key: a non-empty path, resolved against the config's folder, whose name tells its
// format (the format's error reported at the key).
std::string file_key(const ConfigSection& data, std::string_view key, DataFormat* format) {
  const std::string given = data.string(key);
  if (given.empty()) data.fail(key, "must name a file, got an empty string");
  const std::string path = data.resolve_path(given);
  try {
    *format = data_format(path);
  } catch (const DataFileError& e) {
    data.fail(key, e.what());
  }
  return path;
}

// The labels or targets file of `features_key` ("train" or "test"), checked against its format.
void read_label_keys(const ConfigSection& data, const std::string& features_key,
                     DataFormat features_format, bool label_column, std::string& labels,
                     std::string& targets) {
  const std::string labels_key = features_key + "_labels";
  const std::string targets_key = features_key + "_targets";
  const bool has_labels = data.has(labels_key);
  const bool has_targets = data.has(targets_key);
  if (has_labels && has_targets) {
    data.fail(targets_key, fmt::format("data.{} and data.{} exclude each other: give class labels "
                                       "or target vectors, not both", labels_key, targets_key));
  }
  if (!has_labels && !has_targets) return;
  const std::string& key = has_labels ? labels_key : targets_key;
  if (features_format == DataFormat::hdf5) {
    data.fail(key, fmt::format("data.{} is an HDF5 file, which carries its own /y or /targets",
                               features_key));
  }
  if (label_column && features_format == DataFormat::csv) {
    data.fail(key, fmt::format("label_column = true takes the labels of data.{} from its last "
                               "column; give data.{} or label_column, not both", features_key,
                               key));
  }
  if (has_targets && features_format == DataFormat::idx) {
    data.fail(key, "IDX files carry class labels (data." + labels_key + "); give target vectors "
                   "in CSV or HDF5 files");
  }
  DataFormat format{};
  (has_labels ? labels : targets) = file_key(data, key, &format);
  if (format != features_format) {
    data.fail(key, fmt::format("is {}, but data.{} is {}: the two must have the same format",
                               format_name(format), features_key, format_name(features_format)));
  }
}

// Reads one file of examples (and its labels or targets) by format.
ExampleTable read_examples(const std::string& features, const std::string& labels,
                           const std::string& targets, bool label_column) {
  switch (data_format(features)) {
    case DataFormat::csv:
      return read_csv_examples(features, targets.empty() ? labels : targets, !targets.empty(),
                               label_column);
    case DataFormat::idx: return read_idx_examples(features, labels);
    default: return read_hdf5_examples(features);
  }
}

DataSet load_builtin(const BuiltinDataSet& set, const DataOptions& options, Eigen::Index n_in,
                     Eigen::Index n_out) {
  for (const std::string& file : set.files) {
    if (!std::filesystem::exists(file)) {
      throw DataFileError(file, 0, fmt::format("{}: missing: the built-in data set '{}' comes from "
                                               "the Debian package {}; run tools/install-deps.sh",
                                               file, set.name, set.package));
    }
  }
  if (set.name == "digits") {  // 64 pixels 0..16, then the label
    return make_data_set("digits", read_csv_examples(set.files[0], "", false, true), std::nullopt,
                         options, set.scale, n_in, n_out);
  }
  return make_data_set(std::string(set.name), read_idx_examples(set.files[0], set.files[1]),
                       read_idx_examples(set.files[2], set.files[3]), options, set.scale, n_in,
                       n_out);
}

}  // namespace

DataSpec read_data_spec(const ConfigSection& data, std::uint64_t default_split_seed) {
  DataSpec spec;
  static const char* const file_keys[] = {"train",       "train_labels", "train_targets",
                                          "test",        "test_labels",  "test_targets",
                                          "label_column"};
  bool has_test_set = false;  // a test file, or a built-in data set's own
  bool targets = false;
  if (data.has("name")) {
    spec.name = data.string("name");
    const BuiltinDataSet* builtin = find_builtin(spec.name);
    if (builtin == nullptr) {
      std::string names;
      for (const auto& set : builtin_data_sets()) {
        names += (names.empty() ? "" : ", ") + std::string(set.name);
      }
      data.fail("name", fmt::format("unknown data set '{}' (built in: {}; for files, leave name "
                                    "out and give data.train)", spec.name, names));
    }
    for (const char* key : file_keys) {
      if (data.has(key)) {
        data.fail(key, fmt::format("data.name = \"{}\" is a built-in data set with its own files; "
                                   "give data.name or data.{}, not both", spec.name, key));
      }
    }
    has_test_set = builtin->files.size() > 2;
  } else {
    if (!data.has("train")) {
      data.fail("train", "required key is missing: give data.train (a file of examples) or "
                         "data.name (a built-in data set: digits, fashion-mnist)");
    }
    DataFormat train_format{};
    spec.train = file_key(data, "train", &train_format);
    spec.label_column = data.boolean("label_column", false);
    read_label_keys(data, "train", train_format, spec.label_column, spec.train_labels,
                    spec.train_targets);
    if (spec.label_column && train_format != DataFormat::csv) {
      data.fail("label_column", fmt::format("applies to CSV files; data.train is {}",
                                            format_name(train_format)));
    }
    for (const char* key : {"test_labels", "test_targets"}) {
      if (data.has(key) && !data.has("test")) {
        data.fail(key, "given without data.test, the file it belongs to");
      }
    }
    if (data.has("test")) {
      DataFormat test_format{};
      spec.test = file_key(data, "test", &test_format);
      read_label_keys(data, "test", test_format, spec.label_column, spec.test_labels,
                      spec.test_targets);
      has_test_set = true;
    }
    targets = !spec.train_targets.empty() || !spec.test_targets.empty();
  }

  DataOptions& options = spec.options;
  if (data.has("scale")) options.scale = data.positive("scale");
  if (data.has("one_hot")) {
    if (targets) data.fail("one_hot", "applies to class labels, but target vectors are given");
    options.one_hot = data.boolean("one_hot");
  }
  if (data.has("classes")) {
    if (targets) data.fail("classes", "applies to class labels, but target vectors are given");
    const std::int64_t classes = data.integer("classes");
    if (classes < 1) {
      data.fail("classes", fmt::format("must be >= 1, got {} (leave it out to count the classes "
                                       "from the labels)", classes));
    }
    options.classes = static_cast<long>(classes);
  }
  for (const char* key : {"test_fraction", "split_seed"}) {
    if (has_test_set && data.has(key)) {
      const std::string owner =
          spec.name.empty() ? "data.test" : fmt::format("data.name = \"{}\"", spec.name);
      data.fail(key, fmt::format("applies only to examples held out of the training file, but {} "
                                 "has its own test set", owner));
    }
  }
  if (has_test_set) options.test_fraction = 0.0;
  if (data.has("test_fraction")) {
    const double fraction = data.number("test_fraction");
    if (!(fraction >= 0.0 && fraction < 1.0)) {
      data.fail("test_fraction", fmt::format("must be in [0, 1), got {}", fraction));
    }
    options.test_fraction = fraction;
  }
  options.split_seed = default_split_seed;
  if (data.has("split_seed")) {
    const std::int64_t seed = data.integer("split_seed");
    if (seed < 0) data.fail("split_seed", fmt::format("must be >= 0, got {}", seed));
    options.split_seed = static_cast<std::uint64_t>(seed);
  }
  if (data.has("limit")) {
    const std::int64_t limit = data.integer("limit");
    if (limit <= 0) data.fail("limit", fmt::format("must be > 0 (leave it out for every example), got {}", limit));
    options.limit = static_cast<long>(limit);
  }
  spec.classes_where = data.where("classes");
  spec.test_fraction_where = data.where("test_fraction");
  spec.scale_where = data.where("scale");
  data.finish();
  return spec;
}

DataSet load_data_set(const DataSpec& spec, Eigen::Index n_in, Eigen::Index n_out) {
  try {
    if (!spec.name.empty()) {
      const BuiltinDataSet* builtin = find_builtin(spec.name);
      assert(builtin != nullptr && "read_data_spec checks the name");
      return load_builtin(*builtin, spec.options, n_in, n_out);
    }
    ExampleTable train = read_examples(spec.train, spec.train_labels, spec.train_targets,
                                       spec.label_column);
    std::optional<ExampleTable> test;
    if (!spec.test.empty()) {
      test = read_examples(spec.test, spec.test_labels, spec.test_targets, spec.label_column);
    }
    const double default_scale = train.default_scale;
    return make_data_set(std::filesystem::path(spec.train).filename().string(), std::move(train),
                         std::move(test), spec.options, default_scale, n_in, n_out);
  } catch (const ConfigError& e) {
    // make_data_set names the option but cannot know where it was set: add it here.
    if (!e.where().empty()) throw;
    const std::string& where = e.key() == "data.classes" ? spec.classes_where
                               : e.key() == "data.scale" ? spec.scale_where
                                                         : spec.test_fraction_where;
    throw ConfigError(e.key(), where, fmt::format("{}: {}", where, e.what()));
  }
}

}  // namespace lf
