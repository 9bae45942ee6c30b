// Data sets: IDX, CSV and HDF5 files written here by independent encoders and read back to the
// exact values; validation messages pinned word for word; one-hot targets, scale, the split and
// the crc32 checked against what they must be; the [data] config table; the built-in data sets.
#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "outputs/h5file.hpp"
#include "sim/core/csv.hpp"
#include "sim/core/dataset.hpp"
#include "sim/core/errors.hpp"
#include "sim/data.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

using Bytes = std::vector<unsigned char>;

void put_big_endian(Bytes& out, std::uint64_t value, int bytes) {
  for (int k = bytes - 1; k >= 0; --k) out.push_back(static_cast<unsigned char>(value >> (8 * k)));
}

// An IDX file, encoded here independently of the reader: magic 0x0000TTNN, sizes, values.
Bytes idx_file(unsigned char type, const std::vector<std::uint32_t>& dims,
               const std::vector<double>& values) {
  Bytes out = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (const std::uint32_t d : dims) put_big_endian(out, d, 4);
  for (const double v : values) {
    switch (type) {
      case 0x08: out.push_back(static_cast<unsigned char>(v)); break;
      case 0x09: out.push_back(static_cast<unsigned char>(static_cast<std::int8_t>(v))); break;
      case 0x0B:
        put_big_endian(out, static_cast<std::uint16_t>(static_cast<std::int16_t>(v)), 2);
        break;
      case 0x0C:
        put_big_endian(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)), 4);
        break;
      case 0x0D: put_big_endian(out, std::bit_cast<std::uint32_t>(static_cast<float>(v)), 4); break;
      case 0x0E: put_big_endian(out, std::bit_cast<std::uint64_t>(v), 8); break;
      default: FAIL("bad type in test");
    }
  }
  return out;
}

std::string write_file(const TempDir& dir, const std::string& name, const Bytes& bytes) {
  const std::string path = (dir.path() / name).string();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string write_gzip(const TempDir& dir, const std::string& name, const Bytes& bytes) {
  const std::string path = (dir.path() / name).string();
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  gzclose(f);
  return path;
}

Bytes text_bytes(const std::string& text) { return Bytes(text.begin(), text.end()); }

// The message of the InputError that `action` throws.
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const InputError& e) {
    return e.what();
  }
  FAIL("no error thrown");
  return {};
}

