// Data files: gzipped CSV read back by read_csv exactly as the plain file.
#include <zlib.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "sim/core/csv.hpp"
#include "sim/core/errors.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

using Bytes = std::vector<unsigned char>;

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

}  // namespace

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
