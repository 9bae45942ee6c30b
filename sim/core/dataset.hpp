#pragma once
// Data sets for training: examples read from files (CSV, IDX, HDF5), validated against the
// network's input and output sizes, scaled, turned into target vectors and split into a training
// and a held-out set. Plain data and the readers that need no HDF5 (read_hdf5_examples lives in
// outputs/h5file.hpp); the [data] config table is read by the application (sim/data.hpp).
//
// In messages, examples and features are counted from 0, as rows and columns of /x are in
// h5py or numpy (and as ExampleSet::index counts them); lines of a CSV file from 1.
#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace lf {

// One row per example, as read from a file, before validation and scaling.
struct ExampleTable {
  std::string file;            // features file
  std::string label_file;      // file of the labels/targets (== file when in it; "" if none)
  Eigen::MatrixXd x;           // N × d raw values
  std::vector<double> labels;  // N raw class labels as read (integers validated later), or empty
  Eigen::MatrixXd targets;     // N × k target vectors, or empty (never both labels and targets)
  std::vector<long> lines;     // CSV: the line of each row of x (for messages); empty otherwise
  std::vector<long> label_lines;  // CSV: the line of each label/target row
  // The scale that maps the file's values to [0, 1] when the format tells it: 1/255 for IDX
  // uint8 data, 1 otherwise. make_data_set's default_scale is taken from here by the application
  // (sim/data.cpp) unless a built-in data set knows better (digits: 1/16).
  double default_scale = 1.0;
};

enum class DataFormat { csv, idx, hdf5 };

// The format of a data file, from its name (case-insensitive):
//   .csv .txt .csv.gz .txt.gz → csv;  .h5 .hdf5 → hdf5;
//   *-ubyte .idx (as in train-images-idx3-ubyte), each also with .gz → idx.
// Anything else is a DataFileError naming the file and the accepted names.
DataFormat data_format(const std::string& path);

// An IDX file (the MNIST format), gzipped or not: big-endian magic 0x0000TTNN (type code TT:
// 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E double; NN ≥ 1 dimensions),
// NN big-endian uint32 sizes, then the values, big-endian, row-major. A file of dimensions
// [N, d1, d2, …] gives N examples of d1·d2·… features (a 1-d file: N examples of one value).
// `labels` ("" for none) is a 1-d IDX file of N class labels. DataFileError for a missing file,
// a bad magic number, data shorter or longer than the header announces, or label count ≠ N.
ExampleTable read_idx_examples(const std::string& images, const std::string& labels);

// CSV files, gzipped or not (read with read_csv: '#' comments, an optional header line).
// `features`: one example per line, the same number of fields on every line. Then either
// - `label_in_last_column`: the last field of each line is the class label (labels_file = ""), or
// - `labels_file` with one class label per line (labels_are_targets = false), or k target values
//   per line (labels_are_targets = true), one line per example of `features`, or
// - neither: features only.
// DataFileError (file:line) for ragged rows or a row count that differs between the two files.
ExampleTable read_csv_examples(const std::string& features, const std::string& labels_file,
                               bool labels_are_targets, bool label_in_last_column);

// The examples of one split, ready for training.
struct ExampleSet {
  Eigen::MatrixXd inputs;    // d × N: one COLUMN per example (scaled)
  // n_out × N: one-hot of `classes` rows (then zero rows up to n_out), or the given targets padded
  // with zero rows to n_out; 0 × N when the file has neither labels nor targets.
  Eigen::MatrixXd targets;
  std::vector<int> labels;   // N class labels (empty when targets were given)
  std::vector<long> index;   // row of each example in its source file (0-based)
  std::string source;        // features file
  // zlib crc32 of `inputs` bytes then `targets` bytes as stored (column-major d×N = row-major
  // [N, d] float64 little-endian): a fingerprint of exactly what training sees.
  std::uint32_t crc32 = 0;
  Eigen::Index size() const { return inputs.cols(); }
};

struct DataSet {
  std::string name;          // "digits", "fashion-mnist", or the train features file's name
  ExampleSet train, test;    // test.size() == 0 when there is no held-out set
  // Outputs that carry the target error and the argmax: `classes` for one-hot labels, 1 for
  // labels that are not one-hot, k for given targets, 0 without labels or targets.
  Eigen::Index error_rows = 0;
  bool has_labels = false;
};

// The numeric options of [data].
struct DataOptions {
  // Multiplies every input value. NaN: the default of the source (1/255 for IDX uint8 and
  // fashion-mnist, 1/16 for digits, else 1).
  double scale = std::numeric_limits<double>::quiet_NaN();
  bool one_hot = true;         // labels → one-hot targets (false: the label as a 1-row target)
  long classes = 0;            // 0: max label + 1 (over train and test)
  double test_fraction = 0.2;  // only when there is no test file; 0: no held-out set
  std::uint64_t split_seed = 1;
  long limit = 0;              // > 0: only the first `limit` examples of each file (quick runs)
};

// Validates and prepares the examples for a network with n_in inputs and n_out outputs:
// - every feature and target value finite (DataFileError "file: example i, feature j is NaN";
//   "file:line: example i, …" for CSV), at least one example, d == n_in, target width k with
//   1 ≤ k ≤ n_out, train and test of the same kind (labels, targets or neither) and width;
// - labels are integers ≥ 0, below options.classes when it is given, else below n_out when they
//   become one-hot; classes ≤ n_out for one-hot targets (ConfigError "data.classes = 12 exceeds
//   the 10 output neurons", key data.classes, where "": the application adds where it was set);
// - inputs = scale · x, with scale = options.scale, or default_scale when that is NaN;
// - without a test table and with test_fraction > 0: a permutation of 0..N−1 by Fisher–Yates
//   with lf::Random seeded by derive_seed(split_seed, split_stream); its first
//   round(N·test_fraction) indices, sorted, are the test set, the rest, sorted (file order), the
//   training set. A fraction that leaves no training example is a ConfigError (data.test_fraction);
//   one that rounds to no test example gives an empty test set.
// `options.classes` with targets is a ConfigError; options.one_hot is ignored for targets.
DataSet make_data_set(std::string name, ExampleTable train, std::optional<ExampleTable> test,
                      const DataOptions& options, double default_scale, Eigen::Index n_in,
                      Eigen::Index n_out);

// The random stream of the split, apart from those of the weights (0, 1, …) and of DTP's
// decoders (1000 + l) when split_seed = network.seed: the bytes "data" read as a number.
inline constexpr std::uint64_t split_stream = 0x64617461;

// zlib crc32 of the bytes of `inputs` then of `targets`, as stored (little-endian float64).
std::uint32_t example_crc32(const Eigen::MatrixXd& inputs, const Eigen::MatrixXd& targets);

}  // namespace lf