// An HDF5 dataset written with the C API: `file_type` on disk, `data` in `mem_type`.
void write_h5(hid_t file, const char* name, hid_t mem_type, hid_t file_type,
              const std::vector<hsize_t>& dims, const void* data) {
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t set = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(set >= 0);
  REQUIRE(H5Dwrite(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  H5Dclose(set);
  H5Sclose(space);
}

std::string h5_file(const TempDir& dir, const std::string& name,
                    const std::function<void(hid_t)>& fill) {
  const std::string path = (dir.path() / name).string();
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(file >= 0);
  fill(file);
  H5Fclose(file);
  return path;
}

// A table of N examples of d features with labels, as a reader would give it.
ExampleTable table_of(const std::vector<std::vector<double>>& rows,
                      const std::vector<double>& labels, const std::string& file = "mem.csv") {
  ExampleTable t;
  t.file = file;
  t.label_file = labels.empty() ? "" : file;
  t.x.resize(static_cast<Eigen::Index>(rows.size()),
             static_cast<Eigen::Index>(rows.front().size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t j = 0; j < rows[i].size(); ++j)
      t.x(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = rows[i][j];
  }
  t.labels = labels;
  return t;
}

// zlib's crc32 over the examples as a row-major [N, d] float64 array (then the targets as
// [N, n_out]), built from the source table, not from the set's own storage.
std::uint32_t independent_crc(const ExampleTable& t, const std::vector<long>& rows, double scale,
                              const Eigen::MatrixXd& expected_targets) {
  std::vector<double> values;
  for (const long r : rows) {
    for (Eigen::Index j = 0; j < t.x.cols(); ++j) values.push_back(scale * t.x(r, j));
  }
  for (Eigen::Index c = 0; c < expected_targets.cols(); ++c) {
    for (Eigen::Index j = 0; j < expected_targets.rows(); ++j)
      values.push_back(expected_targets(j, c));
  }
  std::vector<unsigned char> bytes;
  for (const double v : values) {
    const auto bits = std::bit_cast<std::uint64_t>(v);
    for (int k = 0; k < 8; ++k) bytes.push_back(static_cast<unsigned char>(bits >> (8 * k)));  // LE
  }
  return static_cast<std::uint32_t>(crc32(0L, bytes.data(), static_cast<uInt>(bytes.size())));
}

// Reads [data] from TOML text written to `dir` (relative paths resolve there).
DataSpec spec_of(const TempDir& dir, const std::string& toml, std::uint64_t seed = 7) {
  const std::string path = dir.file("exp.toml", toml);
  const toml::table root = toml::parse_file(path);
  const ConfigSection top(root, "", path);
  return read_data_spec(top.section("data"), seed);
}

}  // namespace

TEST_CASE("data: the format follows the file name") {
  CHECK(data_format("a/b.csv") == DataFormat::csv);
  CHECK(data_format("b.CSV.gz") == DataFormat::csv);
  CHECK(data_format("b.txt") == DataFormat::csv);
  CHECK(data_format("x.h5") == DataFormat::hdf5);
  CHECK(data_format("x.hdf5") == DataFormat::hdf5);
  CHECK(data_format("/d/train-images-idx3-ubyte.gz") == DataFormat::idx);
  CHECK(data_format("train-labels.idx1-ubyte") == DataFormat::idx);
  CHECK(data_format("x.idx") == DataFormat::idx);
  const std::string accepted = ": cannot tell the data format from the file name (accepted: .csv "
                               "or .txt for CSV, *-ubyte or .idx for IDX, each also with .gz; .h5 "
                               "or .hdf5 for HDF5)";
  CHECK(error_of([] { data_format("x.dat"); }) == "x.dat" + accepted);
  CHECK(error_of([] { data_format("x.h5.gz"); }) ==
        "x.h5.gz" + accepted);  // HDF5 cannot be gzipped
}

TEST_CASE("data: IDX files of every type, plain and gzipped, read back exactly") {
  TempDir dir;
  // 3 images of 2 × 2 uint8 pixels, and their labels: the MNIST layout.
  const std::vector<double> pixels = {0, 1, 2, 255, 10, 20, 30, 40, 128, 127, 254, 3};
  const Bytes images = idx_file(0x08, {3, 2, 2}, pixels);
  const Bytes labels = idx_file(0x08, {3}, {7, 0, 9});
  for (const bool gz : {false, true}) {
    CAPTURE(gz);
    const std::string im =
        gz ? write_gzip(dir, "im-idx3-ubyte.gz", images) : write_file(dir, "im-idx3-ubyte", images);
    const std::string lb =
        gz ? write_gzip(dir, "lb-idx1-ubyte.gz", labels) : write_file(dir, "lb-idx1-ubyte", labels);
    const ExampleTable t = read_idx_examples(im, lb);
    REQUIRE(t.x.rows() == 3);
    REQUIRE(t.x.cols() == 4);
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 4; ++j) CHECK(t.x(i, j) == pixels[static_cast<std::size_t>(4 * i + j)]);
    }
    CHECK(t.labels == std::vector<double>{7, 0, 9});
    CHECK(t.label_file == lb);
    CHECK(t.default_scale == 1.0 / 255.0);
    CHECK(t.lines.empty());
  }
  // Signed and wider types, big-endian; a 1-d file is N examples of one value.
  const std::vector<double> small = {-128, -1, 0, 127};
  CHECK(read_idx_examples(write_file(dir, "s.idx", idx_file(0x09, {2, 2}, small)), "").x ==
        Eigen::Map<const RowMatrix>(small.data(), 2, 2));
  const std::vector<double> shorts = {-32768, -2, 300, 32767, 1, 0};
  CHECK(read_idx_examples(write_file(dir, "h.idx", idx_file(0x0B, {3, 2}, shorts)), "").x ==
        Eigen::Map<const RowMatrix>(shorts.data(), 3, 2));
  const std::vector<double> ints = {-2147483648.0, 2147483647.0, -70000, 65536};
  CHECK(read_idx_examples(write_file(dir, "i.idx", idx_file(0x0C, {1, 2, 2}, ints)), "").x ==
        Eigen::Map<const RowMatrix>(ints.data(), 1, 4));
  const std::vector<double> floats = {-1.5, 0.1, 3e38, 1e-3, 0.0, -0.25};
  const ExampleTable tf =
      read_idx_examples(write_gzip(dir, "f.idx.gz", idx_file(0x0D, {2, 3}, floats)), "");
  for (int k = 0; k < 6; ++k) {
    CHECK(tf.x(k / 3, k % 3) ==
          static_cast<double>(static_cast<float>(floats[static_cast<std::size_t>(k)])));
  }
  CHECK(tf.default_scale == 1.0);  // only uint8 data has a known range
  const std::vector<double> doubles = {0.1, -1e300};
  const ExampleTable td =
      read_idx_examples(write_file(dir, "d.idx", idx_file(0x0E, {2}, doubles)), "");
  CHECK(td.x.cols() == 1);
  CHECK(td.x(0, 0) == 0.1);
  CHECK(td.x(1, 0) == -1e300);
  CHECK(td.labels.empty());
  CHECK(td.label_file.empty());
}

