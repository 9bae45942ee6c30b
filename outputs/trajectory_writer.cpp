#include "outputs/trajectory_writer.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "outputs/h5util.hpp"
#include "sim/errors.hpp"

namespace lf {
namespace {

// Largest chunk (and write buffer) of one dataset, in bytes.
constexpr std::size_t max_chunk_bytes = 4u << 20;
// Above this many entries a sparse projection's dense matrix is not written to /parameters.
constexpr long long max_dense_parameter_entries = 1LL << 24;

}  // namespace

// One extendible dataset [T, …row shape] and its buffer of rows not yet written.
struct Series {
  std::string path;
  std::vector<hsize_t> row_shape;  // empty for scalar rows
  hsize_t row_size = 1;
  hsize_t chunk_rows = 1;
  h5::Handle set;
  hsize_t rows_written = 0;
  std::vector<double> buffer;

  // Held series (/time, metrics) are written only by flush(), never when a chunk fills: the
  // length of /time in a killed run's file must not run ahead of the other datasets.
  bool held = false;

  void create(hid_t file, const std::string& dataset_path, std::vector<hsize_t> shape,
              long flush_every) {
    path = dataset_path;
    row_shape = std::move(shape);
    row_size = 1;
    for (const hsize_t d : row_shape) row_size *= d;
    const std::size_t row_bytes = static_cast<std::size_t>(row_size) * sizeof(double);
    chunk_rows = std::clamp<hsize_t>(max_chunk_bytes / std::max<std::size_t>(row_bytes, 1), 1,
                                     static_cast<hsize_t>(flush_every));
    std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED}, chunk{chunk_rows};
    for (const hsize_t d : row_shape) {
      dims.push_back(d);
      max_dims.push_back(d);
      chunk.push_back(std::max<hsize_t>(d, 1));
    }
    h5::Handle space(h5::check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                                max_dims.data()), "H5Screate_simple"), H5Sclose);
    h5::Handle dcpl(h5::check(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate"), H5Pclose);
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);  // every row is written: no memset
    h5::Handle lcpl(h5::check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"), H5Pclose);
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    set = h5::Handle(h5::check(H5Dcreate2(file, path.c_str(), H5T_IEEE_F64LE, space.get(),
                                          lcpl.get(), dcpl.get(), H5P_DEFAULT), "H5Dcreate2"),
                     H5Dclose);
    buffer.reserve(static_cast<std::size_t>(chunk_rows * row_size));
  }

  template <class Iterator>
  void push(Iterator first, Iterator last) {
    buffer.insert(buffer.end(), first, last);
    if (!held && buffer.size() >= chunk_rows * row_size) write_buffer();
  }
  void push(double v) { push(&v, &v + 1); }

  void write_buffer() {
    if (buffer.empty() || !set.valid()) return;
    const hsize_t rows = buffer.size() / row_size;
    std::vector<hsize_t> dims{rows_written + rows}, start{rows_written}, count{rows};
    for (const hsize_t d : row_shape) {
      dims.push_back(d);
      start.push_back(0);
      count.push_back(d);
    }
    h5::check(H5Dset_extent(set.get(), dims.data()), "H5Dset_extent");
    h5::Handle file_space(h5::check(H5Dget_space(set.get()), "H5Dget_space"), H5Sclose);
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                        nullptr);
    h5::Handle mem_space(h5::check(H5Screate_simple(static_cast<int>(count.size()), count.data(),
                                                    nullptr), "H5Screate_simple"), H5Sclose);
    h5::check(H5Dwrite(set.get(), H5T_NATIVE_DOUBLE, mem_space.get(), file_space.get(),
                       H5P_DEFAULT, buffer.data()), "H5Dwrite");
    rows_written += rows;
    buffer.clear();
  }

  void write_and_flush() {
    write_buffer();
    if (set.valid()) h5::check(H5Dflush(set.get()), "H5Dflush");
  }
};

