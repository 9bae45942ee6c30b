#include "sim/core/gzip_reader.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "sim/core/errors.hpp"

namespace lf {
namespace {

gzFile handle(void* file) { return static_cast<gzFile>(file); }

}  // namespace

GzipReader::GzipReader(std::string path) : path_(std::move(path)) {
  file_ = gzopen(path_.c_str(), "rb");
  if (file_ == nullptr) throw DataFileError(path_, 0, fmt::format("{}: cannot open file", path_));
  gzbuffer(handle(file_), 1U << 17);  // larger than zlib's 8 KiB default: fewer read calls
}

GzipReader::~GzipReader() { gzclose(handle(file_)); }

void GzipReader::fail_read() const {
  int code = Z_OK;
  std::string why = gzerror(handle(file_), &code);
  if (code == Z_ERRNO) why = std::strerror(errno);
  if (why.starts_with(path_ + ": ")) why.erase(0, path_.size() + 2);  // zlib names the file too
  throw DataFileError(path_, 0, fmt::format("{}: cannot read: {}", path_, why));
}

std::size_t GzipReader::read(void* buffer, std::size_t size) {
  auto* out = static_cast<unsigned char*>(buffer);
  std::size_t done = 0;
  while (done < size) {  // gzread takes an unsigned count: read in pieces below 1 GiB
    const auto piece = static_cast<unsigned>(std::min<std::size_t>(size - done, 1U << 30));
    const int got = gzread(handle(file_), out + done, piece);
    if (got < 0) fail_read();
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

bool GzipReader::getline(std::string& line) {
  line.clear();
  char buffer[4096];
  while (gzgets(handle(file_), buffer, sizeof buffer) != nullptr) {
    line += buffer;
    if (!line.empty() && line.back() == '\n') {
      line.pop_back();
      return true;
    }
  }
  int code = Z_OK;
  gzerror(handle(file_), &code);
  // Z_BUF_ERROR: the compressed stream ends early. A text file cut there would lose rows
  // silently, so it is an error here (read() instead returns the shorter count to its caller).
  if (code != Z_OK) fail_read();
  return !line.empty();  // a last line without '\n'
}

}  // namespace lf
