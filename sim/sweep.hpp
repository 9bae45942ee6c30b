#pragma once
// Parameter sweeps (issue 10): a sweep file names a base experiment and the keys to vary,
//
//     base = "xor_costate.toml"          # relative to the sweep file's folder
//     [sweep]
//     set = { "integrator.t_end" = 8000.0 }                     # every point
//     grid = { "input.present" = [10, 20], "network.seed" = [1, 2, 3] }   # all combinations
//     zip = { "model.gamma" = [4, 8], "model.tau_x" = [0.5, 1] }          # varied together
//     random = { n = 8, seed = 1, "model.c" = { log_uniform = [0.5, 2] } }  # seeded samples
//
// and becomes a list of points, each a list of `--set` overrides of the base. The points are the
// product grid × zip rows × random samples (each part absent counts as one), keys within a part
// in alphabetical order, the last one varying fastest. Everything here is deterministic: the
// same sweep file gives the same points, names and random values on any machine.
//
// The run directory holds point-NNNN.h5 (one run file per point), point-NNNN.done (the point's
// exit status, wall time and host, written when it ended), sweep.manifest (what a restarted
// sweep must match) and, once every point has ended, index.h5 and index.csv.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lf {

// A sweep above either limit needs --force.
inline constexpr std::size_t sweep_max_points = 1000;
inline constexpr double sweep_max_bytes = 10e9;  // the points' estimated output files together

struct SweepValue {
  std::string toml;     // the value as TOML text, as --set takes it ("4.0", "'tanh'", "[1, 2]")
  std::string label;    // as the index shows it: a string without its quotes, else `toml`
  bool numeric = false; // an integer, float or boolean: `number` holds it
  double number = 0.0;
};

struct SweepPoint {
  std::string name;                      // "point-0003"
  std::vector<SweepValue> values;        // one per Sweep::keys
  std::vector<std::string> overrides;    // Sweep::fixed, then "key=value" per swept key
};

struct Sweep {
  std::string file;                      // the sweep file
  std::string text;                      // its contents
  std::string base;                      // the base experiment (path resolved)
  std::vector<std::string> fixed;        // [sweep] set, as "key=value"
  std::vector<std::string> keys;         // swept keys: grid, zip, random, each alphabetical
  std::vector<std::string> key_where;    // "file:line" of each swept key
  std::vector<SweepPoint> points;
};

// Reads and expands a sweep file. Throws ConfigError naming the key and file:line for a
// malformed sweep table (the swept keys themselves are checked by validate_sweep).
Sweep load_sweep(const std::string& path);

// What validate_sweep learnt: the points' estimated output files together, and for each point
// a fingerprint (crc32 of its experiment with the overrides applied, the output path left out).
struct SweepCheck {
  double bytes = 0.0;
  std::vector<std::uint32_t> fingerprints;
};

// Loads and validates every point's experiment (as `learnflow validate --set ...` would) before
// any run starts. A bad key or value throws ConfigError naming the swept key, where it is
// written in the sweep file, and the point.
SweepCheck validate_sweep(const Sweep& sweep);

// The lines of DIR/sweep.manifest: the sweep's points, their overrides and fingerprints. A
// restarted sweep must find the same lines.
std::string sweep_manifest(const Sweep& sweep, const SweepCheck& check);

// How one point ended, as recorded in DIR/point-NNNN.done.
struct PointRecord {
  int status = 0;            // the exit status of `learnflow run` (0, 2, 3; 128+N: signal N)
  double wall_seconds = 0.0; // the point's wall time, start to end of its process
  int rank = 0;              // the MPI rank that ran it (0 without MPI)
  std::string host;
};
void write_point_record(const std::string& path, const PointRecord& record);  // atomically
// Throws DataFileError when the file is not a record.
PointRecord read_point_record(const std::string& path);

// The run file, record and log of point i: DIR/point-NNNN.{h5,done,log}.
std::string point_path(const Sweep& sweep, const std::string& dir, std::size_t i,
                       const char* extension);

struct SweepRunOptions {
  std::string dir;
  std::string program;  // the learnflow binary, run once per point
  int jobs = 1;         // points run at a time
  int threads = 1;      // OpenMP threads of each point
  int rank = 0;         // this process's MPI rank, recorded with each point
};

// Runs the points that `next` hands out (a point's index; nullopt: none left) and that have no
// record yet, `jobs` at a time, each in a child process
//     PROGRAM sweep FILE -o DIR --point K --threads T --quiet
// whose output goes to DIR/point-NNNN.log; a point that ends (whatever its status) is recorded.
// A child process keeps a failing point (an exception, a crash, the OOM killer) from taking
// the others down. Once a signal asks the sweep to stop (interrupt_signal), no point is started,
// the running ones are sent the signal, waited for and left unrecorded: a restart runs them
// again. Returns the number of points this call ran.
// `idle` is called every few milliseconds while points run (MPI progress).
std::size_t run_sweep_points(const Sweep& sweep, const SweepRunOptions& options,
                             const std::function<std::optional<std::size_t>()>& next,
                             const std::function<void()>& idle);

// Writes DIR/index.h5 and DIR/index.csv from the point records and run files: one row per
// point with its swept values, outcome, wall time, rank, host and final metrics (python/
// learnflow/sweep.py lists the columns). Only wall_seconds, rank and host depend on how and
// where the sweep ran. Returns the number of
// points that did not succeed.
std::size_t write_sweep_index(const Sweep& sweep, const std::string& dir);

}  // namespace lf
