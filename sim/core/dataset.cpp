#include "sim/core/dataset.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cctype>
#include <climits>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "sim/core/csv.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/gzip_reader.hpp"
#include "sim/core/random.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lf {
namespace {

using Eigen::Index;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "NaN", "inf", "-inf" or the shortest text that reads back as `v`.
std::string value_text(double v) {
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

// Where example i of a table is: "file:line: example i" for CSV, "file: example i" otherwise.
std::string example_where(const std::string& file, const std::vector<long>& lines, Index i) {
  if (lines.empty()) return fmt::format("{}: example {}", file, i);
  return fmt::format("{}:{}: example {}", file, lines[static_cast<std::size_t>(i)], i);
}

long line_of(const std::vector<long>& lines, Index i) {
  return lines.empty() ? 0 : lines[static_cast<std::size_t>(i)];
}

// Asks Linux to back a large buffer that is about to be written for the first time with 2 MiB
// pages ("transparent huge pages" in madvise mode). Writing fresh memory costs a page fault per
// page: on the development machine a 376 MB matrix (Fashion-MNIST's 60000 × 784 doubles) took
// 1.05 s to fault in with 4 KiB pages and 0.04 s with 2 MiB pages. Only a hint: where it is not
// granted (other systems, THP off) nothing changes but the time.
void prefer_huge_pages(void* data, std::size_t bytes) {
#if defined(MADV_HUGEPAGE)
  constexpr std::size_t large = std::size_t{32} << 20;  // glibc serves these by mmap anyway
  if (bytes < large) return;
  const auto page = std::uintptr_t{4096};
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(page - 1);
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

// A d1 × d2 matrix whose entries are all about to be written.
void resize_for_writing(Eigen::MatrixXd& m, Index rows, Index cols) {
  m.resize(rows, cols);
  prefer_huge_pages(m.data(), static_cast<std::size_t>(m.size()) * sizeof(double));
}

// ---- IDX ----------------------------------------------------------------------------------------

std::uint32_t big_endian_32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
std::uint64_t big_endian_64(const unsigned char* p) {
  return (std::uint64_t{big_endian_32(p)} << 32) | big_endian_32(p + 4);
}

struct IdxType {
  std::uint8_t code;
  const char* name;
  std::size_t bytes;
};
constexpr IdxType idx_types[] = {{0x08, "ubyte", 1}, {0x09, "sbyte", 1}, {0x0B, "short", 2},
                                 {0x0C, "int", 4},   {0x0D, "float", 4}, {0x0E, "double", 8}};

// An IDX file as stored: its dimensions, type and the raw (big-endian) value bytes.
struct IdxArray {
  std::vector<std::uint64_t> dims;
  IdxType type{};
  std::vector<unsigned char> bytes;
  std::string shape_text() const { return fmt::format("[{}]", fmt::join(dims, ", ")); }
};

IdxArray read_idx(const std::string& path) {
  GzipReader in(path);
  unsigned char magic[4];
  if (in.read(magic, 4) < 4) {
    throw DataFileError(path, 0, fmt::format("{}: not an IDX file: shorter than its 4-byte magic "
                                             "number", path));
  }
  const std::uint32_t magic_number = big_endian_32(magic);
  if (magic[0] != 0 || magic[1] != 0) {
    throw DataFileError(path, 0, fmt::format("{}: not an IDX file: magic number 0x{:08X} does not "
                                             "start with two zero bytes (IDX: 0x0000TTNN, type "
                                             "code TT, NN dimensions)", path, magic_number));
  }
  IdxArray array;
  const auto* type = std::find_if(std::begin(idx_types), std::end(idx_types),
                                  [&](const IdxType& t) { return t.code == magic[2]; });
  if (type == std::end(idx_types)) {
    throw DataFileError(path, 0, fmt::format("{}: unknown IDX type code 0x{:02X} in magic number "
                                             "0x{:08X} (allowed: 0x08 ubyte, 0x09 sbyte, 0x0B "
                                             "short, 0x0C int, 0x0D float, 0x0E double)", path,
                                             magic[2], magic_number));
  }
  array.type = *type;
  const unsigned rank = magic[3];
  if (rank == 0) {
    throw DataFileError(path, 0, fmt::format("{}: IDX magic number 0x{:08X} gives 0 dimensions (at "
                                             "least 1 required)", path, magic_number));
  }
  std::vector<unsigned char> header(4 * std::size_t{rank});
  const std::size_t header_read = in.read(header.data(), header.size());
  if (header_read < header.size()) {
    throw DataFileError(path, 0, fmt::format("{}: truncated IDX header: {} dimension sizes "
                                             "announced, the file ends after {} bytes of them",
                                             path, rank, header_read));
  }
  // The byte count, guarded against overflow: a corrupt header must not wrap it round.
  std::uint64_t total = array.type.bytes;
  bool too_large = false;
  for (unsigned k = 0; k < rank; ++k) {
    const std::uint64_t size = big_endian_32(&header[4 * k]);
    array.dims.push_back(size);
    if (size != 0 && total > (std::uint64_t{1} << 48) / size) too_large = true;
    total *= size;
  }
  if (too_large) {
    throw DataFileError(path, 0, fmt::format("{}: IDX dimensions {} of {} values are too large "
                                             "(more than 2^48 bytes)", path, array.shape_text(),
                                             array.type.name));
  }
  // Read in pieces, so that a header announcing far more than the file holds is reported as a
  // truncated file instead of allocating its size up front.
  constexpr std::size_t piece = std::size_t{1} << 24;
  array.bytes.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(total, 4 * piece)));
  prefer_huge_pages(array.bytes.data(), array.bytes.capacity());
  std::size_t have = 0;
  while (have < total) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(total - have, piece));
    array.bytes.resize(have + want);
    const std::size_t got = in.read(array.bytes.data() + have, want);
    have += got;
    if (got < want) {
      throw DataFileError(path, 0, fmt::format("{}: truncated: the header announces {} {} values "
                                               "({} bytes), the file holds only {}", path,
                                               array.shape_text(), array.type.name, total, have));
    }
  }
  std::size_t trailing = 0;
  std::vector<unsigned char> rest(1 << 16);
  for (std::size_t got; (got = in.read(rest.data(), rest.size())) > 0;) trailing += got;
  if (trailing > 0) {
    throw DataFileError(path, 0, fmt::format("{}: {} bytes after the {} {} values the header "
                                             "announces (expected the file to end there)", path,
                                             trailing, array.shape_text(), array.type.name));
  }
  return array;
}