TEST_CASE("data: bad IDX files are errors naming the file") {
  TempDir dir;
  const std::vector<double> pixels(12, 5.0);
  const std::string missing = (dir.path() / "none-ubyte").string();
  CHECK(error_of([&] { read_idx_examples(missing, ""); }) == missing + ": cannot open file");

  Bytes bad_magic = idx_file(0x08, {3, 2, 2}, pixels);
  bad_magic[0] = 0x12;
  bad_magic[1] = 0x34;
  const std::string m = write_file(dir, "magic-ubyte", bad_magic);
  CHECK(error_of([&] { read_idx_examples(m, ""); }) ==
        m + ": not an IDX file: magic number 0x12340803 does not start with two zero bytes (IDX: "
            "0x0000TTNN, type code TT, NN dimensions)");
  Bytes bad_type = idx_file(0x08, {3, 2, 2}, pixels);
  bad_type[2] = 0x0A;
  const std::string ty = write_file(dir, "type-ubyte", bad_type);
  CHECK(error_of([&] { read_idx_examples(ty, ""); }) ==
        ty + ": unknown IDX type code 0x0A in magic number 0x00000A03 (allowed: 0x08 ubyte, 0x09 "
             "sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E double)");
  const std::string zero = write_file(dir, "zero-ubyte", {0, 0, 8, 0});
  CHECK(error_of([&] { read_idx_examples(zero, ""); }) ==
        zero + ": IDX magic number 0x00000800 gives 0 dimensions (at least 1 required)");
  const std::string header = write_file(dir, "header-ubyte", {0, 0, 8, 3, 0, 0, 0, 3, 0});
  CHECK(error_of([&] { read_idx_examples(header, ""); }) ==
        header + ": truncated IDX header: 3 dimension sizes announced, the file ends after 5 bytes "
                 "of them");

  Bytes full = idx_file(0x08, {3, 2, 2}, pixels);
  const Bytes cut(full.begin(), full.end() - 2);
  for (const bool gz : {false, true}) {
    const std::string t =
        gz ? write_gzip(dir, "cut-ubyte.gz", cut) : write_file(dir, "cut-ubyte", cut);
    CHECK(error_of([&] { read_idx_examples(t, ""); }) ==
          t + ": truncated: the header announces [3, 2, 2] ubyte values (12 bytes), the file holds "
              "only 10");
  }
  const Bytes floats = idx_file(0x0D, {3, 2}, {1, 2, 3, 4, 5, 6});
  const std::string tf = write_file(dir, "cut.idx", Bytes(floats.begin(), floats.end() - 1));
  CHECK(error_of([&] { read_idx_examples(tf, ""); }) ==
        tf + ": truncated: the header announces [3, 2] float values (24 bytes), the file holds "
             "only 23");
  Bytes longer = full;
  longer.push_back(1);
  longer.push_back(2);
  const std::string tr = write_gzip(dir, "long-ubyte.gz", longer);
  CHECK(error_of([&] { read_idx_examples(tr, ""); }) ==
        tr + ": 2 bytes after the [3, 2, 2] ubyte values the header announces (expected the file "
             "to end there)");
  // A header announcing more than the file could hold is a truncation, not an allocation.
  const std::string huge = write_file(dir, "huge-ubyte", {0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF,
                                                          0x00, 0x00, 0xFF, 0xFF, 1, 2});
  CHECK(error_of([&] { read_idx_examples(huge, ""); }) ==
        huge +
            ": truncated: the header announces [4294967295, 65535] ubyte values (281470681677825 "
            "bytes), the file holds only 2");

  const std::string im = write_file(dir, "im-ubyte", full);
  const std::string two = write_file(dir, "two-ubyte", idx_file(0x08, {2}, {1, 2}));
  CHECK(error_of([&] { read_idx_examples(im, two); }) ==
        two + ": 2 labels for the 3 examples of " + im);
  const std::string wide =
      write_file(dir, "wide-ubyte", idx_file(0x08, {3, 2}, {1, 2, 3, 4, 5, 6}));
  CHECK(error_of([&] { read_idx_examples(im, wide); }) ==
        wide + ": labels must be a 1-d IDX file, found dimensions [3, 2]");
}

TEST_CASE("data: read_csv reads gzipped files as their content") {
  TempDir dir;
  const std::string text = "a,b\n1,2\n# note\n\n3,4.5\n";
  const CsvTable plain = read_csv(dir.file("t.csv", text));
  const CsvTable gz = read_csv(write_gzip(dir, "t.csv.gz", text_bytes(text)));
  CHECK(gz.rows == plain.rows);
  CHECK(gz.rows == std::vector<std::vector<double>>{{1, 2}, {3, 4.5}});
  CHECK(gz.lines == std::vector<long>{2, 5});
  const std::string bad = write_gzip(dir, "bad.csv.gz", text_bytes("1,2\n3,x\n"));
  CHECK(error_of([&] { read_csv(bad); }) == bad + ":2: field 2 is not a finite number: 'x'");
  // A gzip stream cut short loses rows: an error, not a shorter table.
  std::string many;
  for (int i = 0; i < 2000; ++i)
    many += std::to_string(i) + "," + std::to_string(i * 7 % 13) + "\n";
  const std::string whole = write_gzip(dir, "whole.csv.gz", text_bytes(many));
  std::ifstream in(whole, std::ios::binary);
  Bytes compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = write_file(
      dir, "cut.csv.gz", Bytes(compressed.begin(), compressed.begin() + compressed.size() / 2));
  CHECK(error_of([&] { read_csv(cut); }) == cut + ": cannot read: unexpected end of file");
}

