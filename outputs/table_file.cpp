#include "outputs/table_file.hpp"

#include <hdf5.h>

#include "outputs/h5util.hpp"

namespace lf {
namespace {

// A 1-D dataset of variable-length UTF-8 strings.
void write_strings(hid_t file, const std::string& path, const std::vector<std::string>& values) {
  h5::Handle type(h5::check(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const hsize_t n = values.size();
  h5::Handle space(h5::check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple"), H5Sclose);
  h5::Handle lcpl(h5::check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  h5::Handle set(h5::check(H5Dcreate2(file, path.c_str(), type.get(), space.get(), lcpl.get(),
                                      H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2"), H5Dclose);
  std::vector<const char*> pointers;
  for (const std::string& v : values) pointers.push_back(v.c_str());
  h5::check(H5Dwrite(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()),
            "H5Dwrite");
}

}  // namespace

void write_table_file(const std::string& path, const std::vector<TableColumn>& columns,
                      const std::map<std::string, std::string>& attributes) {
  h5::Handle file(h5::check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                            "H5Fcreate"), H5Fclose);
  std::vector<std::string> names;
  for (const TableColumn& c : columns) {
    names.push_back(c.name);
    const std::string set = "/index/" + c.name;
    if (c.numeric) {
      h5::write_dataset(file.get(), set, {c.numbers.size()}, c.numbers.data());
    } else {
      write_strings(file.get(), set, c.texts);
    }
  }
  write_strings(file.get(), "/columns", names);
  h5::Handle root(h5::check(H5Gopen2(file.get(), "/", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
  for (const auto& [name, value] : attributes) h5::write_attribute(root.get(), name.c_str(), value);
  h5::check(file.close(), "H5Fclose");
}

}  // namespace lf