// Calls f(i, j) for every i < rows, j < cols, in tiles of 32 × 32. The readers transpose:
// row-major file data into the column-major N × d table, examples (rows) into columns of the
// d × N inputs. Either way one side is strided; within a tile both sides fit in the L1 cache.
template <class F>
void for_each_in_tiles(Index rows, Index cols, F f) {
  constexpr Index tile = 32;
  for (Index j0 = 0; j0 < cols; j0 += tile) {
    const Index j1 = std::min(cols, j0 + tile);
    for (Index i0 = 0; i0 < rows; i0 += tile) {
      const Index i1 = std::min(rows, i0 + tile);
      for (Index j = j0; j < j1; ++j) {
        for (Index i = i0; i < i1; ++i) f(i, j);
      }
    }
  }
}

// Decodes the big-endian values of `array`, row-major [N, d], into the column-major N × d `x`.
template <class Decode>
void decode_rows(const IdxArray& array, Decode decode, Eigen::MatrixXd& x) {
  const Index d = x.cols();
  const std::size_t value_bytes = array.type.bytes;
  const unsigned char* bytes = array.bytes.data();
  for_each_in_tiles(x.rows(), d, [&](Index i, Index j) {
    x(i, j) = decode(bytes + static_cast<std::size_t>(i * d + j) * value_bytes);
  });
}

