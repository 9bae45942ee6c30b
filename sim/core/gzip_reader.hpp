#pragma once
// Reading a file that may be gzip-compressed: zlib's gz* functions pass a plain file through
// unchanged, so one reader serves `x.csv` and `x.csv.gz`, `*-ubyte` and `*-ubyte.gz` alike.
// Errors are DataFileError naming the file.
#include <cstddef>
#include <string>

namespace lf {

class GzipReader {
 public:
  explicit GzipReader(std::string path);  // DataFileError "<path>: cannot open file"
  ~GzipReader();
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  // Reads up to `size` decompressed bytes; returns how many were read (fewer only at the end,
  // or where a .gz stream ends early: the caller, who knows the expected size, reports it).
  std::size_t read(void* buffer, std::size_t size);
  // Reads the next line without its '\n'; false at the end of the file. A .gz stream that ends
  // early is a DataFileError.
  bool getline(std::string& line);
  const std::string& path() const noexcept { return path_; }

 private:
  [[noreturn]] void fail_read() const;  // DataFileError with zlib's reason
  std::string path_;
  void* file_ = nullptr;  // gzFile, kept opaque so that zlib.h stays out of this header
};

}  // namespace lf
