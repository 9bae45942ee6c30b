#pragma once
// Streams a run into its HDF5 file (DESIGN §6): chunked datasets extendible along time, written
// while the run goes on, flushed after a multiple of `flush_every` samples once `flush_seconds`
// have passed since the previous flush, so that the file of a killed run is readable up to its
// last flush. Each state block is buffered for at most one chunk; /time and the metrics (one
// double per sample) until the next flush. While streaming, a thread of the writer makes the HDF5
// calls: full chunks and flushes are queued to it (at most two chunks of a dataset at a time), so
// the integration waits for the disk only when the disk falls behind.
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/core/dataset.hpp"
#include "sim/core/layout.hpp"
#include "sim/core/model.hpp"
#include "sim/core/outcome.hpp"
#include "sim/core/snapshot.hpp"
#include "sim/core/network.hpp"

namespace lf {

// What is written for a state block at each sample.
struct RecordMode {
  enum Kind { all, every, norm, none } kind = all;
  long stride = 1;  // every:K
};

struct OutputSpec {
  std::string file = "run.h5";
  double sample_dt = 0.05;
  std::map<std::string, RecordMode> record;  // key: block kind ("x") or block name ("x/layer1")
  RecordMode default_mode;  // blocks named by no key ("all"; training runs: "norm")
  long flush_every = 100;      // flushes happen only after a multiple of this many samples …
  double flush_seconds = 1.0;  // … and at least this long (wall time) after the previous one;
  double flush_latency = 2.0;  // a sample waits in memory at most this long (s, checked per step)
  // Input segments whose wave arrivals are measured (/waves): the first `wave_segments`.
  static constexpr long all_segments = std::numeric_limits<long>::max();
  long wave_segments = all_segments;
  // Per-example blocks of a training run: record only these examples of the batch (empty: all).
  std::vector<long> examples;
  bool residual = false;  // write /metrics/residual/<kind> = ‖d(block kind)/dt‖₂ at each sample
  // Wall time between two checkpoints (OUT.h5.checkpoint, for --resume); 0: none (a signal or
  // the wall-time limit still writes one).
  double checkpoint_seconds = 60.0;

  // The mode of block "kind/member": the exact name wins over the kind; else default_mode.
  RecordMode mode_for(const std::string& kind, const std::string& member) const;
};

struct RunMetadata {
  std::string model;
  std::string integrator;
  std::uint64_t seed = 0;
  int threads = 1;
  std::string config_text;
  std::string kernels;  // the batched products' instruction set (models/batch_kernels.hpp)
};

// Whether another process holds `path` open as a run file it writes (the lock every writer takes,
// below). False when the file does not exist.
bool run_file_in_use(const std::string& path);
// Removes the earlier run file at `path` (--force): only a learnflow run file (root attribute
// learnflow_version) that no run is writing, checked under the writers' lock on that very file.
// Throws DataFileError otherwise.
void remove_run_file(const std::string& path);

// HDF5's metadata checksum (Jenkins' lookup3 with seed 0), and the checksum of a version 2 or 3
// superblock at the start of a file image recomputed in place (TrajectoryWriter::image()).
std::uint32_t hdf5_metadata_checksum(const unsigned char* data, std::size_t length);
void repair_superblock_checksum(std::vector<unsigned char>& image);

// Whether a run's HDF5 calls go to a writer thread while it streams: only when the writer has a
// core of its own, i.e. the run's OpenMP threads are fewer than the cores the process may use.
// Otherwise the writer would wait for a time slice while the OpenMP team spins, and the
// integration would wait for the writer (recording every neuron cost +52 % to +82 % at 2 threads
// on 2 cores, issue 11); the run's own thread makes the calls then, between steps. The
// environment variable LEARNFLOW_WRITER_THREAD=1 or 0 forces the choice (benchmarks). The file's
// contents are the same either way.
bool writer_thread_wanted();

class TrajectoryWriter {
 public:
  // Creates `path`, which must not exist (a run never writes over a file; the CLI removes an
  // earlier run file first with --force), and holds a lock on it (an OFD lock, apart from HDF5's
  // own) until destroyed, so that no second run writes it. With `resume`, opens the file of an
  // interrupted run instead (clearing the mark a kill leaves) and cuts every series back to the
  // rows the checkpoint recorded (save_rows). Throws DataFileError when it cannot be written.
  // Each of `table_series` ("/metrics/epoch/test_loss", "/metrics/phase/duration") is a series
  // with one row per event (an evaluation, a phase), appended with append_row.
  // With `in_memory` (and no `resume`), the file lives in memory only (HDF5's core driver without
  // a backing store; `path` is only its name in messages): nothing is created, locked or
  // removed on disk, there is no SWMR, close_file() and reopen_file() keep it open, and image()
  // returns its bytes, an HDF5 file that h5py opens from memory.
  TrajectoryWriter(const std::string& path, const StateLayout& layout, const OutputSpec& spec,
                   std::vector<std::string> metric_names,
                   std::vector<std::string> table_series = {}, const Snapshot* resume = nullptr,
                   bool in_memory = false);
  ~TrajectoryWriter();  // flushes and closes
  TrajectoryWriter(const TrajectoryWriter&) = delete;
  TrajectoryWriter& operator=(const TrajectoryWriter&) = delete;