// The values of `array` as an N × d matrix, N the first dimension, d the product of the others.
Eigen::MatrixXd idx_matrix(const IdxArray& array) {
  std::uint64_t d = 1;
  for (std::size_t k = 1; k < array.dims.size(); ++k) d *= array.dims[k];
  Eigen::MatrixXd x;
  resize_for_writing(x, static_cast<Index>(array.dims[0]), static_cast<Index>(d));
  switch (array.type.code) {
    case 0x08:
      decode_rows(array, [](const unsigned char* p) { return static_cast<double>(p[0]); }, x);
      break;
    case 0x09:
      decode_rows(array, [](const unsigned char* p) {
        return static_cast<double>(static_cast<std::int8_t>(p[0]));
      }, x);
      break;
    case 0x0B:
      decode_rows(array, [](const unsigned char* p) {
        return static_cast<double>(static_cast<std::int16_t>((p[0] << 8) | p[1]));
      }, x);
      break;
    case 0x0C:
      decode_rows(array, [](const unsigned char* p) {
        return static_cast<double>(static_cast<std::int32_t>(big_endian_32(p)));
      }, x);
      break;
    case 0x0D:
      decode_rows(array, [](const unsigned char* p) {
        return static_cast<double>(std::bit_cast<float>(big_endian_32(p)));
      }, x);
      break;
    case 0x0E:
      decode_rows(array, [](const unsigned char* p) {
        return std::bit_cast<double>(big_endian_64(p));
      }, x);
      break;
    default: assert(false && "IDX type codes are checked by read_idx");
  }
  return x;
}

// ---- CSV ----------------------------------------------------------------------------------------

// The common number of fields of every row (DataFileError at the first row that differs).
std::size_t row_width(const CsvTable& table, const std::string& path) {
  const std::size_t width = table.rows.front().size();
  for (std::size_t i = 1; i < table.rows.size(); ++i) {
    if (table.rows[i].size() != width) {
      throw DataFileError(path, table.lines[i],
                          fmt::format("{}:{}: expected {} fields (as on line {}), found {}", path,
                                      table.lines[i], width, table.lines.front(),
                                      table.rows[i].size()));
    }
  }
  return width;
}

// ---- validation and preparation -------------------------------------------------------------

enum class Kind { none, labels, targets };

Kind kind_of(const ExampleTable& t) {
  if (!t.labels.empty()) return Kind::labels;
  if (t.targets.rows() > 0) return Kind::targets;
  return Kind::none;
}

std::string_view kind_text(Kind kind) {
  switch (kind) {
    case Kind::labels: return "class labels";
    case Kind::targets: return "target vectors";
    default: return "no labels or targets";
  }
}

// The first non-finite entry in example (row) order, or -1 when all are finite.
std::pair<Index, Index> first_non_finite(const Eigen::MatrixXd& m) {
  // The common case at memory speed: a value is finite unless its exponent bits are all set.
  constexpr std::uint64_t exponent = 0x7FF0000000000000ULL;
  const double* values = m.data();
  bool finite = true;
  for (Index k = 0; k < m.size(); ++k) {
    finite &= (std::bit_cast<std::uint64_t>(values[k]) & exponent) != exponent;
  }
  if (finite) return {-1, -1};
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) {
      if (!std::isfinite(m(i, j))) return {i, j};
    }
  }
  return {-1, -1};
}