TEST_CASE("data: CSV examples with a labels file, a targets file or a label column") {
  TempDir dir;
  const std::string x = dir.file("x.csv", "f1,f2\n1,2\n3,4\n\n5,6\n");
  const std::string y = dir.file("y.csv", "2\n0\n1\n");
  const ExampleTable t = read_csv_examples(x, y, false, false);
  CHECK(t.x == (Eigen::MatrixXd(3, 2) << 1, 2, 3, 4, 5, 6).finished());
  CHECK(t.labels == std::vector<double>{2, 0, 1});
  CHECK(t.lines == std::vector<long>{2, 3, 5});
  CHECK(t.label_lines == std::vector<long>{1, 2, 3});
  CHECK(t.label_file == y);
  CHECK(t.targets.size() == 0);

  const std::string z = write_gzip(dir, "z.csv.gz", text_bytes("0.5,-1\n0,0\n1,1\n"));
  const ExampleTable tt = read_csv_examples(x, z, true, false);
  CHECK(tt.targets == (Eigen::MatrixXd(3, 2) << 0.5, -1, 0, 0, 1, 1).finished());
  CHECK(tt.labels.empty());

  const std::string xy = write_gzip(dir, "xy.csv.gz", text_bytes("1,2,9\n3,4,8\n"));
  const ExampleTable tc = read_csv_examples(xy, "", false, true);
  CHECK(tc.x == (Eigen::MatrixXd(2, 2) << 1, 2, 3, 4).finished());
  CHECK(tc.labels == std::vector<double>{9, 8});
  CHECK(tc.label_file == xy);
  CHECK(tc.label_lines == std::vector<long>{1, 2});

  const ExampleTable features_only = read_csv_examples(x, "", false, false);
  CHECK(features_only.labels.empty());
  CHECK(features_only.label_file.empty());

  const std::string short_y = dir.file("short.csv", "1\n2\n");
  CHECK(error_of([&] { read_csv_examples(x, short_y, false, false); }) ==
        short_y + ": 2 labels for the 3 examples of " + x);
  CHECK(error_of([&] { read_csv_examples(x, short_y, true, false); }) ==
        short_y + ": 2 target rows for the 3 examples of " + x);
  const std::string ragged = dir.file("ragged.csv", "1,2\n3\n");
  CHECK(error_of([&] { read_csv_examples(ragged, "", false, false); }) ==
        ragged + ":2: expected 2 fields (as on line 1), found 1");
  const std::string pairs = dir.file("pairs.csv", "1,2\n3,4\n5,6\n");
  CHECK(error_of([&] { read_csv_examples(x, pairs, false, false); }) ==
        pairs + ":1: expected one class label per line, found 2 fields");
  const std::string single = dir.file("single.csv", "1\n2\n");
  CHECK(error_of([&] { read_csv_examples(single, "", false, true); }) ==
        single + ":1: 1 field per line, but a label in the last column needs at least 2");
}

TEST_CASE("data: HDF5 examples with /y or /targets, any numeric type") {
  TempDir dir;
  const std::vector<std::int32_t> xi = {1, -2, 3, 4, 5, 6};
  const std::vector<std::uint8_t> yi = {2, 0};
  const std::string labelled = h5_file(dir, "l.h5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_INT32, H5T_STD_I32BE, {2, 3}, xi.data());
    write_h5(f, "/y", H5T_NATIVE_UINT8, H5T_STD_U8LE, {2}, yi.data());
  });
  const ExampleTable t = read_hdf5_examples(labelled);
  CHECK(t.x == (Eigen::MatrixXd(2, 3) << 1, -2, 3, 4, 5, 6).finished());
  CHECK(t.labels == std::vector<double>{2, 0});
  CHECK(t.label_file == labelled);
  CHECK(t.lines.empty());

  const std::vector<float> xf = {0.5f, 0.25f, -1.0f};
  const std::vector<double> targets = {1, 0, 0.5, 0.1, 0.2, 0.3};
  const std::string targeted = h5_file(dir, "t.hdf5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, {3, 1}, xf.data());
    write_h5(f, "/targets", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, {3, 2}, targets.data());
  });
  const ExampleTable tt = read_hdf5_examples(targeted);
  CHECK(tt.x == (Eigen::MatrixXd(3, 1) << 0.5, 0.25, -1).finished());
  CHECK(tt.targets == Eigen::Map<const RowMatrix>(targets.data(), 3, 2));
  CHECK(tt.labels.empty());

  const std::string bare = h5_file(dir, "bare.h5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_INT32, H5T_STD_I32LE, {3, 2}, xi.data());
  });
  const ExampleTable tb = read_hdf5_examples(bare);
  CHECK(tb.x.rows() == 3);
  CHECK(tb.labels.empty());
  CHECK(tb.targets.size() == 0);
  CHECK(tb.label_file.empty());

  const std::string no_x = h5_file(dir, "nox.h5", [&](hid_t f) {
    write_h5(f, "/y", H5T_NATIVE_UINT8, H5T_STD_U8LE, {2}, yi.data());
  });
  CHECK(error_of([&] { read_hdf5_examples(no_x); }) ==
        no_x + ": no dataset /x (the features, [N, d])");
  const std::string both = h5_file(dir, "both.h5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_INT32, H5T_STD_I32LE, {3, 2}, xi.data());
    write_h5(f, "/y", H5T_NATIVE_UINT8, H5T_STD_U8LE, {2}, yi.data());
    write_h5(f, "/targets", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, {3, 2}, targets.data());
  });
  CHECK(error_of([&] { read_hdf5_examples(both); }) ==
        both + ": both /y (class labels) and /targets (target vectors); give one of them");
  const std::string rank = h5_file(dir, "rank.h5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_INT32, H5T_STD_I32LE, {6}, xi.data());
  });
  CHECK(error_of([&] { read_hdf5_examples(rank); }) ==
        rank + ": /x has rank 1 (shape [6]), expected rank 2: the features, [N, d]");
  const std::string count = h5_file(dir, "count.h5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_INT32, H5T_STD_I32LE, {3, 2}, xi.data());
    write_h5(f, "/y", H5T_NATIVE_UINT8, H5T_STD_U8LE, {2}, yi.data());
  });
  CHECK(error_of([&] { read_hdf5_examples(count); }) ==
        count + ": /y has 2 labels for the 3 examples of /x");
  const std::string tcount = h5_file(dir, "tcount.h5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_INT32, H5T_STD_I32LE, {2, 3}, xi.data());
    write_h5(f, "/targets", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, {3, 2}, targets.data());
  });
  CHECK(error_of([&] { read_hdf5_examples(tcount); }) ==
        tcount + ": /targets has 3 rows for the 2 examples of /x");
  const std::string not_h5 = dir.file("text.h5", "x\n");
  CHECK(error_of([&] { read_hdf5_examples(not_h5); }) == not_h5 + ": not a readable HDF5 file");

  // NaN in /x: found when the examples are validated, naming the example and the feature.
  const std::vector<double> xn = {0, 1, 2, 3, 4, std::numeric_limits<double>::quiet_NaN()};
  const std::string nan = h5_file(dir, "nan.h5", [&](hid_t f) {
    write_h5(f, "/x", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, {2, 3}, xn.data());
  });
  CHECK(error_of([&] {
          make_data_set("n", read_hdf5_examples(nan), std::nullopt, {}, 1.0, 3, 1);
        }) == nan + ": example 1, feature 2 is NaN (values must be finite)");
}