struct StateSeries {
  BlockId block;
  RecordMode mode;
  Series series;
};

struct TrajectoryWriter::Impl {
  std::string path;
  const StateLayout* layout;
  long flush_every;
  double flush_seconds;
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();
  h5::Handle file;
  Series time;
  std::vector<StateSeries> states;
  std::vector<Series> metrics;
  long samples = 0;
  bool streaming = false;      // in SWMR mode
  bool closed_series = false;  // after end_streaming(): no more samples
};

TrajectoryWriter::TrajectoryWriter(const std::string& path, const StateLayout& layout,
                                   const OutputSpec& spec, std::vector<std::string> metric_names)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.layout = &layout;
  m.flush_every = spec.flush_every;
  m.flush_seconds = spec.flush_seconds;
  {
    const h5::QuietErrors quiet;
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent)) {
      throw DataFileError(path, 0, fmt::format("{}: cannot write the output file: directory '{}' "
                                               "does not exist", path, parent.string()));
    }
    // The latest file format: needed for single-writer/multiple-reader (SWMR) streaming.
    h5::Handle fapl(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
    if (file < 0) {
      throw DataFileError(path, 0, fmt::format("{}: cannot write the output file (permission "
                                               "denied or not a valid path)", path));
    }
    m.file = h5::Handle(file, H5Fclose);
  }
  const hid_t f = m.file.get();
  m.time.create(f, "/time", {}, spec.flush_every);
  m.time.held = true;
  for (BlockId id = 0; id < layout.blocks().size(); ++id) {
    const Block& b = layout.block(id);
    const RecordMode mode = spec.mode_for(b.kind, b.member);
    if (mode.kind == RecordMode::none) continue;
    StateSeries ss{id, mode, {}};
    std::vector<hsize_t> shape;
    if (mode.kind != RecordMode::norm) shape.assign(b.shape.begin(), b.shape.end());
    ss.series.create(f, "/state/" + b.name(), shape, spec.flush_every);
    const char* mode_name = mode.kind == RecordMode::all     ? "all"
                            : mode.kind == RecordMode::every ? "every"
                                                             : "norm";
    h5::write_attribute(ss.series.set.get(), "record",
                        mode.kind == RecordMode::every ? fmt::format("every:{}", mode.stride)
                                                       : std::string(mode_name));
    h5::write_attribute(ss.series.set.get(), "stride", static_cast<std::int64_t>(mode.stride));
    m.states.push_back(std::move(ss));
  }
  for (const std::string& name : metric_names) {
    m.metrics.emplace_back();
    m.metrics.back().create(f, "/metrics/" + name, {}, spec.flush_every);
    m.metrics.back().held = true;
  }
}

TrajectoryWriter::~TrajectoryWriter() {
  try {
    flush();
  } catch (...) {  // a destructor must not throw; the last flush is best effort
  }
}

long TrajectoryWriter::samples() const noexcept { return impl_->samples; }

