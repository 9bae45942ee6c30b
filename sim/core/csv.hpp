#pragma once
// Numeric CSV files (edge lists, input sequences, weight matrices, data sets). Blank lines and
// lines starting with '#' are skipped; the first other line is a header when none of its fields
// reads as a number (a line mixing numbers and text is an error, as is any field that is not a
// finite number: NaN, inf, overflow). Errors carry the file, the 1-based line and the field.
// A gzip-compressed file (x.csv.gz) is read as its content.
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
