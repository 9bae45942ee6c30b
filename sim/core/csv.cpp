#include "sim/core/csv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "sim/core/errors.hpp"
#include "sim/core/gzip_reader.hpp"

namespace lf {
namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

// Parses one field as a number (strtod's syntax, the whole field); `out` may be NaN or inf.
bool parse_number(const std::string& field, double& out) {
  const std::string text = trim(field);
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  // ERANGE: an underflow to a subnormal or zero is still the number written; an overflow is
  // reported as not finite below.
  return end == text.c_str() + text.size();
}

}  // namespace

CsvTable read_csv(const std::string& path, std::size_t columns) {
  GzipReader in(path);  // plain or gzipped
  CsvTable table;
  std::string line;
  long line_no = 0;
  bool first_content_line = true;
  while (in.getline(line)) {
    ++line_no;
    const std::string content = trim(line);
    if (content.empty() || content.front() == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(content);
    for (std::string field; std::getline(ss, field, ',');) fields.push_back(field);
    if (content.back() == ',') fields.emplace_back();
    std::vector<double> row(fields.size());
    std::vector<bool> numeric(fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) numeric[i] = parse_number(fields[i], row[i]);
    // A header has no field that reads as a number: a row that mixes numbers and text is a
    // broken row, never a header (a malformed first row used to be dropped silently; issue 8).
    if (first_content_line && std::find(numeric.begin(), numeric.end(), true) == numeric.end()) {
      first_content_line = false;
      continue;
    }
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (!numeric[i] || !std::isfinite(row[i])) {
        throw DataFileError(path, line_no,
                            fmt::format("{}:{}: field {} is not a finite number: '{}'{}", path,
                                        line_no, i + 1, trim(fields[i]),
                                        first_content_line && !numeric[i]
                                            ? " (not a header: a header has no numeric field)"
                                            : ""));
      }
    }
    first_content_line = false;
    if (columns > 0 && row.size() != columns) {
      throw DataFileError(path, line_no,
                          fmt::format("{}:{}: expected {} fields, found {}", path, line_no, columns,
                                      row.size()));
    }
    table.rows.push_back(std::move(row));
    table.lines.push_back(line_no);
  }
  if (table.rows.empty()) throw DataFileError(path, 0, fmt::format("{}: no data rows", path));
  return table;
}

}  // namespace lf