void TrajectoryWriter::write_metadata(const RunMetadata& meta) {
  h5::Handle root(h5::check(H5Gopen2(impl_->file.get(), "/", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
  const hid_t r = root.get();
  h5::write_attribute(r, "learnflow_version", std::string(LEARNFLOW_VERSION));
  h5::write_attribute(r, "model", meta.model);
  h5::write_attribute(r, "integrator", meta.integrator);
  h5::write_attribute(r, "seed", static_cast<std::int64_t>(meta.seed));
  h5::write_attribute(r, "threads", static_cast<std::int64_t>(meta.threads));
  h5::write_attribute(r, "created", fmt::format("{:%Y-%m-%dT%H:%M:%SZ}",
                                                fmt::gmtime(std::chrono::system_clock::now())));
  h5::write_attribute(r, "config", meta.config_text);
}

void TrajectoryWriter::write_network(const Network& net) {
  const hid_t f = impl_->file.get();
  h5::Handle group = h5::create_group_path(f, "/network");
  std::string names;
  for (const Population& p : net.populations) names += (names.empty() ? "" : ",") + p.name;
  h5::write_attribute(group.get(), "populations", names);
  for (std::size_t i = 0; i < net.populations.size(); ++i) {
    const Population& p = net.populations[i];
    h5::Handle g = h5::create_group_path(f, "/network/population/" + p.name);
    h5::write_attribute(g.get(), "size", static_cast<std::int64_t>(p.size));
    h5::write_attribute(g.get(), "role", std::string(role_name(p.role)));
    h5::write_attribute(g.get(), "activation", std::string(activation_name(p.activation)));
    h5::write_dataset(f, "/parameters/b/" + p.name, {static_cast<unsigned long long>(p.size)},
                      net.bias[i].data());
  }
  for (const Projection& proj : net.projections) {
    h5::Handle g = h5::create_group_path(f, "/network/projection/" + proj.name);
    h5::write_attribute(g.get(), "from", net.populations[proj.from].name);
    h5::write_attribute(g.get(), "to", net.populations[proj.to].name);
    h5::write_attribute(g.get(), "plastic", static_cast<std::int64_t>(proj.plastic));
    h5::write_attribute(g.get(), "sparse", static_cast<std::int64_t>(proj.sparse));
    const auto rows = static_cast<unsigned long long>(proj.rows());
    const auto cols = static_cast<unsigned long long>(proj.cols());
    if (!proj.sparse) {
      h5::write_dataset(f, "/parameters/W/" + proj.name, {rows, cols}, proj.dense.data());
      continue;
    }
    // Sparse: the edge list (src, dst, weight), and the dense matrix when it is not too large.
    std::vector<double> edges;
    for (int r = 0; r < proj.csr.outerSize(); ++r) {
      for (SparseRowMatrix::InnerIterator it(proj.csr, r); it; ++it) {
        edges.insert(edges.end(), {static_cast<double>(it.col()), static_cast<double>(it.row()),
                                   it.value()});
      }
    }
    h5::write_dataset(f, "/parameters/edges/" + proj.name, {edges.size() / 3, 3}, edges.data());
    if (static_cast<long long>(rows * cols) <= max_dense_parameter_entries) {
      const RowMatrix dense = RowMatrix(proj.csr);
      h5::write_dataset(f, "/parameters/W/" + proj.name, {rows, cols}, dense.data());
    }
  }
}

void TrajectoryWriter::write_schedule(const std::vector<double>& boundaries) {
  const hid_t f = impl_->file.get();
  h5::Handle group = h5::create_group_path(f, "/schedule");
  h5::write_attribute(group.get(), "t0", boundaries.front());
  h5::write_attribute(group.get(), "t_end", boundaries.back());
  const std::vector<double> inner(boundaries.begin() + 1, boundaries.end() - 1);
  h5::write_dataset(f, "/schedule/breakpoints", {inner.size()}, inner.data());
}

void TrajectoryWriter::append(double t, const State& s, std::span<const double> metrics) {
  Impl& m = *impl_;
  assert(!m.closed_series && "append after end_streaming");
  m.time.push(t);
  for (StateSeries& ss : m.states) {
    if (ss.mode.kind == RecordMode::every && m.samples % ss.mode.stride != 0) continue;
    const auto block = m.layout->vector(s, ss.block);
    if (ss.mode.kind == RecordMode::norm) {
      ss.series.push(block.norm());
    } else {
      ss.series.push(block.data(), block.data() + block.size());
    }
  }
  for (std::size_t i = 0; i < m.metrics.size(); ++i) m.metrics[i].push(metrics[i]);
  ++m.samples;
  if (m.samples % m.flush_every == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - m.last_flush).count() >= m.flush_seconds) flush();
  }
}

void TrajectoryWriter::flush() {
  Impl& m = *impl_;
  if (!m.file.valid()) return;
  // /time last, each dataset flushed before the next: a reader of a killed run takes the length
  // of /time as the number of complete samples, and every other dataset holds at least as many
  // rows. (/time and the metrics, one double a row, are only written here.)
  for (StateSeries& ss : m.states) ss.series.write_and_flush();
  for (Series& s : m.metrics) s.write_and_flush();
  m.time.write_and_flush();
  h5::check(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), "H5Fflush");
  m.last_flush = std::chrono::steady_clock::now();
}