// Checks what does not depend on the other table: sizes, finiteness, label integrality.
void check_table(const ExampleTable& t, Index n_in, Index n_out) {
  const Index n = t.x.rows();
  assert(t.labels.empty() || static_cast<Index>(t.labels.size()) == n);
  assert(t.targets.size() == 0 || t.targets.rows() == n);
  assert(t.labels.empty() || t.targets.size() == 0);
  assert(t.lines.empty() || static_cast<Index>(t.lines.size()) == n);
  if (n == 0) throw DataFileError(t.file, 0, fmt::format("{}: no examples", t.file));
  if (t.x.cols() != n_in) {
    throw DataFileError(t.file, 0, fmt::format("{}: {} features per example, but the network has "
                                               "{} input neurons", t.file, t.x.cols(), n_in));
  }
  if (const auto [i, j] = first_non_finite(t.x); i >= 0) {
    throw DataFileError(t.file, line_of(t.lines, i),
                        fmt::format("{}, feature {} is {} (values must be finite)",
                                    example_where(t.file, t.lines, i), j, value_text(t.x(i, j))));
  }
  const Kind kind = kind_of(t);
  if (kind == Kind::targets) {
    const Index k = t.targets.cols();
    if (k == 0 || k > n_out) {
      throw DataFileError(t.label_file, 0, fmt::format("{}: {} target values per example, but the "
                                                       "network has {} output neurons (allowed: 1 "
                                                       "to {})", t.label_file, k, n_out, n_out));
    }
    if (const auto [i, j] = first_non_finite(t.targets); i >= 0) {
      throw DataFileError(t.label_file, line_of(t.label_lines, i),
                          fmt::format("{}, target {} is {} (values must be finite)",
                                      example_where(t.label_file, t.label_lines, i), j,
                                      value_text(t.targets(i, j))));
    }
  }
  if (kind == Kind::labels) {
    for (Index i = 0; i < n; ++i) {
      const double label = t.labels[static_cast<std::size_t>(i)];
      const bool integer = std::isfinite(label) && label == std::floor(label);
      const char* problem = !integer ? "is not an integer" : label < 0 ? "is negative" : nullptr;
      if (problem != nullptr) {
        throw DataFileError(t.label_file, line_of(t.label_lines, i),
                            fmt::format("{}: label {} {} (class labels are 0, 1, 2, …)",
                                        example_where(t.label_file, t.label_lines, i),
                                        value_text(label), problem));
      }
    }
  }
}

// Checks that every label is below `limit`; `allowed` says so in words ("data.classes = 10
// allows 0 to 9").
void check_label_range(const ExampleTable& t, double limit, const std::string& allowed) {
  for (std::size_t i = 0; i < t.labels.size(); ++i) {
    if (t.labels[i] >= limit) {
      const auto example = static_cast<Index>(i);
      throw DataFileError(t.label_file, line_of(t.label_lines, example),
                          fmt::format("{}: label {} is out of range ({})",
                                      example_where(t.label_file, t.label_lines, example),
                                      value_text(t.labels[i]), allowed));
    }
  }
}

// dst(j, c) = scale · src(rows[c], j): examples (rows of src) become columns of dst.
void gather_columns(const Eigen::MatrixXd& src, const std::vector<long>& rows, double scale,
                    Eigen::Ref<Eigen::MatrixXd> dst) {
  for_each_in_tiles(dst.cols(), dst.rows(), [&](Index c, Index j) {
    dst(j, c) = scale * src(rows[static_cast<std::size_t>(c)], j);
  });
}

struct TargetRule {
  Kind kind = Kind::none;
  bool one_hot = true;
  Index n_out = 0;
};

ExampleSet build_set(const ExampleTable& t, std::vector<long> rows, double scale,
                     const TargetRule& rule) {
  ExampleSet set;
  set.source = t.file;
  const auto n = static_cast<Index>(rows.size());
  resize_for_writing(set.inputs, t.x.cols(), n);
  gather_columns(t.x, rows, scale, set.inputs);
  switch (rule.kind) {
    case Kind::none: set.targets.resize(0, n); break;
    case Kind::targets:
      set.targets = Eigen::MatrixXd::Zero(rule.n_out, n);
      gather_columns(t.targets, rows, 1.0, set.targets.topRows(t.targets.cols()));
      break;
    case Kind::labels:
      set.targets = Eigen::MatrixXd::Zero(rule.n_out, n);
      set.labels.resize(rows.size());
      for (Index c = 0; c < n; ++c) {
        const int label = static_cast<int>(t.labels[static_cast<std::size_t>(rows[c])]);
        set.labels[static_cast<std::size_t>(c)] = label;
        if (rule.one_hot) {
          set.targets(label, c) = 1.0;
        } else {
          set.targets(0, c) = label;
        }
      }
      break;
  }
  set.index = std::move(rows);
  set.crc32 = example_crc32(set.inputs, set.targets);
  return set;
}

