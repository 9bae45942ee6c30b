#pragma once
// A table of named columns (numbers or text) written to HDF5, as the index of a sweep is.
#include <map>
#include <string>
#include <vector>

namespace lf {

struct TableColumn {
  std::string name;
  bool numeric = true;
  std::vector<double> numbers;     // numeric: one per row (NaN: no value)
  std::vector<std::string> texts;  // otherwise: one per row
};

// Writes `columns` (all of one length) to a new HDF5 file at `path`, replacing it: one 1-D
// dataset /index/<name> per column (float64 or UTF-8 strings), the column order in the string
// dataset /columns, and `attributes` as string attributes of the root. Throws h5::Error.
void write_table_file(const std::string& path, const std::vector<TableColumn>& columns,
                      const std::map<std::string, std::string>& attributes);

}  // namespace lf