void TrajectoryWriter::begin_streaming() {
  flush();
  // From here on the file is written in SWMR mode: HDF5 orders its metadata writes so that the
  // file on disk is readable at every moment, by h5py (swmr=True) or `learnflow info`, even
  // after a SIGKILL. No object can be created until end_streaming().
  h5::check(H5Fstart_swmr_write(impl_->file.get()), "H5Fstart_swmr_write");
  impl_->streaming = true;
}

void TrajectoryWriter::end_streaming() {
  Impl& m = *impl_;
  if (!m.streaming) return;
  flush();
  // Close every dataset, then the file, and reopen it normally to add /solver, /waves, …
  m.time.set.reset();
  for (StateSeries& ss : m.states) ss.series.set.reset();
  for (Series& s : m.metrics) s.set.reset();
  m.file.reset();
  m.streaming = false;
  m.closed_series = true;
  m.file = h5::Handle(h5::check(H5Fopen(m.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "H5Fopen"),
                      H5Fclose);
}

void TrajectoryWriter::write_array(const std::string& path,
                                   const std::vector<unsigned long long>& shape, const double* data) {
  h5::write_dataset(impl_->file.get(), path, shape, data);
}

void TrajectoryWriter::write_attributes(
    const std::string& path, const std::vector<std::pair<std::string, double>>& numbers,
    const std::vector<std::pair<std::string, std::string>>& texts) {
  h5::Handle g = h5::create_group_path(impl_->file.get(), path);
  for (const auto& [name, value] : numbers) h5::write_attribute(g.get(), name.c_str(), value);
  for (const auto& [name, value] : texts) h5::write_attribute(g.get(), name.c_str(), value);
}

void TrajectoryWriter::write_dataset_attribute(const std::string& path, const std::string& name,
                                               const std::vector<double>& values) {
  h5::Handle set(h5::check(H5Dopen2(impl_->file.get(), path.c_str(), H5P_DEFAULT), "H5Dopen2"),
                 H5Dclose);
  const hsize_t n = values.size();
  h5::Handle space(h5::check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple"), H5Sclose);
  if (H5Aexists(set.get(), name.c_str()) > 0) H5Adelete(set.get(), name.c_str());
  h5::Handle attr(h5::check(H5Acreate2(set.get(), name.c_str(), H5T_IEEE_F64LE, space.get(),
                                       H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2"), H5Aclose);
  if (n > 0) h5::check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, values.data()), "H5Awrite");
}

void TrajectoryWriter::write_waves(const std::string& kind, const std::string& member,
                                   const std::vector<double>& arrivals) {
  write_array("/waves/" + kind + "/" + member, {arrivals.size()}, arrivals.data());
}

void TrajectoryWriter::write_solver(const IntegrationResult& result) {
  const hid_t f = impl_->file.get();
  h5::Handle g = h5::create_group_path(f, "/solver");
  h5::write_attribute(g.get(), "steps", static_cast<std::int64_t>(result.stats.steps));
  h5::write_attribute(g.get(), "rejected", static_cast<std::int64_t>(result.stats.rejected));
  h5::write_attribute(g.get(), "rhs_evals", static_cast<std::int64_t>(result.stats.rhs_evals));
  h5::write_attribute(g.get(), "wall_seconds", result.stats.wall_seconds);
  h5::write_attribute(g.get(), "outcome", std::string(outcome_name(result.outcome)));
  h5::write_attribute(g.get(), "message", result.message);
  h5::write_attribute(g.get(), "t_final", result.t);
  flush();
}

}  // namespace lf