// Keeps the first `count` examples of a table (all when it has fewer).
void first_examples(ExampleTable& table, long count) {
  const Index n = std::min<Index>(table.x.rows(), count);
  table.x = table.x.topRows(n).eval();
  if (!table.labels.empty()) table.labels.resize(static_cast<std::size_t>(n));
  if (table.targets.size() > 0) table.targets = table.targets.topRows(n).eval();
  if (!table.lines.empty()) table.lines.resize(static_cast<std::size_t>(n));
  if (!table.label_lines.empty()) table.label_lines.resize(static_cast<std::size_t>(n));
}

std::vector<long> all_rows(Index n) {
  std::vector<long> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), 0L);
  return rows;
}

}  // namespace

// ---- readers ------------------------------------------------------------------------------------

DataFormat data_format(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // HDF5 is tested before stripping ".gz": the HDF5 library cannot read a gzipped file.
  if (ends_with(name, ".h5") || ends_with(name, ".hdf5")) return DataFormat::hdf5;
  if (ends_with(name, ".gz")) name.resize(name.size() - 3);
  if (ends_with(name, ".csv") || ends_with(name, ".txt")) return DataFormat::csv;
  if (ends_with(name, "-ubyte") || ends_with(name, ".idx")) return DataFormat::idx;
  throw DataFileError(path, 0,
                      fmt::format("{}: cannot tell the data format from the file name (accepted: "
                                  ".csv or .txt for CSV, *-ubyte or .idx for IDX, each also with "
                                  ".gz; .h5 or .hdf5 for HDF5)", path));
}

ExampleTable read_idx_examples(const std::string& images, const std::string& labels) {
  ExampleTable table;
  table.file = images;
  {
    const IdxArray array = read_idx(images);
    table.x = idx_matrix(array);
    if (array.type.code == 0x08) table.default_scale = 1.0 / 255.0;
  }
  if (labels.empty()) return table;
  table.label_file = labels;
  const IdxArray array = read_idx(labels);
  if (array.dims.size() != 1) {
    throw DataFileError(labels, 0, fmt::format("{}: labels must be a 1-d IDX file, found "
                                               "dimensions {}", labels, array.shape_text()));
  }
  if (static_cast<Index>(array.dims[0]) != table.x.rows()) {
    throw DataFileError(labels, 0, fmt::format("{}: {} labels for the {} examples of {}", labels,
                                               array.dims[0], table.x.rows(), images));
  }
  const Eigen::MatrixXd values = idx_matrix(array);
  table.labels.assign(values.data(), values.data() + values.size());
  return table;
}

