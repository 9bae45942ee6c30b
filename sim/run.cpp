#include "sim/run.hpp"

#include "models/batch_kernels.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>

#include "models/adjoint.hpp"
#include "outputs/checkpoint_file.hpp"
#include "models/registry.hpp"
#include "sim/adjoint_sweep.hpp"
#include "sim/checkpoint.hpp"
#include "sim/budget.hpp"
#include "outputs/progress.hpp"
#include "sim/config.hpp"
#include "sim/core/diagnostics.hpp"
#include "sim/core/errors.hpp"
#include "sim/evaluation.hpp"
#include "outputs/trajectory_writer.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"
#include "sim/waves.hpp"
#include "sim/core/interrupt.hpp"
#include "sim/core/threads.hpp"
#include "sim/core/snapshot.hpp"

namespace lf {

namespace {

// Metric names of a run: the model's own, then /metrics/residual/<kind> = ‖d(kind)/dt‖₂ for
// every kind of state block when output.residual is set.
std::vector<std::string> metric_names(const Model& model, bool residual) {
  std::vector<std::string> names = model.metric_names();
  if (!residual) return names;
  for (const Block& b : model.layout().blocks()) {
    const std::string name = "residual/" + b.kind;
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

// The settled network of state s on the training set (unless train.eval_train = false) and the
// held-out set of a training run.
std::pair<Score, Score> score_splits(const Model& model, const InputSignal& signal, Loss loss,
                                     const State& s) {
  const DataSet& data = *signal.spec().data;
  const Score train = signal.spec().train.eval_train
                          ? evaluate(model, s, data.train, loss, data.error_rows, data.has_labels)
                          : Score{};
  return {train, evaluate(model, s, data.test, loss, data.error_rows, data.has_labels)};
}

// The evaluations of a training run: after every `eval_every` minibatches (default: every
// epoch) and at the end, the settled network on the held-out and training sets, appended to
// /metrics/epoch/{time, epoch, train_loss, train_accuracy, test_loss, test_accuracy}.
class Evaluator {
 public:
  Evaluator(const Model& model, const InputSignal& signal, Loss loss, TrajectoryWriter& writer,
            bool log, std::optional<ProgressLine>& progress)
      : model_(model), signal_(signal), loss_(loss), writer_(writer), log_(log), progress_(progress) {
    const long every = signal.spec().train.eval_every;
    every_ = every > 0 ? static_cast<std::size_t>(every) : signal.minibatches_per_epoch();
  }

  static std::vector<std::string> names() {
    return {"time", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy"};
  }

  // At the end of segment k (after its events, before the next minibatch's): after every
  // `every_` minibatches, and after the last one, an evaluation.
  void segment_end(const State& s, double t, std::size_t segment) {
    const bool last = segment + 1 == signal_.segments();
    if (!last && !signal_.starts_minibatch(segment + 1)) return;
    const std::size_t done = signal_.minibatch(segment) + 1;
    if (last || done % every_ == 0) evaluate(s, t, done);
  }

  double last_test_accuracy() const { return last_test_accuracy_; }
  void save(Snapshot& out) const { out.put("evaluator/last_test_accuracy", last_test_accuracy_); }
  void restore(const Snapshot& in) { last_test_accuracy_ = in.scalar("evaluator/last_test_accuracy"); }

 private:
  void evaluate(const State& s, double t, std::size_t minibatches) {
    const auto start = std::chrono::steady_clock::now();
    const auto [train, test] = score_splits(model_, signal_, loss_, s);
    const double epoch = static_cast<double>(minibatches) /
                         static_cast<double>(signal_.minibatches_per_epoch());
    const double values[] = {t, epoch, train.loss, train.accuracy, test.loss, test.accuracy};
    writer_.append_row(0, values);
    last_test_accuracy_ = test.accuracy;
    if (log_) {
      if (progress_) progress_->finish();  // the line is drawn again at the next step
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::vector<std::string> parts;
      for (const auto& [split, score] : {std::pair{"train", train}, std::pair{"test", test}}) {
        if (!std::isnan(score.loss)) {
          parts.push_back(fmt::format("{} loss {:.4g} accuracy {:.4f}", split, score.loss, score.accuracy));
        }
      }
      eprint("learnflow: epoch {:.4g}/{}: {} (evaluated in {:.2f} s)\n", epoch,
             signal_.spec().train.epochs, fmt::join(parts, ", "), seconds);
    }
  }

  const Model& model_;
  const InputSignal& signal_;
  Loss loss_;
  TrajectoryWriter& writer_;
  bool log_;
  std::optional<ProgressLine>& progress_;
  std::size_t every_ = 1;
  double last_test_accuracy_ = std::numeric_limits<double>::quiet_NaN();
};

// What every phase (input segment) did: /metrics/phase/<name>, one row per segment.
std::vector<std::string> phase_columns() {
  return {"start", "duration", "phase", "converged", "diverged", "residual_start", "residual_end"};
}

// The table series of a run: /metrics/epoch/<name> (training runs), then /metrics/phase/<name>.
std::vector<std::string> series_tables(bool training) {
  std::vector<std::string> tables;
  if (training) {
    for (const std::string& name : Evaluator::names()) tables.push_back("/metrics/epoch/" + name);
  }
  for (const std::string& name : phase_columns()) tables.push_back("/metrics/phase/" + name);
  return tables;
}

// The observer of a run: writes every sample with its metrics, draws progress, writes a row per
// phase, and measures the arrival of the forward (x, h) and backward (λ) waves in the first
// `wave_segments` input segments (sim/waves.hpp), keeping only the current segment's samples.
class RunObserver final : public IntegrationObserver {
 public:
  RunObserver(TrajectoryWriter& writer, const Model& model, bool residual,
              std::optional<ProgressLine>& progress, const Drive& drive, Evaluator* evaluator,
              long wave_segments, std::size_t phase_offset, const std::vector<double>& sample_times)
      : writer_(writer), model_(model), residual_(residual), progress_(progress), drive_(drive),
        evaluator_(evaluator), wave_segments_(wave_segments), phase_offset_(phase_offset),
        sample_times_(sample_times),
        model_metrics_(model.metric_names().size()),
        values_(metric_names(model, residual).size()),
        derivative_(residual ? static_cast<std::size_t>(model.layout().size()) : 0) {
    for (BlockId id = 0; id < model.layout().blocks().size(); ++id) {
      const std::string& kind = model.layout().block(id).kind;
      if (kind == "x" || kind == "h" || kind == "lambda") wave_blocks_.push_back(id);
    }
    if (residual) {
      const std::vector<std::string> names = metric_names(model, true);
      const auto first = names.begin() + static_cast<std::ptrdiff_t>(model_metrics_);
      for (const Block& b : model.layout().blocks()) {
        residual_slot_.push_back(
            static_cast<std::size_t>(std::find(first, names.end(), "residual/" + b.kind) - names.begin()));
      }
    }
    for (const BlockId id : model.node_wave_blocks()) {
      const auto at = std::find(wave_blocks_.begin(), wave_blocks_.end(), id);
      if (at != wave_blocks_.end() && model.layout().block(id).per_example()) {
        node_waves_.push_back(static_cast<std::size_t>(at - wave_blocks_.begin()));
      }
    }
    rows_.resize(wave_blocks_.size());
    arrivals_.resize(wave_blocks_.size());
    quartiles_.resize(wave_blocks_.size());
  }

  void sample(const State& s, double t) override {
    model_.metrics(s, t, std::span<double>(values_.data(), model_metrics_));
    if (residual_) {
      // ‖d(kind)/dt‖₂ over every block of a kind, wherever its blocks sit in the layout.
      model_.rhs(s, derivative_, t);  // how far from a fixed point, per kind of block
      std::fill(values_.begin() + static_cast<std::ptrdiff_t>(model_metrics_), values_.end(), 0.0);
      const auto& blocks = model_.layout().blocks();
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        values_[residual_slot_[i]] +=
            Eigen::Map<const Eigen::VectorXd>(derivative_.data() + blocks[i].offset, blocks[i].size)
                .squaredNorm();
      }
      for (std::size_t k = model_metrics_; k < values_.size(); ++k) values_[k] = std::sqrt(values_[k]);
    }
    writer_.append(t, s, values_);
    if (collecting_ && t > times_.front()) keep(s, t);
  }

  void step(const State&, double t, double dt, const SolverStats& stats) override {
    if (progress_) progress_->update(t, dt, stats);
    writer_.tick();
  }

  void segment_start(const State& s, double t) override {
    collecting_ = static_cast<long>(segments_started_++) < wave_segments_;
    if (collecting_) {
      times_.clear();
      for (auto& r : rows_) r.clear();
      reserve_segment(t);
      keep(s, t);  // the state right after the switch (and its events) is the reference
    }
    if (evaluator_ != nullptr && progress_) progress_->set_status(training_status());
  }

  void segment_end(const State& s, double t) override {
    if (collecting_) close_segment();
    collecting_ = false;
    if (evaluator_ != nullptr) evaluator_->segment_end(s, t, drive_.segment());
  }

  void phase_end(const PhaseReport& p) override {
    const double row[] = {p.start, p.end - p.start, static_cast<double>(p.phase),
                          p.converged ? 1.0 : 0.0, p.diverged ? 1.0 : 0.0, p.residual_start,
                          p.residual_end};
    writer_.append_row(phase_offset_, row);
    starts_.push_back(p.start);
    flags_.push_back(p.diverged ? 1.0 : 0.0);
    if (p.diverged && diverged_++ == 0) {
      const auto& names = drive_.signal().spec().phase_names;
      first_divergence_ = fmt::format("segment {}{}, t in [{:.6g}, {:.6g}]: residual {:.3g} -> {:.3g}",
                                      p.segment, names.empty() ? std::string()
                                                               : fmt::format(" (phase '{}')", names[p.phase]),
                                      p.start, p.end, p.residual_start, p.residual_end);
    }
  }

  // /waves/<kind>/<pop> and /waves/neurons/<kind>/<pop>: the measured segments (none: nothing).
  // The model's waves on its graph (Model::node_waves) from the per-node arrivals of the first
  // measured segment.
  void write_waves() {
    if (arrivals_.empty() || arrivals_.front().empty()) return;
    for (std::size_t i = 0; i < wave_blocks_.size(); ++i) {
      const Block& b = model_.layout().block(wave_blocks_[i]);
      writer_.write_waves(b.kind, b.member, arrivals_[i], quartiles_[i]);
    }
    for (std::size_t k = 0; k < node_waves_.size() && k < node_arrivals_.size(); ++k) {
      const NodeWaves w = model_.node_waves(wave_blocks_[node_waves_[k]], node_segment_start_, node_arrivals_[k]);
      writer_.write_arrays(w.arrays);
      for (const DatasetAttribute& a : w.attributes) writer_.write_dataset_attribute(a.dataset, a.name, a.values);
    }
  }

  // What the observer keeps across samples: the wave measurement so far, the phases' starts and
  // divergence flags (for a checkpoint).
  void save(Snapshot& out) const {
    out.put("observer/segments_started", static_cast<double>(segments_started_));
    out.put("observer/collecting", collecting_ ? 1.0 : 0.0);
    out.put("observer/times", times_);
    out.put_nested("observer/rows", rows_);
    out.put_nested("observer/arrivals", arrivals_);
    out.put_nested("observer/quartiles", quartiles_);
    out.put_nested("observer/node_arrivals", node_arrivals_);
    out.put("observer/node_segment_start", node_segment_start_);
    out.put("observer/starts", starts_);
    out.put("observer/flags", flags_);
    out.put("observer/diverged", static_cast<double>(diverged_));
    out.put_text("observer/first_divergence", first_divergence_);
  }
  void restore(const Snapshot& in) {
    segments_started_ = in.count("observer/segments_started");
    collecting_ = in.scalar("observer/collecting") != 0.0;
    times_ = in.get("observer/times");
    rows_ = in.nested("observer/rows");
    arrivals_ = in.nested("observer/arrivals");
    quartiles_ = in.nested("observer/quartiles");
    node_arrivals_ = in.nested("observer/node_arrivals");
    node_segment_start_ = in.scalar("observer/node_segment_start");
    if (rows_.size() != wave_blocks_.size() || arrivals_.size() != wave_blocks_.size() ||
        quartiles_.size() != wave_blocks_.size()) {
      throw InputError("the checkpoint's wave measurement does not match this model");
    }
    starts_ = in.get("observer/starts");
    flags_ = in.get("observer/flags");
    diverged_ = in.count("observer/diverged");
    first_divergence_ = in.text("observer/first_divergence");
  }

  const std::vector<double>& segment_starts() const { return starts_; }
  std::size_t diverged() const { return diverged_; }
  double diverged_in(std::size_t segment) const {
    return segment < flags_.size() ? flags_[segment] : std::numeric_limits<double>::quiet_NaN();
  }
  const std::string& first_divergence() const { return first_divergence_; }

 private:
  // Sizes the wave buffers for the samples of the segment starting at t (and its reference row)
  // before they are written: growing them sample by sample copied and page-faulted them over
  // and over (P1 L = 8, n = 256 sampled every 0.01: 16 MB, +600% on a run recording nothing).
  void reserve_segment(double t) {
    const std::vector<double>& bounds = drive_.signal().boundaries();
    const auto next = std::upper_bound(bounds.begin(), bounds.end(), t);
    const double end = next == bounds.end() ? bounds.back() : *next;
    const auto first = std::lower_bound(sample_times_.begin(), sample_times_.end(), t);
    const auto last = std::upper_bound(first, sample_times_.end(), end);
    const auto rows = static_cast<std::size_t>(last - first) + 1;
    times_.reserve(rows);
    for (std::size_t i = 0; i < wave_blocks_.size(); ++i) {
      std::vector<double>& r = rows_[i];
      const std::size_t n = static_cast<std::size_t>(model_.layout().block(wave_blocks_[i]).size);
      r.reserve(rows * n);
    }
  }

  void keep(const State& s, double t) {
    times_.push_back(t);
    for (std::size_t i = 0; i < wave_blocks_.size(); ++i) {
      const auto v = model_.layout().vector(s, wave_blocks_[i]);
      rows_[i].insert(rows_[i].end(), v.data(), v.data() + v.size());
    }
  }

  void close_segment() {
    using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    for (std::size_t i = 0; i < wave_blocks_.size(); ++i) {
      const auto n = static_cast<Eigen::Index>(model_.layout().block(wave_blocks_[i]).size);
      const Eigen::Map<const RowMatrix> samples(rows_[i].data(), static_cast<Eigen::Index>(times_.size()), n);
      const WaveArrival w = wave_arrival(times_, samples);
      arrivals_[i].push_back(w.arrival ? *w.arrival : std::numeric_limits<double>::quiet_NaN());
      quartiles_[i].insert(quartiles_[i].end(), w.neuron_quartiles.begin(), w.neuron_quartiles.end());
    }
    if (node_arrivals_.empty() && !node_waves_.empty()) {  // the first measured segment only
      node_segment_start_ = times_.front();
      for (const std::size_t i : node_waves_) {
        const Block& b = model_.layout().block(wave_blocks_[i]);
        const Eigen::Map<const RowMatrix> samples(rows_[i].data(), static_cast<Eigen::Index>(times_.size()), b.size);
        node_arrivals_.push_back(example_arrivals(times_, samples, b.shape[0]));
      }
    }
  }

  // "epoch 3/30  minibatch 12/48  test accuracy 0.9521" for the progress line.
  std::string training_status() const {
    const InputSignal& signal = drive_.signal();
    const std::size_t per_epoch = signal.minibatches_per_epoch();
    const std::size_t m = signal.minibatch(drive_.segment());
    const double accuracy = evaluator_->last_test_accuracy();
    return fmt::format("epoch {}/{}  minibatch {}/{}{}", m / per_epoch + 1, signal.spec().train.epochs,
                       m % per_epoch + 1, per_epoch,
                       std::isnan(accuracy) ? std::string() : fmt::format("  test accuracy {:.4f}", accuracy));
  }

  TrajectoryWriter& writer_;
  const Model& model_;
  bool residual_;
  std::optional<ProgressLine>& progress_;
  const Drive& drive_;
  Evaluator* evaluator_;
  long wave_segments_;
  std::size_t phase_offset_;
  const std::vector<double>& sample_times_;
  std::size_t model_metrics_;
  std::vector<double> values_;
  State derivative_;
  std::vector<std::size_t> residual_slot_;  // per block: its kind's /metrics/residual/<kind>
  std::vector<BlockId> wave_blocks_;
  std::size_t segments_started_ = 0;
  bool collecting_ = false;
  std::vector<double> times_;                   // the switch, then the samples of the segment
  std::vector<std::vector<double>> rows_;       // per wave block: its values at those times
  std::vector<std::vector<double>> arrivals_;   // per wave block, per measured segment
  std::vector<std::vector<double>> quartiles_;  // per wave block: 3 per measured segment
  std::vector<std::size_t> node_waves_;         // indices into wave_blocks_ (Model::node_wave_blocks)
  std::vector<std::vector<double>> node_arrivals_;  // per node wave block: one per example
  double node_segment_start_ = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> starts_;                  // the start of every segment reached
  std::vector<double> flags_;                   // and whether its phase diverged (1) or not (0)
  std::size_t diverged_ = 0;
  std::string first_divergence_;
};

// Phases that end on convergence move the schedule; the adjoint's backward sweep replays the
// planned one, so the two cannot be combined.
void check_phases(const Model& model, const InputSignal& signal) {
  if (signal.ends_on_convergence() && dynamic_cast<const AdjointForwardModel*>(&model) != nullptr) {
    throw ConfigError("input.phases", "", "input.phases: a phase that ends on convergence (until) "
                                          "cannot be combined with model.mode = \"adjoint\" (the "
                                          "backward sweep replays the planned schedule)");
  }
}

// A record key naming one block ("x/layer1") must name a block of the model's state: a typo
// would otherwise silently fall back to the default. Keys naming a kind ("x", "W") are not
// checked, so that one config can set W = "norm" for models with and without plastic weights.
void check_record_keys(const OutputSpec& output, const StateLayout& layout) {
  for (const auto& [key, mode] : output.record) {
    if (key.find('/') == std::string::npos) continue;
    std::vector<std::string> names;
    for (const Block& b : layout.blocks()) names.push_back(b.name());
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    const auto guess = closest_name(key, names);
    throw ConfigError("output.record." + key, "",
                      fmt::format("output.record.\"{}\": the model has no state block '{}'{} "
                                  "(blocks: {})", key, key,
                                  guess ? fmt::format(" (did you mean '{}'?)", *guess) : "",
                                  fmt::join(names, ", ")));
  }
}

}  // namespace

struct Run::Impl {
  Simulation sim;
  RunOptions options;
  std::unique_ptr<TrajectoryWriter> writer;
  std::optional<Snapshot> resume;  // the checkpoint a resumed run continues from
  // What a resumed run must share with the interrupted one, besides the state: the config
  // without the keys that shape no result, the kernels' instruction set (their last bits
  // differ) and the data set's checksums.
  std::string identity;

  Impl(Experiment ex, RunOptions opt)
      : sim(std::move(ex)), options(std::move(opt)) {}
};

namespace {

// A run never writes over one of its inputs (-o naming the config or network.init.file used to
// overwrite it; issue 8). Compares files, not names: links and other spellings are caught too.
void refuse_input_as_output(const Experiment& experiment, const std::string& output) {
  for (const std::string& input : experiment.input_files) {
    std::error_code error;
    if (std::filesystem::equivalent(input, output, error)) {
      throw InputError(fmt::format("the output file {} is an input of this run ({}): choose another "
                                   "file (-o or output.file)", output, input));
    }
  }
}

// The output-file policy (README, "Output files"): a new run creates its file, and never writes
// over an existing one unless --force names an earlier run file that no run is writing; --resume
// continues the interrupted run in it. Checked after everything else is valid, before any file
// is created or removed.
void prepare_output(const RunOptions& options, const std::string& result_config,
                    std::optional<Snapshot>& resume) {
  const std::string& path = options.output_path;
  const std::string checkpoint = checkpoint_path(path);
  std::error_code error;
  const bool exists = std::filesystem::exists(path, error);
  if (std::filesystem::is_directory(path, error)) {
    throw DataFileError(path, 0, fmt::format("{}: cannot write the output file: it is a directory", path));
  }
  if (exists && run_file_in_use(path)) {
    throw DataFileError(path, 0, fmt::format("{}: another learnflow run is writing this file; "
                                             "choose another output file", path));
  }
  // A file at the checkpoint's name that is not a learnflow checkpoint is refused before
  // anything is created or removed: the run would write its checkpoints over it.
  if (foreign_checkpoint(checkpoint)) {
    throw DataFileError(checkpoint, 0, fmt::format("{}: exists and is not a learnflow checkpoint: "
                                                   "the run would write its checkpoints there; move "
                                                   "it or choose another output file", checkpoint));
  }
  if (options.resume) {
    if (!exists) {
      throw DataFileError(path, 0, fmt::format("{}: nothing to resume: the file does not exist", path));
    }
    if (!std::filesystem::exists(checkpoint, error)) {
      throw DataFileError(checkpoint, 0,
                          fmt::format("{}: nothing to resume: {} has no checkpoint (the run "
                                      "finished or failed, or was killed before its first "
                                      "checkpoint: run it again with --force)", path, path));
    }
    resume = read_checkpoint(checkpoint);
    if (resume->text("run/config") != result_config) {
      throw InputError(fmt::format("{}: the config differs from the one of the interrupted run in "
                                   "this file (only output.file, output.flush_*, "
                                   "output.checkpoint_seconds, output.max_bytes and "
                                   "integrator.max_wall_seconds may change on --resume; the "
                                   "data set and the kernels' instruction set, LEARNFLOW_KERNELS, "
                                   "must be the same)", path));
    }
    return;
  }
  if (!exists) {
    remove_checkpoint(checkpoint);  // a stale one would never match a new file
    return;
  }
  if (!options.force) {
    throw DataFileError(path, 0, fmt::format("{}: the output file exists: choose another (-o), "
                                             "replace it with --force, or continue the run in it "
                                             "with --resume", path));
  }
  if (!std::filesystem::is_regular_file(path, error)) {
    throw DataFileError(path, 0, fmt::format("{}: --force replaces only an earlier learnflow run "
                                             "file, and this is not a regular file", path));
  }
  remove_run_file(path);
  remove_checkpoint(checkpoint);
}

// A damaged checkpoint (or one of another model) is refused before the run file is touched.
void check_checkpoint(const Snapshot& in, const std::string& path, Eigen::Index state_size,
                      std::size_t segments, std::size_t samples) {
  const std::vector<double>& state = in.get("state");
  const LoopPosition at = position_from(in);
  if (state.size() != static_cast<std::size_t>(state_size) ||
      !std::all_of(state.begin(), state.end(), [](double v) { return std::isfinite(v); }) ||
      at.segment >= segments || at.next_sample > samples || !std::isfinite(at.t) ||
      !std::isfinite(at.dt)) {
    throw DataFileError(path, 0, fmt::format("{}: the checkpoint is damaged or of another model (its "
                                             "state or position is out of range): run again with "
                                             "--force", path));
  }
}

}  // namespace

Run::Run(Experiment experiment, RunOptions options)
    : impl_(std::make_unique<Impl>(std::move(experiment), std::move(options))) {
  Impl& m = *impl_;
  // The run's OpenMP team size, in force while it builds and while it executes: every parallel
  // region reads it (sim/core/threads.hpp); the process-wide OpenMP settings stay as they are.
  const ScopedThreadCount threads(m.options.threads);
  check_record_keys(m.sim.experiment.output, m.sim.model->layout());
  check_phases(*m.sim.model, m.sim.signal);
  const BatchKernels& kernels = batch_kernels();  // chosen once, before any parallel region
  if (m.options.in_memory) {
    if (m.options.resume) throw InputError("a run kept in memory cannot be resumed: give it an output file");
    m.options.output_path = "<in memory>";
  }
  if (m.options.output_path.empty()) m.options.output_path = m.sim.experiment.output.file;
  if (!m.options.in_memory) refuse_input_as_output(m.sim.experiment, m.options.output_path);
  const bool training = m.sim.experiment.input.kind == InputKind::dataset;
  m.identity = m.sim.experiment.result_config + fmt::format("\n# kernels: {}\n", kernels.name);
  if (training) {
    m.identity += fmt::format("# data crc32: {} {}\n", m.sim.experiment.input.data->train.crc32,
                              m.sim.experiment.input.data->test.crc32);
  }
  if (m.options.resume) {
    check_run_size(m.sim.experiment, *m.sim.model, m.sim.network, m.sim.signal);
    prepare_output(m.options, m.identity, m.resume);
    check_checkpoint(*m.resume, checkpoint_path(m.options.output_path), m.sim.model->layout().size(),
                     m.sim.signal.segments(), m.sim.times.size());
    // The file holds the metadata, network, schedule and data description already.
    m.writer = std::make_unique<TrajectoryWriter>(
        m.options.output_path, m.sim.model->layout(), m.sim.experiment.output,
        metric_names(*m.sim.model, m.sim.experiment.output.residual), series_tables(training), &*m.resume);
    m.writer->begin_streaming();
    return;
  }
  // Before the file exists: the initial network's scores (a training run).
  std::vector<std::pair<std::string, double>> initial_scores;
  if (training) {
    State initial(static_cast<std::size_t>(m.sim.model->layout().size()));
    m.sim.model->initial_state(initial);
    const auto [train, test] = score_splits(*m.sim.model, m.sim.signal, model_loss(m.sim.experiment.model), initial);
    initial_scores = {{"initial_train_loss", train.loss}, {"initial_train_accuracy", train.accuracy},
                      {"initial_test_loss", test.loss}, {"initial_test_accuracy", test.accuracy}};
  }
  const SizeEstimate size = check_run_size(m.sim.experiment, *m.sim.model, m.sim.network,
                                           m.sim.signal);  // memory, output.max_bytes
  if (m.options.in_memory) {
    // The file's image grows in memory, and is copied once at the end (RunReport::image), and
    // once more by the caller that reads it (the Python module).
    const double need = size.memory + 3.0 * size.file;
    if (need > physical_memory_bytes()) {
      throw InputError(fmt::format("a run kept in memory would take about {} (its file of {} "
                                   "three times over at the end), more than this machine's {}: "
                                   "give it an output file, or record less (output.record, "
                                   "output.sample_dt)", format_bytes(need), format_bytes(size.file),
                                   format_bytes(physical_memory_bytes())));
    }
  } else {
    prepare_output(m.options, m.identity, m.resume);
  }
  m.writer = std::make_unique<TrajectoryWriter>(m.options.output_path, m.sim.model->layout(),
                                                m.sim.experiment.output,
                                                metric_names(*m.sim.model, m.sim.experiment.output.residual),
                                                series_tables(training), nullptr, m.options.in_memory);
  try {
    m.writer->write_metadata({model_type(m.sim.experiment.model), m.sim.experiment.integrator.stepper,
                              m.sim.experiment.network.seed, thread_count(),
                              m.sim.experiment.config_text, kernels.name});
    m.writer->write_network(m.sim.network);
    {
      State initial(static_cast<std::size_t>(m.sim.model->layout().size()));
      m.sim.model->initial_state(initial);
      m.writer->write_arrays(m.sim.model->description(initial));
    }
    m.writer->write_schedule(m.sim.signal.boundaries());
    if (training) {
      const DataSpec& spec = *m.sim.experiment.data;
      m.writer->write_data(*m.sim.experiment.input.data,
                           {{"train_file", spec.name.empty() ? spec.train : std::string()},
                            {"test_file", spec.test}});
      m.writer->write_attributes("/metrics/epoch", initial_scores);
    }
    {
      const auto& names = m.sim.experiment.input.phase_names;
      std::string joined;
      for (const auto& n : names) joined += (joined.empty() ? "" : ",") + n;
      m.writer->write_attributes("/metrics/phase", {},
                                 {{"phase_names", joined},
                                  {"description", "one row per input segment (a phase of an example): "
                                                  "start, duration, phase (index into phase_names), "
                                                  "converged, diverged (0/1), residual_start, "
                                                  "residual_end (‖ds/dt‖ over the per-example blocks)"}});
    }
    m.writer->begin_streaming();
  } catch (...) {
    m.writer->discard_file();  // nothing of the run in it yet: a run leaves no empty file
    throw;
  }
}

Run::~Run() = default;

RunReport Run::execute() {
  Impl& m = *impl_;
  const ScopedThreadCount threads(m.options.threads);
  const IntegratorSpec& spec = m.sim.experiment.integrator;
  std::optional<ProgressLine> progress;
  if (m.options.progress) progress.emplace(stderr, spec.t0, spec.t_end);
  std::optional<Evaluator> evaluator;
  if (m.sim.experiment.input.kind == InputKind::dataset) {
    evaluator.emplace(*m.sim.model, m.sim.signal, model_loss(m.sim.experiment.model), *m.writer,
                      m.options.log_evaluations, progress);
  }
  RunObserver observer(*m.writer, *m.sim.model, m.sim.experiment.output.residual, progress, m.sim.drive,
                       evaluator ? &*evaluator : nullptr, m.sim.experiment.output.wave_segments,
                       evaluator ? Evaluator::names().size() : 0, m.sim.times);

  // Adjoint mode: keep the forward trajectory for the backward sweep.
  const AdjointForwardModel* adjoint = m.sim.adjoint;
  std::optional<TrajectoryStore> store;
  std::optional<ForwardRecorder> recorder;
  IntegrationObserver* forward_observer = &observer;
  if (adjoint != nullptr) {
    store.emplace(m.sim.signal.segments(), adjoint->neuron_count());
    recorder.emplace(observer, *adjoint, *store);
    forward_observer = &*recorder;
  }
  const std::string checkpoint = checkpoint_path(m.options.output_path);
  std::vector<Checkpointer::Part> parts{[&](Snapshot& out) { observer.save(out); }};
  if (evaluator) parts.emplace_back([&](Snapshot& out) { evaluator->save(out); });
  if (recorder) parts.emplace_back([&](Snapshot& out) { recorder->save(out); });
  // An adjoint run checkpoints at the end of its forward sweep (t_end: no phase moves it).
  const double final_t = adjoint != nullptr ? m.sim.signal.boundaries().back()
                                            : std::numeric_limits<double>::infinity();
  Checkpointer checkpointer(*forward_observer, *m.sim.model, *m.writer, std::move(parts), checkpoint,
                            m.identity, m.sim.experiment.output.checkpoint_seconds,
                            final_t);

  State state(static_cast<std::size_t>(m.sim.model->layout().size()));
  RunReport report;
  std::optional<LoopPosition> position;
  if (m.resume) {
    // Everything the run had at its checkpoint: the state, the loop's position, the event state.
    const Snapshot& in = *m.resume;
    const std::vector<double>& saved = in.get("state");
    std::copy(saved.begin(), saved.end(), state.begin());
    m.sim.model->restore_events(in);
    observer.restore(in);
    if (evaluator) evaluator->restore(in);
    if (recorder) recorder->restore(in);
    position = position_from(in);
    report.resumed_at = position->t;
    m.resume.reset();  // its memory (a stored adjoint trajectory) is not needed any more
  } else {
    m.sim.model->initial_state(state);
  }
  const auto forward_start = std::chrono::steady_clock::now();
  // A run kept in memory takes no checkpoints: it cannot be resumed.
  IntegrationObserver& integration_observer =
      m.options.in_memory ? *forward_observer : static_cast<IntegrationObserver&>(checkpointer);
  report.result = integrate(*m.sim.model, m.sim.drive, state, spec, m.sim.times, integration_observer,
                            position ? &*position : nullptr);
  finish_before_stopping();
  const double forward_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - forward_start).count();
  const bool success = report.result.outcome == Outcome::success;
  // A run that stopped early keeps its checkpoint for --resume.
  auto stopped_early = [](Outcome o) { return o == Outcome::interrupted || o == Outcome::wall_limit; };
  bool resumable = stopped_early(report.result.outcome);
  if (progress) progress->finish();
  m.writer->end_streaming();
  if (success) {
    m.writer->write_parameters("final", m.sim.model->parameters(state));
    m.writer->write_arrays(m.sim.model->results(state));
  }
  m.sim.model->finish(state, report.result.t);
  for (const DatasetAttribute& a : m.sim.model->summary()) {
    m.writer->write_dataset_attribute(a.dataset, a.name, a.values);
    if (a.name == "segment") {
      // Per entry (a phase that ended in that segment): the driver's divergence flag.
      std::vector<double> flags;
      for (const double k : a.values) flags.push_back(observer.diverged_in(static_cast<std::size_t>(k)));
      m.writer->write_dataset_attribute(a.dataset, "diverged", flags);
    }
  }
  // Wave arrivals of the measured segments (output.waves; by default none for a training run,
  // which samples once per minibatch).
  observer.write_waves();
  if (success && m.sim.signal.ends_on_convergence()) {
    std::vector<double> reached = observer.segment_starts();
    reached.push_back(report.result.t);
    m.writer->rewrite_schedule(m.sim.signal.boundaries(), reached);
  }
  m.writer->write_solver(report.result);
  report.diverged_phases = observer.diverged();
  report.first_divergence = observer.first_divergence();
  if (adjoint != nullptr && report.result.outcome == Outcome::success) {
    // The file is closed while the backward sweep runs: a kill then leaves it readable (the
    // checkpoint of the forward sweep stays until /adjoint is written).
    m.writer->close_file();
    // integrator.max_wall_seconds limits the whole invocation: the sweep gets what is left.
    IntegratorSpec backward = spec;
    backward.max_wall_seconds = std::max(0.0, spec.max_wall_seconds - forward_seconds);
    const AdjointSweep sweep = sweep_backward(*adjoint, m.sim.network, m.sim.signal, backward, m.sim.times,
                                              *store, state);
    m.writer->reopen_file();
    report.adjoint = sweep.result;
    // A sweep stopped by a signal or the wall-time limit is redone after the forward sweep's
    // last checkpoint on --resume; /adjoint is written only by a complete one.
    resumable = stopped_early(sweep.result.outcome);
    if (!resumable) {
      write_adjoint(sweep, m.sim.network, *m.writer);
      m.writer->flush();
    }
  }
  // The file is closed before its checkpoint goes: a kill in between leaves a file that opens,
  // or one that --resume can still repair.
  if (m.options.in_memory) {
    report.image = m.writer->image();
    report.output_path.clear();
    report.samples = m.writer->samples();
    report.threads = thread_count();
    return report;
  }
  m.writer->close_file();
  std::error_code error;
  if (resumable && std::filesystem::exists(checkpoint, error)) {
    report.checkpoint = checkpoint;
  } else {
    remove_checkpoint(checkpoint);  // the run is complete (or ended for good)
  }
  report.output_path = m.options.output_path;
  report.samples = m.writer->samples();
  report.threads = thread_count();
  return report;
}

std::string validate_experiment(const Experiment& ex, SizeEstimate* size) {
  const Simulation sim(ex);
  const Network& network = sim.network;
  const InputSignal& signal = sim.signal;
  const auto& model = sim.model;
  check_record_keys(ex.output, model->layout());
  check_phases(*model, signal);
  std::string text = fmt::format("model {}, stepper {}, t in [{}, {}], {} input segment(s), {} "
                                 "samples\nstate: {} values\n",
                                 model->type(), ex.integrator.stepper, ex.integrator.t0,
                                 ex.integrator.t_end, signal.segments(),
                                 sim.times.size(),
                                 model->layout().size());
  if (ex.input.kind == InputKind::dataset) {
    const DataSet& data = *ex.input.data;
    text += fmt::format("data: {}, {} training and {} held-out examples of {} features; {} "
                        "epoch(s) of {} minibatches of {}, each shown for {}\n",
                        data.name, data.train.size(), data.test.size(), data.train.inputs.rows(),
                        ex.input.train.epochs, signal.minibatches_per_epoch(), ex.input.train.batch,
                        ex.input.present);
  }
  for (const Block& b : model->layout().blocks()) {
    text += fmt::format("  {:<24} [{}]{}\n", b.name(), fmt::join(b.shape, "x"),
                        b.per_example() && b.examples > 1 ? fmt::format(" × {} examples", b.examples)
                                                          : std::string());
  }
  const SizeEstimate estimate = check_run_size(ex, *model, network, signal);  // or throws
  if (size != nullptr) *size = estimate;
  text += describe_size(estimate) + "\n";
  return text;
}

}  // namespace lf