TEST_CASE("data: one-hot targets padded to the outputs, scale, and the crc32 of what is stored") {
  const ExampleTable train = table_of({{0, 16}, {8, 4}, {2, 2}}, {2, 0, 1});
  const ExampleTable test = table_of({{16, 16}}, {3}, "test.csv");
  DataOptions options;
  const DataSet d = make_data_set("t", train, test, options, 1.0 / 16.0, 2, 6);
  CHECK(d.has_labels);
  CHECK(d.error_rows == 4);  // classes = max label over train and test + 1
  CHECK(d.train.inputs == (Eigen::MatrixXd(2, 3) << 0, 0.5, 0.125, 1, 0.25, 0.125).finished());
  Eigen::MatrixXd onehot = Eigen::MatrixXd::Zero(6, 3);
  onehot(2, 0) = onehot(0, 1) = onehot(1, 2) = 1;
  CHECK(d.train.targets == onehot);
  CHECK(d.train.labels == std::vector<int>{2, 0, 1});
  CHECK(d.train.index == std::vector<long>{0, 1, 2});
  CHECK(d.train.source == "mem.csv");
  CHECK(d.test.size() == 1);
  CHECK(d.test.source == "test.csv");
  CHECK(d.test.targets.col(0) == (Eigen::VectorXd(6) << 0, 0, 0, 1, 0, 0).finished());
  CHECK(d.train.crc32 == independent_crc(train, {0, 1, 2}, 1.0 / 16.0, onehot));
  CHECK(d.test.crc32 == independent_crc(test, {0}, 1.0 / 16.0, d.test.targets));

  options.scale = 2.0;  // an explicit scale wins over the source's default
  options.classes = 5;
  const DataSet s = make_data_set("t", train, test, options, 1.0 / 16.0, 2, 6);
  CHECK(s.train.inputs == 2.0 * train.x.transpose());
  CHECK(s.error_rows == 5);
  CHECK(s.train.crc32 == independent_crc(train, {0, 1, 2}, 2.0, onehot));
  CHECK(s.train.crc32 != d.train.crc32);

  options.one_hot = false;  // the label itself is the (first) target row
  options.test_fraction = 0;
  const DataSet r = make_data_set("t", train, std::nullopt, options, 1.0, 2, 3);
  CHECK(r.error_rows == 1);
  CHECK(r.train.targets == (Eigen::MatrixXd(3, 3) << 2, 0, 1, 0, 0, 0, 0, 0, 0).finished());

  ExampleTable given = table_of({{1, 2}, {3, 4}}, {});  // target vectors, padded with zero rows
  given.targets = (Eigen::MatrixXd(2, 2) << 0.5, -1, 2, 3).finished();
  given.label_file = "targets.csv";
  DataOptions plain;
  plain.test_fraction = 0;
  const DataSet g = make_data_set("g", given, std::nullopt, plain, 1.0, 2, 3);
  CHECK_FALSE(g.has_labels);
  CHECK(g.error_rows == 2);
  CHECK(g.train.labels.empty());
  CHECK(g.train.targets == (Eigen::MatrixXd(3, 2) << 0.5, 2, -1, 3, 0, 0).finished());
  CHECK(g.test.size() == 0);
  CHECK(g.test.crc32 == 0);
  CHECK(g.train.crc32 == independent_crc(given, {0, 1}, 1.0, g.train.targets));

  const DataSet none = make_data_set("f", table_of({{1, 2}}, {}), std::nullopt, plain, 1.0, 2, 3);
  CHECK(none.error_rows == 0);
  CHECK(none.train.targets.rows() == 0);
  CHECK(none.train.targets.cols() == 1);
}