ExampleTable read_csv_examples(const std::string& features, const std::string& labels_file,
                               bool labels_are_targets, bool label_in_last_column) {
  assert(!(label_in_last_column && !labels_file.empty()) && "one source of labels");
  ExampleTable table;
  table.file = features;
  const CsvTable csv = read_csv(features);
  const std::size_t width = row_width(csv, features);
  if (label_in_last_column && width < 2) {
    throw DataFileError(features, csv.lines.front(),
                        fmt::format("{}:{}: 1 field per line, but a label in the last column needs "
                                    "at least 2", features, csv.lines.front()));
  }
  const auto n = static_cast<Index>(csv.rows.size());
  const auto d = static_cast<Index>(label_in_last_column ? width - 1 : width);
  table.x.resize(n, d);
  for (Index i = 0; i < n; ++i) {
    const auto& row = csv.rows[static_cast<std::size_t>(i)];
    for (Index j = 0; j < d; ++j) table.x(i, j) = row[static_cast<std::size_t>(j)];
  }
  table.lines = csv.lines;
  if (label_in_last_column) {
    table.label_file = features;
    for (const auto& row : csv.rows) table.labels.push_back(row.back());
    table.label_lines = csv.lines;
    return table;
  }
  if (labels_file.empty()) return table;
  table.label_file = labels_file;
  const CsvTable given = read_csv(labels_file);
  const std::size_t k = row_width(given, labels_file);
  if (!labels_are_targets && k != 1) {
    throw DataFileError(labels_file, given.lines.front(),
                        fmt::format("{}:{}: expected one class label per line, found {} fields",
                                    labels_file, given.lines.front(), k));
  }
  if (static_cast<Index>(given.rows.size()) != n) {
    throw DataFileError(labels_file, 0,
                        fmt::format("{}: {} {} for the {} examples of {}", labels_file,
                                    given.rows.size(),
                                    labels_are_targets ? "target rows" : "labels", n, features));
  }
  if (labels_are_targets) {
    table.targets.resize(n, static_cast<Index>(k));
    for (Index i = 0; i < n; ++i) {
      const auto& row = given.rows[static_cast<std::size_t>(i)];
      for (std::size_t j = 0; j < k; ++j) table.targets(i, static_cast<Index>(j)) = row[j];
    }
  } else {
    for (const auto& row : given.rows) table.labels.push_back(row.front());
  }
  table.label_lines = given.lines;
  return table;
}

// ---- preparation --------------------------------------------------------------------------------

std::uint32_t example_crc32(const Eigen::MatrixXd& inputs, const Eigen::MatrixXd& targets) {
  // The checksum is defined over little-endian float64 bytes; on such a machine they are the
  // bytes in memory.
  static_assert(std::endian::native == std::endian::little);
  uLong crc = crc32_z(0L, Z_NULL, 0);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(inputs.data()),
                static_cast<std::size_t>(inputs.size()) * sizeof(double));
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(targets.data()),
                static_cast<std::size_t>(targets.size()) * sizeof(double));
  return static_cast<std::uint32_t>(crc);
}

