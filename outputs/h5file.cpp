#include "outputs/h5file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "outputs/h5util.hpp"
#include "sim/core/errors.hpp"

namespace lf {

void skip_hdf5_cleanup_at_exit() { H5dont_atexit(); }

namespace h5 {

Error::Error(const std::string& call, int system_errno, const std::string& detail)
    : std::runtime_error(system_errno != 0 ? fmt::format("HDF5 call failed: {}: {}", call, describe_errno(system_errno))
                         : detail.empty()    ? fmt::format("HDF5 call failed: {}", call)
                                             : fmt::format("HDF5 call failed: {}: {}", call, detail)),
      system_errno_(system_errno) {}

std::string describe_errno(int code) {
  const std::string text = std::strerror(code);
  if (code == ENOSPC) return fmt::format("disk full ({})", text);
  if (code == EDQUOT) return fmt::format("disk quota exceeded ({})", text);
  return text;
}

namespace {

// What the error stack of a failed call says: the errno of a failed system call (HDF5's POSIX
// driver writes "errno = N" into its description) and the innermost description.
struct StackReport {
  int system_errno = 0;
  std::string innermost;
};

herr_t read_stack_entry(unsigned n, const H5E_error2_t* entry, void* data) {
  auto& report = *static_cast<StackReport*>(data);
  if (entry->desc == nullptr) return 0;
  if (n == 0) report.innermost = entry->desc;  // walking upward: the innermost first
  if (const char* at = std::strstr(entry->desc, "errno = "); at != nullptr && report.system_errno == 0) {
    report.system_errno = std::atoi(at + std::strlen("errno = "));
  }
  return 0;
}

}  // namespace

hid_t check(hid_t id, const char* what) {
  if (id >= 0) return id;
  StackReport report;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, read_stack_entry, &report);  // does not clear it
  throw Error(what, report.system_errno,
              report.system_errno != 0 ? std::string() : report.innermost.substr(0, 200));
}

QuietErrors::QuietErrors() {
  H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}
QuietErrors::~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

bool exists(hid_t file, const std::string& path) {
  const h5::QuietErrors quiet;
  // Check each component: H5Lexists fails on a path whose parent is missing.
  std::string partial;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '/');) {
    if (part.empty()) continue;
    partial += "/" + part;
    if (H5Lexists(file, partial.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

Handle create_group_path(hid_t file, const std::string& path) {
  Handle lcpl(check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  if (exists(file, path)) {
    return {check(H5Gopen2(file, path.c_str(), H5P_DEFAULT), "H5Gopen2"), H5Gclose};
  }
  return {check(H5Gcreate2(file, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                "H5Gcreate2"), H5Gclose};
}

void write_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type(check(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(check(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose);
  if (H5Aexists(object, name) > 0) H5Adelete(object, name);
  Handle attr(check(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                    "H5Acreate2"), H5Aclose);
  const char* text = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &text), "H5Awrite");
}

template <class T>
void write_scalar_attribute(hid_t object, const char* name, hid_t type, T value) {
  Handle space(check(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose);
  if (H5Aexists(object, name) > 0) H5Adelete(object, name);
  Handle attr(check(H5Acreate2(object, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                    "H5Acreate2"), H5Aclose);
  check(H5Awrite(attr.get(), type, &value), "H5Awrite");
}

void write_attribute(hid_t object, const char* name, std::int64_t value) {
  write_scalar_attribute(object, name, H5T_NATIVE_INT64, value);
}
void write_attribute(hid_t object, const char* name, double value) {
  write_scalar_attribute(object, name, H5T_NATIVE_DOUBLE, value);
}

namespace {

void write_typed(hid_t file, const std::string& path, const std::vector<unsigned long long>& shape,
                 hid_t file_type, hid_t memory_type, const void* data) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                     "H5Screate_simple"), H5Sclose);
  Handle lcpl(check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle set(check(H5Dcreate2(file, path.c_str(), file_type, space.get(), lcpl.get(),
                              H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2"), H5Dclose);
  check(H5Dwrite(set.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "H5Dwrite");
}

}  // namespace

void write_dataset(hid_t file, const std::string& path, const std::vector<unsigned long long>& shape,
                   const double* data) {
  write_typed(file, path, shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data);
}

void write_dataset(hid_t file, const std::string& path, const std::vector<unsigned long long>& shape,
                   const std::int64_t* data) {
  write_typed(file, path, shape, H5T_STD_I64LE, H5T_NATIVE_INT64, data);
}

std::vector<double> read_dataset(hid_t file, const std::string& path,
                                 std::vector<unsigned long long>& shape) {
  Handle set(check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
  Handle space(check(H5Dget_space(set.get()), "H5Dget_space"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  shape.assign(dims.begin(), dims.end());
  hsize_t n = 1;
  for (const hsize_t d : dims) n *= d;
  std::vector<double> data(n);
  if (n > 0) {
    check(H5Dread(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
          "H5Dread");
  }
  return data;
}

std::string read_attribute_text(hid_t object, const std::string& name) {
  Handle attr(check(H5Aopen(object, name.c_str(), H5P_DEFAULT), "H5Aopen"), H5Aclose);
  Handle type(check(H5Aget_type(attr.get()), "H5Aget_type"), H5Tclose);
  Handle space(check(H5Aget_space(attr.get()), "H5Aget_space"), H5Sclose);
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (count != 1) {
    if (H5Tget_class(type.get()) != H5T_FLOAT) return "(array)";
    std::vector<double> values(static_cast<std::size_t>(count));
    if (count > 0) H5Aread(attr.get(), H5T_NATIVE_DOUBLE, values.data());
    std::string text = "[";
    for (std::size_t i = 0; i < values.size(); ++i) {
      text += fmt::format("{}{:.6g}", i == 0 ? "" : ", ", values[i]);
    }
    return text + "]";
  }
  switch (H5Tget_class(type.get())) {
    case H5T_INTEGER: {
      std::int64_t v = 0;
      H5Aread(attr.get(), H5T_NATIVE_INT64, &v);
      return std::to_string(v);
    }
    case H5T_FLOAT: {
      double v = 0;
      H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v);
      return fmt::format("{}", v);
    }
    case H5T_STRING: {
      if (H5Tis_variable_str(type.get()) > 0) {
        char* text = nullptr;
        Handle mem(check(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
        H5Tset_size(mem.get(), H5T_VARIABLE);
        H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
        H5Aread(attr.get(), mem.get(), &text);
        std::string out = text != nullptr ? text : "";
        H5free_memory(text);
        return out;
      }
      std::string out(H5Tget_size(type.get()), '\0');
      H5Aread(attr.get(), type.get(), out.data());
      return out.substr(0, out.find('\0'));
    }
    default: return "(unsupported type)";
  }
}

std::vector<std::string> attribute_names(hid_t object) {
  std::vector<std::string> names;
  H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr,
              [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
                static_cast<std::vector<std::string>*>(out)->emplace_back(name);
                return 0;
              }, &names);
  return names;
}

}  // namespace h5

namespace {

h5::Handle open_for_reading(const std::string& path) {
  const h5::QuietErrors quiet;
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    throw DataFileError(path, 0, fmt::format("{}: not a readable HDF5 file", path));
  }
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  // The file of a run still going, or killed, is marked as open by its SWMR writer.
  if (file < 0) file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
  if (file < 0) throw DataFileError(path, 0, fmt::format("{}: cannot open HDF5 file", path));
  return {file, H5Fclose};
}

// Names of the links in a group, in name order.
std::vector<std::string> members(hid_t file, const std::string& group) {
  std::vector<std::string> names;
  if (!h5::exists(file, group)) return names;
  h5::Handle g(h5::check(H5Gopen2(file, group.c_str(), H5P_DEFAULT), "H5Gopen2"), H5Gclose);
  H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
             [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
               static_cast<std::vector<std::string>*>(out)->emplace_back(name);
               return 0;
             }, &names);
  return names;
}

void collect_datasets(hid_t file, const std::string& group, std::vector<DatasetInfo>& out) {
  for (const std::string& name : members(file, group)) {
    const std::string path = (group == "/" ? "" : group) + "/" + name;
    H5O_info_t info;
    H5Oget_info_by_name2(file, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT);
    if (info.type == H5O_TYPE_GROUP) {
      collect_datasets(file, path, out);
    } else if (info.type == H5O_TYPE_DATASET) {
      DatasetInfo d;
      d.path = path;
      h5::Handle set(h5::check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
      h5::Handle space(h5::check(H5Dget_space(set.get()), "H5Dget_space"), H5Sclose);
      std::vector<hsize_t> dims(static_cast<std::size_t>(H5Sget_simple_extent_ndims(space.get())));
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      d.shape.assign(dims.begin(), dims.end());
      for (const auto& a : h5::attribute_names(set.get())) {
        d.attributes[a] = h5::read_attribute_text(set.get(), a);
        h5::Handle attr(h5::check(H5Aopen(set.get(), a.c_str(), H5P_DEFAULT), "H5Aopen"), H5Aclose);
        h5::Handle type(h5::check(H5Aget_type(attr.get()), "H5Aget_type"), H5Tclose);
        if (H5Tget_class(type.get()) != H5T_FLOAT) continue;
        h5::Handle space(h5::check(H5Aget_space(attr.get()), "H5Aget_space"), H5Sclose);
        std::vector<double> values(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get())));
        if (!values.empty()) h5::check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, values.data()), "H5Aread");
        d.numbers[a] = std::move(values);
      }
      out.push_back(std::move(d));
    }
  }
}

// A numeric dataset of the given rank, read as double (row-major); `meaning` tells the user
// what it should hold ("the features, [N, d]").
std::vector<double> read_numeric(hid_t file, const std::string& path, const std::string& set_path,
                                 int rank, const char* meaning,
                                 std::vector<unsigned long long>& shape) {
  {
    h5::Handle set(h5::check(H5Dopen2(file, set_path.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
    h5::Handle type(h5::check(H5Dget_type(set.get()), "H5Dget_type"), H5Tclose);
    const H5T_class_t type_class = H5Tget_class(type.get());
    if (type_class != H5T_INTEGER && type_class != H5T_FLOAT) {
      throw DataFileError(path, 0, fmt::format("{}: {} does not hold numbers (integer or float); "
                                               "expected {}", path, set_path, meaning));
    }
    h5::Handle space(h5::check(H5Dget_space(set.get()), "H5Dget_space"), H5Sclose);
    const int found = H5Sget_simple_extent_ndims(space.get());
    if (found != rank) {
      std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(found, 0)));
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      throw DataFileError(path, 0, fmt::format("{}: {} has rank {} (shape [{}]), expected rank {}: "
                                               "{}", path, set_path, found, fmt::join(dims, ", "),
                                               rank, meaning));
    }
  }
  return h5::read_dataset(file, set_path, shape);
}

}  // namespace

ExampleTable read_hdf5_examples(const std::string& path) {
  const h5::Handle file = open_for_reading(path);
  const hid_t f = file.get();
  ExampleTable table;
  table.file = path;
  try {
    if (!h5::exists(f, "/x")) {
      throw DataFileError(path, 0, fmt::format("{}: no dataset /x (the features, [N, d])", path));
    }
    const bool has_labels = h5::exists(f, "/y");
    const bool has_targets = h5::exists(f, "/targets");
    if (has_labels && has_targets) {
      throw DataFileError(path, 0, fmt::format("{}: both /y (class labels) and /targets (target "
                                               "vectors); give one of them", path));
    }
    std::vector<unsigned long long> shape;
    const auto x = read_numeric(f, path, "/x", 2, "the features, [N, d]", shape);
    const auto n = static_cast<Eigen::Index>(shape[0]);
    table.x = Eigen::Map<const RowMatrix>(x.data(), n, static_cast<Eigen::Index>(shape[1]));
    if (has_labels) {
      table.labels = read_numeric(f, path, "/y", 1, "the class labels, [N]", shape);
      if (static_cast<Eigen::Index>(shape[0]) != n) {
        throw DataFileError(path, 0, fmt::format("{}: /y has {} labels for the {} examples of /x",
                                                 path, shape[0], n));
      }
      table.label_file = path;
    }
    if (has_targets) {
      const auto targets =
          read_numeric(f, path, "/targets", 2, "the target vectors, [N, k]", shape);
      if (static_cast<Eigen::Index>(shape[0]) != n) {
        throw DataFileError(path, 0, fmt::format("{}: /targets has {} rows for the {} examples of "
                                                 "/x", path, shape[0], n));
      }
      table.targets = Eigen::Map<const RowMatrix>(targets.data(), n,
                                                  static_cast<Eigen::Index>(shape[1]));
      table.label_file = path;
    }
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const DataFileError*>(&e) != nullptr) throw;
    throw DataFileError(path, 0, fmt::format("{}: cannot read the examples: {}", path, e.what()));
  }
  return table;
}

std::vector<double> read_hdf5_array(const std::string& path, const std::string& dataset, int rank,
                                    const char* meaning, std::vector<unsigned long long>& shape) {
  const h5::Handle file = open_for_reading(path);
  try {
    if (!h5::exists(file.get(), dataset)) {
      throw DataFileError(path, 0, fmt::format("{}: no dataset {} ({})", path, dataset, meaning));
    }
    return read_numeric(file.get(), path, dataset, rank, meaning, shape);
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const DataFileError*>(&e) != nullptr) throw;
    throw DataFileError(path, 0, fmt::format("{}: cannot read {}: {}", path, dataset, e.what()));
  }
}

ParameterFile read_parameter_file(const std::string& path, const std::string& which) {
  const h5::Handle file = open_for_reading(path);
  const std::string group = which == "final" ? "/parameters/final" : "/parameters";
  ParameterFile params;
  params.group = group;
  try {
    for (const std::string& name : members(file.get(), group + "/W")) {
      std::vector<unsigned long long> shape;
      const auto data = h5::read_dataset(file.get(), group + "/W/" + name, shape);
      if (shape.size() != 2) continue;  // sparse projections also store an edge list
      params.weights[name] = Eigen::Map<const RowMatrix>(data.data(), static_cast<Eigen::Index>(shape[0]),
                                                         static_cast<Eigen::Index>(shape[1]));
    }
    for (const std::string& name : members(file.get(), group + "/b")) {
      std::vector<unsigned long long> shape;
      const auto data = h5::read_dataset(file.get(), group + "/b/" + name, shape);
      params.biases[name] = Eigen::Map<const Eigen::VectorXd>(data.data(),
                                                              static_cast<Eigen::Index>(data.size()));
    }
  } catch (const std::runtime_error& e) {
    throw DataFileError(path, 0, fmt::format("{}: cannot read {}: {}", path, group, e.what()));
  }
  if (params.weights.empty() && params.biases.empty()) {
    throw DataFileError(path, 0, fmt::format("{}: no {}/W or {}/b datasets{}", path, group, group,
                                             which == "final" ? " (the run did not finish, or its "
                                                                "model learns no parameters)" : ""));
  }
  return params;
}

RunFileSummary read_run_summary(const std::string& path) {
  const h5::Handle file = open_for_reading(path);
  const hid_t f = file.get();
  RunFileSummary summary;
  try {
    h5::Handle root(h5::check(H5Gopen2(f, "/", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
    for (const auto& a : h5::attribute_names(root.get())) {
      summary.root_attributes[a] = h5::read_attribute_text(root.get(), a);
    }
    if (!summary.root_attributes.contains("learnflow_version") || !h5::exists(f, "/time")) {
      throw DataFileError(path, 0, fmt::format("{}: not a learnflow run file (no learnflow_version "
                                               "attribute or /time)", path));
    }
    if (h5::exists(f, "/solver")) {
      h5::Handle solver(h5::check(H5Gopen2(f, "/solver", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      for (const auto& a : h5::attribute_names(solver.get())) {
        summary.solver_attributes[a] = h5::read_attribute_text(solver.get(), a);
      }
    }
    collect_datasets(f, "/", summary.datasets);
    std::vector<unsigned long long> shape;
    summary.time = h5::read_dataset(f, "/time", shape);
    if (h5::exists(f, "/schedule")) {
      h5::Handle schedule(h5::check(H5Gopen2(f, "/schedule", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      summary.boundaries.push_back(std::stod(h5::read_attribute_text(schedule.get(), "t0")));
      for (const double b : h5::read_dataset(f, "/schedule/breakpoints", shape)) {
        summary.boundaries.push_back(b);
      }
      summary.boundaries.push_back(std::stod(h5::read_attribute_text(schedule.get(), "t_end")));
    }
    if (h5::exists(f, "/network")) {
      h5::Handle net(h5::check(H5Gopen2(f, "/network", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      std::stringstream ss(h5::read_attribute_text(net.get(), "populations"));
      for (std::string name; std::getline(ss, name, ',');) summary.populations.push_back(name);
    }
    for (const std::string kind : {"x", "h", "lambda"}) {
      for (std::size_t depth = 0; depth < summary.populations.size(); ++depth) {
        const std::string& pop = summary.populations[depth];
        const std::string set_path = "/waves/" + kind + "/" + pop;
        if (!h5::exists(f, set_path)) continue;
        RunFileSummary::Wave wave{kind, pop, depth, h5::read_dataset(f, set_path, shape), {}};
        const std::string neurons = "/waves/neurons/" + kind + "/" + pop;
        if (h5::exists(f, neurons)) wave.quartiles = h5::read_dataset(f, neurons, shape);
        summary.waves.push_back(std::move(wave));
      }
    }
    if (h5::exists(f, "/metrics/phase/start")) {
      h5::Handle group(h5::check(H5Gopen2(f, "/metrics/phase", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      if (H5Aexists(group.get(), "phase_names") > 0) {
        std::stringstream ss(h5::read_attribute_text(group.get(), "phase_names"));
        for (std::string name; std::getline(ss, name, ',');) summary.phase_names.push_back(name);
      }
      for (const std::string& name : members(f, "/metrics/phase")) {
        summary.phases[name] = h5::read_dataset(f, "/metrics/phase/" + name, shape);
      }
    }
    if (h5::exists(f, "/data")) {
      h5::Handle data(h5::check(H5Gopen2(f, "/data", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      for (const auto& a : h5::attribute_names(data.get())) {
        summary.data_attributes[a] = h5::read_attribute_text(data.get(), a);
      }
    }
    if (h5::exists(f, "/metrics/epoch/time")) {
      h5::Handle group(h5::check(H5Gopen2(f, "/metrics/epoch", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      for (const auto& a : h5::attribute_names(group.get())) {
        summary.evaluation_attributes[a] = h5::read_attribute_text(group.get(), a);
      }
      for (const char* name : {"epoch", "time", "train_loss", "train_accuracy", "test_loss",
                               "test_accuracy"}) {
        const std::string set_path = std::string("/metrics/epoch/") + name;
        if (!h5::exists(f, set_path)) continue;
        summary.evaluation_names.emplace_back(name);
        summary.evaluations.push_back(h5::read_dataset(f, set_path, shape));
      }
    }
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const DataFileError*>(&e) != nullptr) throw;
    throw DataFileError(path, 0, fmt::format("{}: cannot read the run file: {}", path, e.what()));
  }
  return summary;
}

RunProgress read_run_progress(const std::string& path) {
  const h5::QuietErrors quiet;
  // No file lock: the run reopens its file for writing when it ends, and must not find it locked.
  const h5::Handle fapl(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
  H5Pset_file_locking(fapl.get(), false, true);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get());
  if (id < 0) id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (id < 0) throw DataFileError(path, 0, fmt::format("{}: cannot open the run file", path));
  const h5::Handle file(id, H5Fclose);
  const hid_t f = file.get();
  RunProgress p;
  // The last element of a 1-D series, and its length.
  // (At most element `limit` − 1: /time is flushed last, the other series may be ahead of it.)
  const auto last = [&](const std::string& set_path, std::size_t& length,
                        std::size_t limit = std::numeric_limits<std::size_t>::max()) {
    h5::Handle set(h5::check(H5Dopen2(f, set_path.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
    h5::Handle space(h5::check(H5Dget_space(set.get()), "H5Dget_space"), H5Sclose);
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(space.get()) != 1) return std::numeric_limits<double>::quiet_NaN();
    H5Sget_simple_extent_dims(space.get(), &n, nullptr);
    n = std::min<hsize_t>(n, limit);
    length = n;
    if (n == 0) return std::numeric_limits<double>::quiet_NaN();
    const hsize_t start = n - 1, count = 1;
    h5::check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr), "H5Sselect_hyperslab");
    h5::Handle memory(h5::check(H5Screate_simple(1, &count, nullptr), "H5Screate_simple"), H5Sclose);
    double value = 0.0;
    h5::check(H5Dread(set.get(), H5T_NATIVE_DOUBLE, memory.get(), space.get(), H5P_DEFAULT, &value), "H5Dread");
    return value;
  };
  try {
    if (!h5::exists(f, "/time")) throw DataFileError(path, 0, fmt::format("{}: not a learnflow run file (no /time)", path));
    p.t = last("/time", p.samples);
    if (h5::exists(f, "/schedule")) {
      h5::Handle schedule(h5::check(H5Gopen2(f, "/schedule", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      p.t0 = std::stod(h5::read_attribute_text(schedule.get(), "t0"));
      p.t_end = std::stod(h5::read_attribute_text(schedule.get(), "t_end"));
    }
    if (h5::exists(f, "/solver")) {
      h5::Handle solver(h5::check(H5Gopen2(f, "/solver", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
      p.finished = true;
      p.outcome = h5::read_attribute_text(solver.get(), "outcome");
    }
    std::vector<DatasetInfo> sets;
    collect_datasets(f, "/metrics", sets);
    for (const DatasetInfo& d : sets) {
      if (d.shape.size() != 1) continue;
      std::size_t length = 0;
      if (d.path.rfind("/metrics/phase/", 0) == 0) {
        if (d.path == "/metrics/phase/start") {
          last(d.path, p.phases);
        } else if (d.path == "/metrics/phase/converged" || d.path == "/metrics/phase/diverged") {
          std::vector<unsigned long long> shape;
          std::size_t count = 0;
          for (const double v : h5::read_dataset(f, d.path, shape)) count += v != 0.0;
          (d.path.ends_with("converged") ? p.converged : p.diverged) = count;
        }
        continue;
      }
      const bool epoch = d.path.rfind("/metrics/epoch/", 0) == 0;
      const double value = epoch ? last(d.path, length) : last(d.path, length, p.samples);
      if (length == 0) continue;
      if (epoch) {
        p.epoch.emplace_back(d.path.substr(15), value);
      } else if (length == p.samples) {
        p.metrics.emplace_back(d.path.substr(9), value);
      }
    }
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const DataFileError*>(&e) != nullptr) throw;
    throw DataFileError(path, 0, fmt::format("{}: cannot read the run file: {}", path, e.what()));
  }
  return p;
}

}  // namespace lf