TEST_CASE("data: the held-out split is a seeded permutation, sorted, disjoint and complete") {
  std::vector<std::vector<double>> rows;
  std::vector<double> labels;
  for (int i = 0; i < 101; ++i) {
    rows.push_back({static_cast<double>(i), static_cast<double>(-i)});
    labels.push_back(i % 3);
  }
  const ExampleTable table = table_of(rows, labels);
  DataOptions options;
  options.test_fraction = 0.25;
  options.split_seed = 42;
  const DataSet a = make_data_set("s", table, std::nullopt, options, 1.0, 2, 3);
  CHECK(a.test.size() == 25);  // round(101 · 0.25) = round(25.25)
  CHECK(a.train.size() == 76);
  CHECK(std::is_sorted(a.train.index.begin(), a.train.index.end()));
  CHECK(std::is_sorted(a.test.index.begin(), a.test.index.end()));
  std::set<long> all(a.train.index.begin(), a.train.index.end());
  all.insert(a.test.index.begin(), a.test.index.end());
  CHECK(all.size() == 101);  // disjoint, and their union is every row
  CHECK(*all.begin() == 0);
  CHECK(*all.rbegin() == 100);
  for (Eigen::Index c = 0; c < a.test.size(); ++c) {  // each column is the row it names
    const long row = a.test.index[static_cast<std::size_t>(c)];
    CHECK(a.test.inputs(0, c) == row);
    CHECK(a.test.labels[static_cast<std::size_t>(c)] == row % 3);
  }
  const DataSet again = make_data_set("s", table, std::nullopt, options, 1.0, 2, 3);
  CHECK(again.test.index == a.test.index);
  CHECK(again.train.crc32 == a.train.crc32);
  options.split_seed = 43;
  const DataSet other = make_data_set("s", table, std::nullopt, options, 1.0, 2, 3);
  CHECK(other.test.size() == 25);
  CHECK(other.test.index != a.test.index);
  options.test_fraction = 0.0;
  const DataSet whole = make_data_set("s", table, std::nullopt, options, 1.0, 2, 3);
  CHECK(whole.train.size() == 101);
  CHECK(whole.test.size() == 0);

  options.test_fraction = 0.6;  // 1 example: round(0.6) = 1 leaves none to train on
  CHECK(error_of([&] {
          make_data_set("s", table_of({{1, 2}}, {0}), std::nullopt, options, 1.0, 2, 3);
        }) ==
        "data.test_fraction = 0.6 holds out all 1 examples of mem.csv, leaving none for training");
}

TEST_CASE("data: bad examples are errors naming the file, the example and what is allowed") {
  TempDir dir;
  const std::string x = dir.file("x.csv", "1,2\n3,4\n5,6\n");
  const auto load = [&](const std::string& labels_text, DataOptions options, long n_in,
                        long n_out) {
    const std::string y = dir.file("y.csv", labels_text);
    make_data_set("t", read_csv_examples(x, y, false, false), std::nullopt, options, 1.0, n_in,
                  n_out);
  };
  const std::string y = (dir.path() / "y.csv").string();
  CHECK(error_of([&] { load("0\n2.5\n1\n", {}, 2, 3); }) ==
        y + ":2: example 1: label 2.5 is not an integer (class labels are 0, 1, 2, …)");
  CHECK(error_of([&] { load("0\n1\n-1\n", {}, 2, 3); }) ==
        y + ":3: example 2: label -1 is negative (class labels are 0, 1, 2, …)");
  CHECK(error_of([&] { load("0\n3\n1\n", {}, 2, 3); }) ==
        y + ":2: example 1: label 3 is out of range (the 3 output neurons allow 0 to 2)");
  DataOptions three;
  three.classes = 3;
  CHECK(error_of([&] { load("0\n1\n3\n", three, 2, 10); }) ==
        y + ":3: example 2: label 3 is out of range (data.classes = 3 allows 0 to 2)");
  DataOptions twelve;
  twelve.classes = 12;
  try {
    load("0\n1\n2\n", twelve, 2, 10);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == "data.classes = 12 exceeds the 10 output neurons");
    CHECK(e.key() == "data.classes");
  }
  CHECK(error_of([&] { load("0\n1\n2\n", {}, 3, 3); }) ==
        x + ": 2 features per example, but the network has 3 input neurons");

  ExampleTable wide = table_of({{1}, {2}}, {});
  wide.targets = Eigen::MatrixXd::Zero(2, 4);
  wide.label_file = "t.csv";
  CHECK(
      error_of([&] { make_data_set("w", wide, std::nullopt, {}, 1.0, 1, 3); }) ==
      "t.csv: 4 target values per example, but the network has 3 output neurons (allowed: 1 to 3)");
  wide.targets(1, 2) = std::numeric_limits<double>::infinity();
  CHECK(error_of([&] { make_data_set("w", wide, std::nullopt, {}, 1.0, 1, 4); }) ==
        "t.csv: example 1, target 2 is inf (values must be finite)");
  DataOptions with_classes;
  with_classes.classes = 2;
  wide.targets(1, 2) = 0;
  CHECK(error_of([&] { make_data_set("w", wide, std::nullopt, with_classes, 1.0, 1, 4); }) ==
        "data.classes = 2 applies to class labels, but t.csv gives target vectors");
  CHECK(error_of([&] {
          make_data_set("w", table_of({{1}}, {0}), table_of({{1}}, {}, "u.csv"), {}, 1.0, 1, 4);
        }) ==
        "u.csv: gives no labels or targets, but the training file mem.csv gives class labels");
}

