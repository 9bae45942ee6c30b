#pragma once
// Numeric CSV files (edge lists, input sequences, weight matrices). Blank lines and lines starting
// with '#' are skipped; a first line that is not numeric is taken as a header. Errors carry the
// file and the 1-based line. A gzip-compressed file (x.csv.gz) is read as its content.
#include <cstddef>
#include <string>
#include <vector>

namespace lf {

struct CsvTable {
  std::vector<std::vector<double>> rows;
  std::vector<long> lines;  // line number of each row, for messages about its content
};

// Reads `path`; when `columns` > 0 every row must have exactly that many fields.
CsvTable read_csv(const std::string& path, std::size_t columns = 0);

}  // namespace lf