DataSet make_data_set(std::string name, ExampleTable train, std::optional<ExampleTable> test,
                      const DataOptions& options, double default_scale, Index n_in, Index n_out) {
  // The config reader validates these; a caller that builds DataOptions itself must too.
  assert(std::isnan(options.scale) || (std::isfinite(options.scale) && options.scale > 0));
  assert(options.test_fraction >= 0 && options.test_fraction < 1);
  assert(options.classes >= 0 && options.limit >= 0);

  if (options.limit > 0) {
    first_examples(train, options.limit);
    if (test) first_examples(*test, options.limit);
  }
  check_table(train, n_in, n_out);
  {
    // Scaled values must stay finite, like the values read (a huge data.scale made them inf).
    const double scale = std::isnan(options.scale) ? default_scale : options.scale;
    double largest = train.x.size() > 0 ? train.x.cwiseAbs().maxCoeff() : 0.0;
    if (test && test->x.size() > 0) largest = std::max(largest, test->x.cwiseAbs().maxCoeff());
    if (!std::isfinite(largest * scale)) {
      throw ConfigError("data.scale", "",
                        fmt::format("data.scale: {} times the largest feature value {} of {} is "
                                    "not finite (scaled values must be finite)", scale, largest,
                                    train.file));
    }
  }
  const Kind kind = kind_of(train);
  if (test) {
    check_table(*test, n_in, n_out);
    if (kind_of(*test) != kind) {
      throw DataFileError(test->file, 0, fmt::format("{}: gives {}, but the training file {} gives "
                                                     "{}", test->file, kind_text(kind_of(*test)),
                                                     train.file, kind_text(kind)));
    }
    if (kind == Kind::targets && test->targets.cols() != train.targets.cols()) {
      throw DataFileError(test->label_file, 0,
                          fmt::format("{}: {} target values per example, but {} has {}",
                                      test->label_file, test->targets.cols(), train.label_file,
                                      train.targets.cols()));
    }
  }

  DataSet data;
  data.name = std::move(name);
  data.has_labels = kind == Kind::labels;
  if (kind == Kind::targets) {
    if (options.classes > 0) {
      throw ConfigError("data.classes", "",
                        fmt::format("data.classes = {} applies to class labels, but {} gives "
                                    "target vectors", options.classes, train.label_file));
    }
    data.error_rows = train.targets.cols();
  }
  if (kind == Kind::labels) {
    // Labels become one-hot rows (or the single target row): bound them before they index.
    double limit = static_cast<double>(INT_MAX) + 1.0;
    std::string allowed = fmt::format("class labels are stored as int: 0 to {}", INT_MAX);
    if (!options.one_hot && n_out < 1) {
      throw DataFileError(train.label_file, 0, fmt::format("{}: class labels as targets need an "
                                                           "output neuron, the network has none",
                                                           train.label_file));
    }
    if (options.classes > 0) {
      if (options.one_hot && options.classes > n_out) {
        throw ConfigError("data.classes", "",
                          fmt::format("data.classes = {} exceeds the {} output neurons",
                                      options.classes, n_out));
      }
      limit = static_cast<double>(options.classes);
      allowed = fmt::format("data.classes = {} allows 0 to {}", options.classes,
                            options.classes - 1);
    } else if (options.one_hot) {
      limit = static_cast<double>(n_out);
      allowed = fmt::format("the {} output neurons allow 0 to {}", n_out, n_out - 1);
    }
    check_label_range(train, limit, allowed);
    if (test) check_label_range(*test, limit, allowed);
    long classes = options.classes;
    if (classes == 0) {
      double top = *std::max_element(train.labels.begin(), train.labels.end());
      if (test) top = std::max(top, *std::max_element(test->labels.begin(), test->labels.end()));
      classes = static_cast<long>(top) + 1;
    }
    data.error_rows = options.one_hot ? classes : 1;
  }

  const double scale = std::isnan(options.scale) ? default_scale : options.scale;
  const TargetRule rule{kind, options.one_hot, n_out};
  const Index n = train.x.rows();
  if (test) {
    data.train = build_set(train, all_rows(n), scale, rule);
    data.test = build_set(*test, all_rows(test->x.rows()), scale, rule);
    return data;
  }
  // Held out from the training file: llround rounds halves away from zero (1797 · 0.2 → 359).
  const auto n_test =
      static_cast<Index>(std::llround(static_cast<double>(n) * options.test_fraction));
  if (n_test == n) {
    throw ConfigError("data.test_fraction", "",
                      fmt::format("data.test_fraction = {} holds out all {} examples of {}, "
                                  "leaving none for training", options.test_fraction, n,
                                  train.file));
  }
  std::vector<long> order = all_rows(n);
  if (n_test > 0) {
    Random rng(derive_seed(options.split_seed, split_stream));
    const std::vector<std::size_t> permutation = random_permutation(static_cast<std::size_t>(n), rng);
    order.assign(permutation.begin(), permutation.end());
  }
  std::vector<long> test_rows(order.begin(), order.begin() + n_test);
  std::vector<long> train_rows(order.begin() + n_test, order.end());
  std::sort(test_rows.begin(), test_rows.end());
  std::sort(train_rows.begin(), train_rows.end());
  data.train = build_set(train, std::move(train_rows), scale, rule);
  data.test = build_set(train, std::move(test_rows), scale, rule);
  return data;
}

}  // namespace lf