TEST_CASE("data: the [data] config table, its exclusions and its errors") {
  TempDir dir;
  dir.file("x.csv", "1,2,0\n3,4,1\n5,6,1\n7,8,0\n9,10,1\n");
  const DataSpec s = spec_of(dir, "[data]\ntrain = \"x.csv\"\nlabel_column = true\nscale = 0.5\n"
                                  "test_fraction = 0.4\nclasses = 2\n");
  CHECK(s.train == (dir.path() / "x.csv").string());  // relative to the config file
  CHECK(s.label_column);
  CHECK(s.options.scale == 0.5);
  CHECK(s.options.classes == 2);
  CHECK(s.options.split_seed == 7);  // the default given (network.seed)
  const DataSet d = load_data_set(s, 2, 2);
  CHECK(d.name == "x.csv");
  CHECK(d.train.size() == 3);
  CHECK(d.test.size() == 2);
  CHECK(d.error_rows == 2);
  const DataSet seeded = load_data_set(spec_of(dir,
                                               "[data]\ntrain = \"x.csv\"\nlabel_column = true\n"
                                               "test_fraction = 0.4\nsplit_seed = 7\n"),
                                       2, 2);
  CHECK(seeded.test.index == d.test.index);

  const std::string exp = (dir.path() / "exp.toml").string();
  const auto error = [&](const std::string& toml) {
    return error_of([&] { spec_of(dir, toml); });
  };
  CHECK(error("[data]\ntrain = \"x.csv\"\ntest = \"x.csv\"\ntest_fraction = 0.1\n") ==
        exp + ":4: data.test_fraction: applies only to examples held out of the training file, but "
              "data.test has its own test set");
  CHECK(error("[data]\ntrain = \"x.csv\"\ntrain_labels = \"y.csv\"\ntrain_targets = \"z.csv\"\n") ==
        exp +
            ":4: data.train_targets: data.train_labels and data.train_targets exclude each other: "
            "give class labels or target vectors, not both");
  CHECK(error("[data]\ntrain = \"x.csv\"\ntrain_lables = \"y.csv\"\n") ==
        exp + ":3: data.train_lables: unknown key (did you mean 'data.train_labels'?)");
  CHECK(error("[data]\nname = \"digits\"\ntrain = \"x.csv\"\n") ==
        exp + ":3: data.train: data.name = \"digits\" is a built-in data set with its own files; "
              "give data.name or data.train, not both");
  CHECK(error("[data]\nname = \"mnist\"\n") ==
        exp +
            ":2: data.name: unknown data set 'mnist' (built in: digits, fashion-mnist; for files, "
            "leave name out and give data.train)");
  CHECK(error("[data]\nscale = 2.0\n") ==
        exp + ":1: data.train: required key is missing: give data.train (a file of examples) or "
              "data.name (a built-in data set: digits, fashion-mnist)");
  CHECK(error("[data]\ntrain = \"x.h5\"\ntrain_labels = \"y.h5\"\n") ==
        exp +
            ":3: data.train_labels: data.train is an HDF5 file, which carries its own /y or "
            "/targets");
  CHECK(error("[data]\ntrain = \"x-ubyte\"\ntrain_labels = \"y.csv\"\n") ==
        exp + ":3: data.train_labels: is a CSV file, but data.train is an IDX file: the two must "
              "have the same format");
  CHECK(error("[data]\ntrain = \"x.csv\"\ntest_fraction = 1.0\n") ==
        exp + ":3: data.test_fraction: must be in [0, 1), got 1");
  CHECK(error("[data]\ntrain = \"x.csv\"\nclasses = 0\n") ==
        exp +
            ":3: data.classes: must be >= 1, got 0 (leave it out to count the classes from the "
            "labels)");
  CHECK(error("[data]\nname = \"fashion-mnist\"\ntest_fraction = 0.1\n") ==
        exp + ":3: data.test_fraction: applies only to examples held out of the training file, but "
              "data.name = \"fashion-mnist\" has its own test set");
  CHECK(error("[data]\ntrain = \"x.csv\"\ntest_labels = \"y.csv\"\n") ==
        exp + ":3: data.test_labels: given without data.test, the file it belongs to");
  CHECK(error("[data]\ntrain = \"x.dat\"\n") ==
        exp + ":2: data.train: " + (dir.path() / "x.dat").string() +
            ": cannot tell the data format from the file name (accepted: .csv or .txt for CSV, "
            "*-ubyte or .idx for IDX, each also with .gz; .h5 or .hdf5 for HDF5)");
  CHECK(error("[data]\ntrain = \"x.csv\"\ntrain_targets = \"t.csv\"\nclasses = 3\n") ==
        exp + ":4: data.classes: applies to class labels, but target vectors are given");

  // What only the network reveals is reported at the key, by load_data_set.
  const DataSpec many =
      spec_of(dir, "[data]\ntrain = \"x.csv\"\nlabel_column = true\n\nclasses = 12\n");
  try {
    load_data_set(many, 2, 10);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == exp + ":5: data.classes = 12 exceeds the 10 output neurons");
    CHECK(e.where() == exp + ":5");
  }
}