  void write_metadata(const RunMetadata& meta);
  void write_network(const Network& network);  // /network and /parameters
  void write_schedule(const std::vector<double>& boundaries);
  // After end_streaming(), when phases ended on convergence: /schedule/breakpoints and t_end
  // become the times reached; the planned ones move to /schedule/planned_breakpoints, planned_t_end.
  void rewrite_schedule(const std::vector<double>& planned, const std::vector<double>& reached);
  // /data: what a training run learns from (attributes: name, shapes, checksums, classes) and
  // the example indices of its splits (/data/train_index, /data/test_index).
  void write_data(const DataSet& data, const std::vector<std::pair<std::string, std::string>>& texts);

  // One sample: the time, the state, and one value per metric name (in constructor order).
  void append(double t, const State& s, std::span<const double> metrics);
  // One row of consecutive table series: values[i] goes to table_series[first + i]. Written
  // with the next flush, like the metrics.
  void append_row(std::size_t first, std::span<const double> values);
  void flush();
  // Flushes, then records every series' row count and the sample count under "writer/…": what
  // the file holds at a checkpoint.
  void save_rows(Snapshot& out);
  // After end_streaming(): closes the file (a kill while it is closed leaves it readable) while
  // the run computes (the adjoint's backward sweep), and opens it again.
  void close_file();
  void reopen_file();
  // Closes and removes the file, if this writer created it (not a resumed run's): for a run that
  // fails before its first sample (a full disk while the metadata is written).
  void discard_file() noexcept;
  // Called often (every solver step): flushes when a sample has waited flush_latency seconds.
  void tick();
  // Samples are streamed between these two calls, in SWMR mode (see the .cpp); metadata,
  // network and schedule are written before, solver statistics, waves and adjoint after.
  void begin_streaming();
  void end_streaming();
  void write_solver(const IntegrationResult& result);
  // A finished float64 array at `path` (groups created as needed), e.g. under /adjoint.
  void write_array(const std::string& path, const std::vector<unsigned long long>& shape,
                   const double* data);
  // Arrays named by their full paths (Model::description, Model::results): float64, or int64
  // when ParameterArray::integer.
  void write_arrays(const std::vector<ParameterArray>& arrays);
  // Attributes of the group at `path` (created as needed).
  void write_attributes(const std::string& path,
                        const std::vector<std::pair<std::string, double>>& numbers,
                        const std::vector<std::pair<std::string, std::string>>& texts = {});
  // An array attribute of the existing dataset at `path` (after end_streaming()).
  void write_dataset_attribute(const std::string& path, const std::string& name,
                               const std::vector<double>& values);
  // /parameters/<group>/<name> for every array (after end_streaming()), e.g. group "final".
  void write_parameters(const std::string& group, const std::vector<ParameterArray>& arrays);
  // /waves/<kind>/<member> [S]: the wave arrival time in each measured input segment (NaN where
  // undefined); /waves/neurons/<kind>/<member> [S, 3]: the median, first and third quartile of
  // the neurons' half-times (arrival times of the single neurons).
  void write_waves(const std::string& kind, const std::string& member,
                   const std::vector<double>& arrivals, const std::vector<double>& neuron_quartiles);

  long samples() const noexcept;
  // The file's bytes as they stand (flushed first): for an in-memory file, what the run leaves.
  std::vector<unsigned char> image();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lf