TEST_CASE("data: the built-in digits, 1797 examples of 8 × 8 pixels") {
  TempDir dir;
  if (!std::filesystem::exists(digits_file)) {
    MESSAGE("skipped: " << digits_file << " is missing (Debian package python3-sklearn)");
    return;
  }
  const DataSet d = load_data_set(spec_of(dir, "[data]\nname = \"digits\"\n", 1), 64, 10);
  CHECK(d.name == "digits");
  CHECK(d.train.size() == 1438);  // 1797 − round(0.2 · 1797)
  CHECK(d.test.size() == 359);
  CHECK(d.train.inputs.rows() == 64);
  CHECK(d.train.inputs.minCoeff() == 0.0);
  CHECK(d.train.inputs.maxCoeff() == 1.0);  // 16 / 16
  CHECK(d.test.inputs.maxCoeff() <= 1.0);
  CHECK(d.error_rows == 10);
  std::vector<int> labels = d.train.labels;
  labels.insert(labels.end(), d.test.labels.begin(), d.test.labels.end());
  CHECK(*std::min_element(labels.begin(), labels.end()) == 0);
  CHECK(*std::max_element(labels.begin(), labels.end()) == 9);
  // Row 0 of the file, as sklearn ships it: a zero.
  const std::vector<double> first = {0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0};
  const ExampleSet& holding = d.train.index.front() == 0 ? d.train : d.test;
  REQUIRE(holding.index.front() == 0);
  for (std::size_t j = 0; j < first.size(); ++j)
    CHECK(holding.inputs(static_cast<Eigen::Index>(j), 0) == first[j] / 16);
  CHECK(holding.labels.front() == 0);
  // Pinned; reproduced independently with numpy and Python's zlib.crc32, re-implementing the
  // split (splitmix64, xoshiro256**, Fisher–Yates with rejection, stream split_stream).
  MESSAGE("digits crc32: train " << d.train.crc32 << ", test " << d.test.crc32);
  CHECK(d.train.crc32 == 3702609145U);
  CHECK(d.test.crc32 == 1111211528U);
}

TEST_CASE("data: the built-in fashion-mnist, 60000 + 10000 images of 28 × 28") {
  TempDir dir;
  if (!std::filesystem::exists(fashion_mnist_dir)) {
    MESSAGE("skipped: " << fashion_mnist_dir
                        << " is missing (Debian package dataset-fashion-mnist)");
    return;
  }
  const DataSet d = load_data_set(spec_of(dir, "[data]\nname = \"fashion-mnist\"\n", 1), 784, 10);
  CHECK(d.name == "fashion-mnist");
  REQUIRE(d.train.size() == 60000);
  REQUIRE(d.test.size() == 10000);
  CHECK(d.train.inputs.rows() == 784);
  CHECK(d.train.inputs.minCoeff() == 0.0);
  CHECK(d.train.inputs.maxCoeff() == 1.0);  // 255 · (1/255)
  CHECK(d.test.inputs.maxCoeff() <= 1.0);
  // Fashion-MNIST is balanced: 6000 training and 1000 test images per class; the first of each
  // set is an ankle boot (9).
  std::vector<int> train_count(10), test_count(10);
  for (const int l : d.train.labels) ++train_count.at(static_cast<std::size_t>(l));
  for (const int l : d.test.labels) ++test_count.at(static_cast<std::size_t>(l));
  CHECK(train_count == std::vector<int>(10, 6000));
  CHECK(test_count == std::vector<int>(10, 1000));
  CHECK(d.train.labels.front() == 9);
  CHECK(d.test.labels.front() == 9);
  CHECK(d.train.targets.colwise().sum().isOnes());
  // Pinned; reproduced independently with numpy (uint8 · (1/255) as float64) and zlib.crc32.
  MESSAGE("fashion-mnist crc32: train " << d.train.crc32 << ", test " << d.test.crc32);
  CHECK(d.train.crc32 == 3712631147U);
  CHECK(d.test.crc32 == 1035883810U);
}
