#include "outputs/trajectory_writer.hpp"

#include <fmt/chrono.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cassert>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#endif
#if defined(__linux__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>
#endif

#include "outputs/h5util.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/threads.hpp"

namespace lf {
namespace {

// Largest chunk (and write buffer) of one dataset, in bytes.
constexpr std::size_t max_chunk_bytes = 4u << 20;
// While streaming, buffers of one dataset handed to the writer thread and not yet written: with
// the one being filled, at most 1 + this many chunks of a dataset are in memory.
constexpr int max_queued_buffers = 2;
// Above this many entries a sparse projection's dense matrix is not written to /parameters.
constexpr long long max_dense_parameter_entries = 1LL << 24;

// Memory for the chunk buffers of all state series of a run, mapped at once and faulted in
// before the integration starts. Faulting the buffers' pages in one at a time, as the samples
// first reached them, cost ~11 µs per 4 KiB page on the 2-CPU VM measured here: 13 ms of a 97 ms
// run of P1 (L = 8, n = 256) recording every neuron at sample_dt = 0.01. The mapping asks for
// transparent huge pages (one fault per 2 MiB where the kernel grants them; only advice).
class BufferArena {
 public:
  BufferArena() = default;
  explicit BufferArena(std::size_t values) {
    constexpr std::size_t huge = std::size_t{2} << 20;
    const std::size_t bytes = values * sizeof(double);
    if (bytes == 0) return;
#if defined(__linux__)
    map_bytes_ = (bytes + huge - 1) / huge * huge + huge;  // whole 2 MiB blocks, then aligned
    void* map = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (map == MAP_FAILED) throw std::bad_alloc();
    map_ = map;
    const auto address = reinterpret_cast<std::uintptr_t>(map);
    base_ = reinterpret_cast<double*>((address + huge - 1) / huge * huge);
    madvise(base_, map_bytes_ - huge, MADV_HUGEPAGE);
#else
    owned_ = std::make_unique<double[]>(values);
    base_ = owned_.get();
#endif
    std::memset(base_, 0, bytes);  // every page faulted in here
    capacity_ = values;
  }
  ~BufferArena() {
#if defined(__linux__)
    if (map_ != nullptr) munmap(map_, map_bytes_);
#endif
  }
  BufferArena(const BufferArena&) = delete;
  BufferArena& operator=(const BufferArena&) = delete;
  BufferArena(BufferArena&& other) noexcept { *this = std::move(other); }
  BufferArena& operator=(BufferArena&& other) noexcept {
    std::swap(map_, other.map_);
    std::swap(map_bytes_, other.map_bytes_);
    std::swap(owned_, other.owned_);
    std::swap(base_, other.base_);
    std::swap(capacity_, other.capacity_);
    std::swap(used_, other.used_);
    return *this;
  }

  // `values` doubles of the arena, starting on a cache line.
  double* take(std::size_t values) {
    double* p = base_ + used_;
    used_ += whole_lines(values);
    assert(used_ <= capacity_);
    return p;
  }
  // What take() needs for these blocks.
  static std::size_t values_for(const std::vector<std::size_t>& blocks) {
    std::size_t total = 0;
    for (const std::size_t v : blocks) total += whole_lines(v);
    return total;
  }

 private:
  // `values` rounded up to whole 64-byte cache lines of doubles.
  static std::size_t whole_lines(std::size_t values) { return (values + 7) / 8 * 8; }

  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::unique_ptr<double[]> owned_;
  double* base_ = nullptr;
  std::size_t capacity_ = 0, used_ = 0;
};

// Disk space held back on the output's file system for the writes that end a failed run. When
// the disk fills, the file's last rows of /time and its metadata still have to reach it, or a
// reader finds /time shorter than the samples on disk (or no readable file at all), and
// H5Fclose fails, after which HDF5 crashed at exit (issue 8). Released (the space freed) before
// the file is closed and when a write fails. The space is an unnamed file (O_TMPFILE) in the
// output's folder, so a killed run leaves nothing behind. Best effort: none where the file
// system cannot make one; 1 MiB, but at most an eighth of the free space (a run that fits on
// the disk must not fail for want of the reserve), none below 16 KiB.
class SpaceReserve {
 public:
  SpaceReserve() = default;
  explicit SpaceReserve(const std::string& output_path) {
#if defined(__linux__) && defined(O_TMPFILE)
    std::string folder = std::filesystem::path(output_path).parent_path().string();
    if (folder.empty()) folder = ".";
    struct statvfs disk {};
    if (statvfs(folder.c_str(), &disk) != 0) return;
    const auto free_bytes = static_cast<unsigned long long>(disk.f_bavail) * disk.f_frsize;
    const auto bytes = static_cast<off_t>(std::min<unsigned long long>(1ULL << 20, free_bytes / 8));
    if (bytes < (off_t{16} << 10)) return;
    fd_ = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ >= 0 && posix_fallocate(fd_, 0, bytes) != 0) release();
#else
    static_cast<void>(output_path);
#endif
  }
  ~SpaceReserve() { release(); }
  SpaceReserve(const SpaceReserve&) = delete;
  SpaceReserve& operator=(const SpaceReserve&) = delete;
  SpaceReserve(SpaceReserve&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  SpaceReserve& operator=(SpaceReserve&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }

  void release() noexcept {
#if defined(__linux__)
    if (fd_ >= 0) ::close(fd_);
#endif
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Rows not yet written: a chunk's worth of arena memory for the state series, or a vector that
// grows for the held series (/time and metrics, kept until a flush).
class RowBuffer {
 public:
  RowBuffer() = default;
  RowBuffer(double* memory, std::size_t capacity) : fixed_(memory), capacity_(capacity) {}

  const double* data() const { return fixed_ != nullptr ? fixed_ : grown_.data(); }
  std::size_t size() const { return fixed_ != nullptr ? size_ : grown_.size(); }
  bool empty() const { return size() == 0; }
  void clear() {
    size_ = 0;
    grown_.clear();
  }

  // Appends n doubles. Long rows go to the arena with non-temporal stores on x86-64: the buffer
  // is read next by the writer thread, not by this one, and ordinary stores would first read each
  // line of the (cold) buffer into this core's cache and evict the integration's working set to
  // make room. Recording every neuron of P1 (L = 8, n = 256) at sample_dt = 0.01 cost +19% with
  // std::copy and +10.5% with this (interleaved runs, bench/run_bench.py). The stores are ordered
  // by publish_rows() before the buffer is handed to the writer thread or written.
  void append(const double* first, std::size_t n) {
    if (fixed_ == nullptr) {
      grown_.insert(grown_.end(), first, first + n);
      return;
    }
    assert(size_ + n <= capacity_);
    double* out = fixed_ + size_;
    size_ += n;
#if defined(__x86_64__) || defined(_M_X64)
    if (n >= 64) {
      std::size_t i = 0;
      if (reinterpret_cast<std::uintptr_t>(out) % 16 != 0) {  // streaming stores need 16 bytes
        out[0] = first[0];
        i = 1;
      }
      for (; i + 2 <= n; i += 2) _mm_stream_pd(out + i, _mm_loadu_pd(first + i));
      if (i < n) out[i] = first[i];
      return;
    }
#endif
    std::copy(first, first + n, out);
  }

 private:
  double* fixed_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
  std::vector<double> grown_;
};

// Makes the non-temporal stores of RowBuffer::append() visible before a buffer changes threads.
void publish_rows() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_sfence();
#endif
}

}  // namespace

// One extendible dataset [T, …row shape] and its buffer of rows not yet written. While streaming,
// `buffer` belongs to the integration (the main thread), `set` and `rows_written` to the writer
// thread, and `spare` and `queued` to whoever holds the StreamWriter's mutex.
struct Series {
  std::string path;
  std::vector<hsize_t> row_shape;  // empty for scalar rows
  hsize_t row_size = 1;
  hsize_t chunk_rows = 1;
  h5::Handle set;
  hsize_t rows_written = 0;
  RowBuffer buffer;
  std::vector<RowBuffer> spare;  // written buffers, emptied, for reuse
  int queued = 0;                          // buffers handed to the writer thread, not yet written

  // Held series (/time, metrics) are written only by flush(), never when a chunk fills: the
  // length of /time in a killed run's file must not run ahead of the other datasets.
  bool held = false;
  // A held series' rows that the writer thread did not write because a write failed (oldest
  // first, before `buffer`): what salvaging a failed run still needs of /time and the metrics.
  std::vector<double> unwritten;

  // `resume_rows` < 0: a new dataset; else the existing one, cut back to that many rows.
  void create(hid_t file, const std::string& dataset_path, std::vector<hsize_t> shape,
              long flush_every, long long resume_rows = -1) {
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
    spare.reserve(max_queued_buffers);  // returning a buffer never allocates
    if (resume_rows >= 0) {
      set = h5::Handle(h5::check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
      h5::Handle old_space(h5::check(H5Dget_space(set.get()), "H5Dget_space"), H5Sclose);
      std::vector<hsize_t> old_dims(dims.size());
      if (H5Sget_simple_extent_ndims(old_space.get()) != static_cast<int>(dims.size())) {
        throw std::runtime_error(path + " has another shape than this run's (another config?)");
      }
      H5Sget_simple_extent_dims(old_space.get(), old_dims.data(), nullptr);
      if (old_dims[0] < static_cast<hsize_t>(resume_rows) ||
          !std::equal(old_dims.begin() + 1, old_dims.end(), dims.begin() + 1)) {
        throw std::runtime_error(fmt::format("{} holds {} rows, fewer than the checkpoint's {}, or "
                                             "rows of another shape", path, old_dims[0], resume_rows));
      }
      dims[0] = static_cast<hsize_t>(resume_rows);
      h5::check(H5Dset_extent(set.get(), dims.data()), "H5Dset_extent");
      rows_written = static_cast<hsize_t>(resume_rows);
      return;
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
  }

  // The chunk buffers of a state series: 1 + max_queued_buffers chunks from `arena`.
  void take_buffers(BufferArena& arena) {
    buffer = RowBuffer(arena.take(chunk_values()), chunk_values());
    for (int i = 0; i < max_queued_buffers; ++i) {
      spare.emplace_back(arena.take(chunk_values()), chunk_values());
    }
  }

  std::size_t chunk_values() const { return static_cast<std::size_t>(chunk_rows * row_size); }
  bool chunk_full() const { return !held && buffer.size() >= chunk_values(); }

  // Appends `rows` (whole rows) to the dataset.
  void write_rows(const RowBuffer& rows) {
    publish_rows();  // when called by the thread that filled `rows` (not streaming)
    if (rows.empty() || !set.valid()) return;
    const hsize_t count_rows = rows.size() / row_size;
    std::vector<hsize_t> dims{rows_written + count_rows}, start{rows_written}, count{count_rows};
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
                       H5P_DEFAULT, rows.data()), "H5Dwrite");
    rows_written += count_rows;
  }

  void flush_set() {
    if (set.valid()) h5::check(H5Dflush(set.get()), "H5Dflush");
  }

  // Sets the length to `rows` (also shorter: rows past it are dropped).
  void set_rows(hsize_t rows) {
    if (!set.valid()) return;
    std::vector<hsize_t> dims{rows};
    dims.insert(dims.end(), row_shape.begin(), row_shape.end());
    h5::check(H5Dset_extent(set.get(), dims.data()), "H5Dset_extent");
    rows_written = std::min(rows_written, rows);
  }
};

// The HDF5 side of streaming (between begin_streaming() and end_streaming()), on a thread of its
// own, so that the integration only copies samples into buffers. The serial HDF5 library is not
// thread-safe: while this thread runs it makes every HDF5 call, and the main thread makes none
// until stop() has joined it. Jobs run in the order they were submitted, so a flush writes and
// flushes the datasets in the same order as a synchronous one (/time last).
class StreamWriter {
 public:
  // `series` null: flush the file. Otherwise append `rows` to it, then H5Dflush it if `flush`.
  struct Job {
    Series* series = nullptr;
    RowBuffer rows;
    bool flush = false;
  };

  StreamWriter() = default;
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  ~StreamWriter() { stop(); }

  void start(hid_t file) {
    file_ = file;
    thread_ = std::thread([this] { run(); });
  }
  bool running() const { return thread_.joinable(); }

  // Hands `s.buffer` over (to be written and, if `flush`, flushed) and gives `s` an empty buffer
  // back. Waits while `s` already has max_queued_buffers in the queue: the integration waits only
  // when the disk does not keep up. Rethrows the writer thread's error, if any.
  void hand_over(Series& s, bool flush) {
    publish_rows();
    std::unique_lock lock(mutex_);
    written_.wait(lock, [&] { return s.queued < max_queued_buffers || error_; });
    if (error_) std::rethrow_exception(error_);
    jobs_.push_back({&s, std::move(s.buffer), flush});
    ++s.queued;
    // A state series has 1 + max_queued_buffers chunk buffers, so with fewer than that queued
    // one is spare; a held series gets a fresh vector.
    if (!s.spare.empty()) {
      s.buffer = std::move(s.spare.back());
      s.spare.pop_back();
    } else {
      s.buffer = RowBuffer();
    }
    lock.unlock();
    queued_.notify_one();
  }

  void flush_file() {
    {
      const std::lock_guard lock(mutex_);
      jobs_.push_back({});
    }
    queued_.notify_one();
  }

  // Waits until every job handed over is done; rethrows the writer thread's error, if any.
  void wait() {
    std::unique_lock lock(mutex_);
    written_.wait(lock, [&] { return (jobs_.empty() && !busy_) || error_; });
    if (error_) std::rethrow_exception(error_);
  }

  // Finishes the queue (after an error: discards it) and joins the thread. Does not throw.
  void stop() noexcept {
    if (!thread_.joinable()) return;
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    queued_.notify_one();
    thread_.join();
  }

  std::exception_ptr error() const {
    const std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  void run() {
    const h5::QuietErrors quiet;  // HDF5's error printing is per thread where it is thread-safe
    for (;;) {
      Job job;
      bool failed = false;
      {
        std::unique_lock lock(mutex_);
        queued_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        busy_ = true;
        failed = error_ != nullptr;
      }
      std::exception_ptr error;
      if (!failed) {  // after an error, jobs are only emptied, never written
        try {
          if (job.series == nullptr) {
            h5::check(H5Fflush(file_, H5F_SCOPE_GLOBAL), "H5Fflush");
          } else {
            job.series->write_rows(job.rows);
            if (job.flush) job.series->flush_set();
          }
        } catch (...) {
          error = std::current_exception();
        }
      }
      {
        const std::lock_guard lock(mutex_);
        if (job.series != nullptr) {
          if (job.series->held && (failed || error)) {
            job.series->unwritten.insert(job.series->unwritten.end(), job.rows.data(),
                                         job.rows.data() + job.rows.size());
          }
          job.rows.clear();
          job.series->spare.push_back(std::move(job.rows));
          --job.series->queued;
        }
        if (error && !error_) error_ = error;
        busy_ = false;
      }
      written_.notify_all();
    }
  }

  hid_t file_ = H5I_INVALID_HID;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable queued_;   // a job was queued, or stop
  std::condition_variable written_;  // a job was done
  std::deque<Job> jobs_;
  bool busy_ = false;  // the writer thread is running a job
  bool stopping_ = false;
  std::exception_ptr error_;
};

struct StateSeries {
  BlockId block;
  RecordMode mode;
  Series series;
};

namespace {

// The writers' lock: an OFD write lock on the whole file. Taken (F_OFD_SETLK) by a writer for its
// lifetime and by --force before it unlinks an earlier run file; tested (F_OFD_GETLK) before.
bool whole_file_lock(int fd, int command, short* held = nullptr) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  const bool done = ::fcntl(fd, command, &lock) == 0;
  if (held != nullptr) *held = lock.l_type;
  return done;
}

}  // namespace

// An OFD lock on a run file for the lifetime of its writer (independent of HDF5's flock, which
// the SWMR writer drops while streaming): a second run on the same path sees it and refuses.
class RunFileLock {
 public:
  RunFileLock() = default;
  // False when another process holds the lock.
  bool acquire(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) return true;  // nothing to lock (HDF5 reports the real problem)
    if (whole_file_lock(fd_, F_OFD_SETLK)) return true;
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  ~RunFileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  RunFileLock(const RunFileLock&) = delete;
  RunFileLock& operator=(const RunFileLock&) = delete;

 private:
  int fd_ = -1;
};

struct TrajectoryWriter::Impl {
  RunFileLock lock;  // first: released after the file is closed
  bool created = false;  // this writer created the file (not a resumed run's)
  // HDF5 prints no error stack of its own while the writer lives: a failure reaches the user
  // as one message (h5::Error carries the failed system call's errno).
  h5::QuietErrors quiet;
  std::string path;
  const StateLayout* layout;
  long flush_every;
  double flush_seconds;
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();
  h5::Handle file;
  BufferArena arena;  // the state series' chunk buffers (outlives them and the writer thread)
  Series time;
  std::vector<StateSeries> states;
  std::vector<Series> metrics;
  std::vector<Series> evaluations;  // the table series (/metrics/epoch/<name>, /metrics/phase/<name>)
  double flush_latency = 2.0;
  bool waiting = false;  // samples or rows not yet flushed …
  std::chrono::steady_clock::time_point waiting_since;  // … since then
  std::vector<Eigen::Index> examples;  // recorded columns of per-example blocks (empty: all)
  std::vector<double> row;             // a sample's selected columns
  long samples = 0;
  bool streaming = false;      // in SWMR mode (an in-memory file: streaming, without SWMR)
  bool in_memory = false;      // HDF5's core driver, no backing store: nothing on disk
  bool closed_series = false;  // after end_streaming(): no more samples
  StreamWriter writer;         // runs while streaming
  SpaceReserve reserve;        // for the last writes of a run whose disk is full

  // Rows pushed to `s`: a full chunk goes to the writer thread while streaming, else to the file.
  void push(Series& s, const double* first, std::size_t n) {
    s.buffer.append(first, n);
    if (!s.chunk_full()) return;
    if (writer.running()) {
      hand_over(s, false);
    } else {
      write_now([&] {
        s.write_rows(s.buffer);
        s.buffer.clear();
      });
    }
  }
  void push(Series& s, double v) { push(s, &v, 1); }

  // An HDF5 call made on this thread. While streaming without a writer thread (no core for it:
  // writer_thread_wanted()), a failure ends the run through fail(), as one of the writer
  // thread does: the file keeps its complete samples.
  template <class Write>
  void write_now(Write&& write) {
    if (!streaming) {
      write();
      return;
    }
    try {
      write();
    } catch (...) {
      fail(std::current_exception());
    }
  }

  // Every buffered row written and every dataset flushed, then the file (queued to the writer
  // thread while streaming). /time last, each dataset flushed before the next: a reader of a
  // killed run takes the length of /time as the number of complete samples, and every other
  // dataset holds at least as many rows. (/time and the metrics, one double a row, are only
  // written here.)
  void flush_all() {
    auto write_and_flush = [&](Series& s) {
      if (writer.running()) {
        hand_over(s, true);
      } else {
        write_now([&] {
          s.write_rows(s.buffer);
          s.buffer.clear();
          s.flush_set();
        });
      }
    };
    for (StateSeries& ss : states) write_and_flush(ss.series);
    for (Series& s : metrics) write_and_flush(s);
    for (Series& s : evaluations) write_and_flush(s);
    write_and_flush(time);
    if (writer.running()) {
      writer.flush_file();
    } else {
      write_now([&] { h5::check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), "H5Fflush"); });
    }
    last_flush = std::chrono::steady_clock::now();
    waiting = false;
  }

  // The writer thread's hand_over() and wait(): a failed write ends the run through fail().
  void hand_over(Series& s, bool flush) {
    try {
      writer.hand_over(s, flush);
    } catch (...) {
      fail();
    }
  }
  void wait() {
    try {
      writer.wait();
    } catch (...) {
      fail();
    }
  }

  // A write of the writer thread failed (a full disk, an I/O error): stops the thread, makes
  // the file hold exactly the complete samples that reached it (salvage()), closes it and
  // throws DataFileError: "<path>: cannot write the output: disk full (No space left on
  // device); the file keeps the first N sample(s)". The CLI exits with status 2.
  [[noreturn]] void fail(std::exception_ptr given = nullptr) {
    writer.stop();
    const std::exception_ptr cause = given ? given : writer.error();
    reserve.release();  // the space the salvage and the closing metadata need
    const long kept = salvage();
    close();
    std::string reason = "unknown error";
    try {
      if (cause) std::rethrow_exception(cause);
    } catch (const h5::Error& e) {
      reason = e.system_errno() != 0 ? h5::describe_errno(e.system_errno()) : e.what();
    } catch (const std::exception& e) {
      reason = e.what();
    }
    throw DataFileError(path, 0, fmt::format("{}: cannot write the output: {}; the file keeps "
                                             "the first {} sample(s)", path, reason, kept));
  }

  // After a failed write while streaming, with the writer thread stopped: the number N of
  // samples whose every state row reached the file; /time and the metrics completed to N rows
  // from the rows not yet written (they are small), every per-sample dataset cut to N samples
  // (the one whose write failed may be longer than what was written), the table series'
  // pending rows written, the file flushed. A step that fails leaves N at what is on disk
  // (/time never longer than the state datasets). Returns N. Does not throw.
  long salvage() noexcept {
    auto stride = [](const StateSeries& ss) -> hsize_t {
      return ss.mode.kind == RecordMode::every ? static_cast<hsize_t>(ss.mode.stride) : 1;
    };
    hsize_t n = static_cast<hsize_t>(samples);
    for (const StateSeries& ss : states) n = std::min(n, ss.series.rows_written * stride(ss));
    // The rows of a held series not yet in the file, oldest first.
    auto pending = [](const Series& s) {
      std::vector<double> rows = s.unwritten;
      rows.insert(rows.end(), s.buffer.data(), s.buffer.data() + s.buffer.size());
      return rows;
    };
    auto write_pending = [&](Series& s, hsize_t rows) {  // up to `rows` rows in all
      try {
        if (rows <= s.rows_written) return;
        const std::vector<double> values = pending(s);
        const hsize_t wanted = rows - s.rows_written;  // rows may be "all": no product
        const std::size_t count = wanted >= values.size() / s.row_size
                                      ? values.size()
                                      : static_cast<std::size_t>(wanted * s.row_size);
        RowBuffer buffer;
        buffer.append(values.data(), count);
        s.write_rows(buffer);
      } catch (...) {  // what is on disk stays
      }
    };
    write_pending(time, n);
    n = std::min(n, time.rows_written);
    for (Series& s : metrics) {
      write_pending(s, n);
      n = std::min(n, s.rows_written);
    }
    auto cut = [](Series& s, hsize_t rows) {
      try {
        s.set_rows(rows);
      } catch (...) {
      }
    };
    cut(time, n);
    for (Series& s : metrics) cut(s, n);
    for (StateSeries& ss : states) cut(ss.series, (n + stride(ss) - 1) / stride(ss));
    for (Series& s : evaluations) {
      write_pending(s, std::numeric_limits<hsize_t>::max());
      cut(s, s.rows_written);
    }
    if (file.valid()) H5Fflush(file.get(), H5F_SCOPE_GLOBAL);
    samples = static_cast<long>(n);
    return samples;
  }

  // Closes every dataset, then the file (failure or not: nothing is written after this).
  void close() noexcept {
    time.set.reset();
    for (StateSeries& ss : states) ss.series.set.reset();
    for (Series& s : metrics) s.set.reset();
    for (Series& s : evaluations) s.set.reset();
    file.reset();
    streaming = false;
    closed_series = true;
  }
};

RecordMode OutputSpec::mode_for(const std::string& kind, const std::string& member) const {
  if (const auto it = record.find(kind + "/" + member); it != record.end()) return it->second;
  if (const auto it = record.find(kind); it != record.end()) return it->second;
  return default_mode;
}

TrajectoryWriter::TrajectoryWriter(const std::string& path, const StateLayout& layout,
                                   const OutputSpec& spec, std::vector<std::string> metric_names,
                                   std::vector<std::string> table_series, const Snapshot* resume,
                                   bool in_memory)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  assert(!(in_memory && resume != nullptr));
  for (const long e : spec.examples) m.examples.push_back(static_cast<Eigen::Index>(e));
  m.path = path;
  m.layout = &layout;
  m.flush_every = spec.flush_every;
  m.flush_seconds = spec.flush_seconds;
  m.flush_latency = spec.flush_latency;
  m.in_memory = in_memory;
  if (!in_memory) m.reserve = SpaceReserve(path);
  {
    const h5::QuietErrors quiet;
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!in_memory && !parent.empty() && !std::filesystem::is_directory(parent)) {
      throw DataFileError(path, 0, fmt::format("{}: cannot write the output file: directory '{}' "
                                               "does not exist", path, parent.string()));
    }
    // The latest file format: needed for single-writer/multiple-reader (SWMR) streaming.
    h5::Handle fapl(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    // No raw-data chunk cache: rows are written once and never read back, so a full chunk goes
    // from the buffer straight to the file instead of into a freshly zeroed cache slot first.
    // (Set for the file, not per dataset: H5Fstart_swmr_write reopens the datasets with the
    // default access properties, which take the file's.)
    H5Pset_cache(fapl.get(), 0, 521, 0, 0.75);
    if (in_memory) {
      // The core driver grows the image in steps of 16 MiB; without a backing store it never
      // opens, creates or truncates a file of this name.
      h5::check(H5Pset_fapl_core(fapl.get(), std::size_t{16} << 20, false), "H5Pset_fapl_core");
      const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
      if (file < 0) {
        throw DataFileError(path, 0, fmt::format("{}: cannot create the run in memory", path));
      }
      m.file = h5::Handle(file, H5Fclose);
    } else if (resume != nullptr) {
      if (!m.lock.acquire(path)) {
        throw DataFileError(path, 0, fmt::format("{}: another learnflow run is writing this file", path));
      }
      // A killed writer leaves the file marked as open for writing; clear the mark (h5clear -s).
      hbool_t clear = true;
      H5Pset(fapl.get(), "clear_status_flags", &clear);
      // A kill during a flush can leave a superblock whose end of allocation lies past the bytes
      // that reached the disk: HDF5 would refuse the "truncated" file (h5clear skips this check
      // too). Only rows a checkpoint counted, flushed before it, are kept.
      hbool_t skip_eof_check = true;
      H5Pset(fapl.get(), "skip_eof_check", &skip_eof_check);
      H5Pset_file_locking(fapl.get(), false, true);  // the OFD lock above keeps other runs out
      const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
      if (file < 0) {
        throw DataFileError(path, 0, fmt::format("{}: cannot open the run file to resume it", path));
      }
      m.file = h5::Handle(file, H5Fclose);
      // A killed SWMR writer may have written chunks past the end of file its superblock records
      // (the EOA): the EOA becomes the file's real end plus a margin (h5clear --increment), so
      // that those chunks, which the index may point to, are readable and writable again and no
      // new allocation overlaps them.
      // The killed writer may also have allocated space it never wrote (the tail of a chunk
      // written in part, metadata not yet flushed): the new EOA lies beyond all of it, at most a
      // chunk per series and the metadata accumulator past the file's end.
      // The chunks are those the file's datasets were created with (flush_every may differ now).
      std::size_t margin = std::size_t{4} << 20;
      std::vector<std::string> series{"/time"};
      for (const Block& b : layout.blocks()) series.push_back("/state/" + b.name());
      for (const std::string& name : metric_names) series.push_back("/metrics/" + name);
      series.insert(series.end(), table_series.begin(), table_series.end());
      for (const std::string& dataset : series) {
        if (!h5::exists(file, dataset)) continue;
        h5::Handle set(h5::check(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
        h5::Handle dcpl(h5::check(H5Dget_create_plist(set.get()), "H5Dget_create_plist"), H5Pclose);
        hsize_t dims[8] = {};
        const int rank = H5Pget_chunk(dcpl.get(), 8, dims);
        std::size_t bytes = sizeof(double);
        for (int i = 0; i < rank; ++i) bytes *= static_cast<std::size_t>(dims[i]);
        margin += bytes;
      }
      h5::check(H5Fincrement_filesize(file, margin), "H5Fincrement_filesize");
      // What the interrupted run wrote after its samples (if it was killed while finishing) is
      // written again at the end.
      for (const char* done : {"/solver", "/waves", "/parameters/final", "/adjoint"}) {
        if (h5::exists(file, done)) h5::check(H5Ldelete(file, done, H5P_DEFAULT), "H5Ldelete");
      }
    } else {
      // Exclusive: a file that appeared since the checks (another run) is never truncated.
      const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get());
      if (file < 0) {
        std::error_code error;
        throw DataFileError(path, 0, std::filesystem::exists(path, error)
                                         ? fmt::format("{}: the output file exists (another run "
                                                       "created it just now?)", path)
                                         : fmt::format("{}: cannot write the output file "
                                                       "(permission denied or not a valid path)", path));
      }
      m.file = h5::Handle(file, H5Fclose);
      m.created = true;
      if (!m.lock.acquire(path)) {
        throw DataFileError(path, 0, fmt::format("{}: another learnflow run is writing this file", path));
      }
    }
  }
  try {
  const hid_t f = m.file.get();
  // The rows a resumed series is cut back to (-1: a new series).
  auto rows = [&](const std::string& dataset) -> long long {
    return resume != nullptr ? static_cast<long long>(resume->count("writer/rows" + dataset)) : -1;
  };
  if (resume != nullptr) m.samples = static_cast<long>(resume->count("writer/samples"));
  m.time.create(f, "/time", {}, spec.flush_every, rows("/time"));
  m.time.held = true;
  for (BlockId id = 0; id < layout.blocks().size(); ++id) {
    const Block& b = layout.block(id);
    const RecordMode mode = spec.mode_for(b.kind, b.member);
    if (mode.kind == RecordMode::none) continue;
    StateSeries ss{id, mode, {}};
    // Per-example blocks of a training run carry the batch axis: [T, B, n].
    std::vector<hsize_t> shape;
    if (mode.kind != RecordMode::norm && b.per_example() && layout.batch().axis) {
      shape.push_back(static_cast<hsize_t>(m.examples.empty() ? b.examples
                                                              : static_cast<Eigen::Index>(m.examples.size())));
    }
    if (mode.kind != RecordMode::norm) shape.insert(shape.end(), b.shape.begin(), b.shape.end());
    ss.series.create(f, "/state/" + b.name(), shape, spec.flush_every, rows("/state/" + b.name()));
    m.states.push_back(std::move(ss));
    if (resume != nullptr) continue;  // its attributes are there
    StateSeries& added = m.states.back();
    const char* mode_name = mode.kind == RecordMode::all     ? "all"
                            : mode.kind == RecordMode::every ? "every"
                                                             : "norm";
    h5::write_attribute(added.series.set.get(), "record",
                        mode.kind == RecordMode::every ? fmt::format("every:{}", mode.stride)
                                                       : std::string(mode_name));
    h5::write_attribute(added.series.set.get(), "stride", static_cast<std::int64_t>(mode.stride));
  }
  for (const std::string& name : metric_names) {
    m.metrics.emplace_back();
    m.metrics.back().create(f, "/metrics/" + name, {}, spec.flush_every, rows("/metrics/" + name));
    m.metrics.back().held = true;
  }
  for (const std::string& path : table_series) {
    m.evaluations.emplace_back();
    m.evaluations.back().create(f, path, {}, spec.flush_every, rows(path));
    m.evaluations.back().held = true;
  }
  std::vector<std::size_t> chunks;
  for (const StateSeries& ss : m.states) {
    chunks.insert(chunks.end(), 1 + max_queued_buffers, ss.series.chunk_values());
  }
  m.arena = BufferArena(BufferArena::values_for(chunks));
  for (StateSeries& ss : m.states) ss.series.take_buffers(m.arena);
  } catch (const std::exception& e) {
    discard_file();  // a file this run created holds nothing yet: it goes (a resumed one stays)
    if (resume == nullptr) throw;
    throw DataFileError(path, 0, fmt::format("{}: cannot resume: the file does not match its "
                                             "checkpoint ({})", path, e.what()));
  }
}

void TrajectoryWriter::discard_file() noexcept {
  Impl& m = *impl_;
  m.writer.stop();
  m.time.set.reset();
  for (StateSeries& ss : m.states) ss.series.set.reset();
  for (Series& s : m.metrics) s.set.reset();
  for (Series& s : m.evaluations) s.set.reset();
  m.file.reset();
  if (m.created) std::remove(m.path.c_str());
  m.created = false;
}

TrajectoryWriter::~TrajectoryWriter() {
  impl_->reserve.release();  // for the last flush and H5Fclose's metadata, should the disk be full
  try {
    flush();
  } catch (...) {  // a destructor must not throw; the last flush is best effort (a failed
  }                // streaming write: salvaged and closed by fail())
  impl_->writer.stop();  // before the datasets and the file are closed
}

long TrajectoryWriter::samples() const noexcept { return impl_->samples; }

namespace {

// Bob Jenkins' lookup3 hash (hashlittle, byte by byte), with which HDF5 checksums its metadata.
std::uint32_t lookup3(const unsigned char* k, std::size_t length, std::uint32_t initval) {
  const auto rot = [](std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  std::uint32_t a = 0xdeadbeefU + static_cast<std::uint32_t>(length) + initval, b = a, c = a;
  for (; length > 12; length -= 12, k += 12) {
    a += k[0] + (std::uint32_t{k[1]} << 8) + (std::uint32_t{k[2]} << 16) + (std::uint32_t{k[3]} << 24);
    b += k[4] + (std::uint32_t{k[5]} << 8) + (std::uint32_t{k[6]} << 16) + (std::uint32_t{k[7]} << 24);
    c += k[8] + (std::uint32_t{k[9]} << 8) + (std::uint32_t{k[10]} << 16) + (std::uint32_t{k[11]} << 24);
    a -= c; a ^= rot(c, 4);  c += b;
    b -= a; b ^= rot(a, 6);  a += c;
    c -= b; c ^= rot(b, 8);  b += a;
    a -= c; a ^= rot(c, 16); c += b;
    b -= a; b ^= rot(a, 19); a += c;
    c -= b; c ^= rot(b, 4);  b += a;
  }
  if (length == 0) return c;
  // The last 1..12 bytes, little-endian into a, b, c.
  std::uint32_t tail[3] = {0, 0, 0};
  for (std::size_t i = 0; i < length; ++i) tail[i / 4] += std::uint32_t{k[i]} << (8 * (i % 4));
  a += tail[0];
  b += tail[1];
  c += tail[2];
  c ^= b; c -= rot(b, 14);
  a ^= c; a -= rot(c, 11);
  b ^= a; b -= rot(a, 25);
  c ^= b; c -= rot(b, 16);
  a ^= c; a -= rot(c, 4);
  b ^= a; b -= rot(a, 14);
  c ^= b; c -= rot(b, 24);
  return c;
}

}  // namespace

std::uint32_t hdf5_metadata_checksum(const unsigned char* data, std::size_t length) {
  return lookup3(data, length, 0);
}

void repair_superblock_checksum(std::vector<unsigned char>& image) {
  // Superblock version 2 or 3: signature (8 bytes), version, size of offsets O, size of
  // lengths, status flags, four addresses of O bytes, then the checksum of all that.
  if (image.size() < 12 || image[8] < 2 || image[8] > 3) return;
  const std::size_t covered = 12 + 4 * std::size_t{image[9]};
  if (image.size() < covered + 4) return;
  const std::uint32_t sum = hdf5_metadata_checksum(image.data(), covered);
  for (int i = 0; i < 4; ++i) image[covered + i] = static_cast<unsigned char>(sum >> (8 * i));
}

bool writer_thread_wanted() {
  if (const char* forced = std::getenv("LEARNFLOW_WRITER_THREAD"); forced != nullptr && *forced != '\0') {
    return std::string_view(forced) != "0";
  }
  return thread_count() < available_cores();
}

std::vector<unsigned char> TrajectoryWriter::image() {
  Impl& m = *impl_;
  flush();
  if (!m.file.valid()) return {};
  if (!m.streaming) h5::check(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), "H5Fflush");
  const ssize_t size = H5Fget_file_image(m.file.get(), nullptr, 0);
  if (size < 0) throw DataFileError(m.path, 0, fmt::format("{}: cannot read the file's image", m.path));
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  if (H5Fget_file_image(m.file.get(), bytes.data(), bytes.size()) != size) {
    throw DataFileError(m.path, 0, fmt::format("{}: cannot read the file's image", m.path));
  }
  // HDF5 1.10 clears the superblock's "open for writing" flag in the image but leaves the
  // checksum of the flagged superblock: no reader would open the image. (The image is taken of a
  // file still open for writing; closing it first would free it.)
  repair_superblock_checksum(bytes);
  return bytes;
}

void TrajectoryWriter::write_metadata(const RunMetadata& meta) {
  h5::Handle root(h5::check(H5Gopen2(impl_->file.get(), "/", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
  const hid_t r = root.get();
  h5::write_attribute(r, "learnflow_version", std::string(LEARNFLOW_VERSION));
  h5::write_attribute(r, "model", meta.model);
  h5::write_attribute(r, "integrator", meta.integrator);
  h5::write_attribute(r, "seed", static_cast<std::int64_t>(meta.seed));
  h5::write_attribute(r, "threads", static_cast<std::int64_t>(meta.threads));
  h5::write_attribute(r, "kernels", meta.kernels);
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
    if (p.activation == Activation::leaky_relu) h5::write_attribute(g.get(), "leaky_slope", p.activation.slope);
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

void TrajectoryWriter::rewrite_schedule(const std::vector<double>& planned,
                                        const std::vector<double>& reached) {
  const hid_t f = impl_->file.get();
  h5::Handle group(h5::check(H5Gopen2(f, "/schedule", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
  h5::check(H5Ldelete(group.get(), "breakpoints", H5P_DEFAULT), "H5Ldelete");
  if (h5::exists(f, "/schedule/planned_breakpoints")) {  // a resumed run rewrites it
    h5::check(H5Ldelete(group.get(), "planned_breakpoints", H5P_DEFAULT), "H5Ldelete");
  }
  const std::vector<double> inner(reached.begin() + 1, reached.end() - 1);
  h5::write_dataset(f, "/schedule/breakpoints", {inner.size()}, inner.data());
  const std::vector<double> planned_inner(planned.begin() + 1, planned.end() - 1);
  h5::write_dataset(f, "/schedule/planned_breakpoints", {planned_inner.size()}, planned_inner.data());
  H5Adelete(group.get(), "t_end");
  h5::write_attribute(group.get(), "t_end", reached.back());
  h5::write_attribute(group.get(), "planned_t_end", planned.back());
}

void TrajectoryWriter::append(double t, const State& s, std::span<const double> metrics) {
  Impl& m = *impl_;
  assert(!m.closed_series && "append after end_streaming");
  m.push(m.time, t);
  for (StateSeries& ss : m.states) {
    if (ss.mode.kind == RecordMode::every && m.samples % ss.mode.stride != 0) continue;
    const auto block = m.layout->vector(s, ss.block);
    const Block& b = m.layout->block(ss.block);
    if (ss.mode.kind == RecordMode::norm) {
      m.push(ss.series, block.norm());
    } else if (b.per_example() && !m.examples.empty()) {
      // The chosen examples' columns of the n×B block, in the order given.
      const Eigen::Index n = b.shape[0];
      m.row.resize(static_cast<std::size_t>(n) * m.examples.size());
      for (std::size_t j = 0; j < m.examples.size(); ++j) {
        std::copy_n(block.data() + m.examples[j] * n, n, m.row.data() + j * static_cast<std::size_t>(n));
      }
      m.push(ss.series, m.row.data(), m.row.size());
    } else {
      m.push(ss.series, block.data(), static_cast<std::size_t>(block.size()));
    }
  }
  for (std::size_t i = 0; i < m.metrics.size(); ++i) m.push(m.metrics[i], metrics[i]);
  ++m.samples;
  const bool was_waiting = std::exchange(m.waiting, true);
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - m.last_flush).count();
  // A fast run flushes after multiples of flush_every samples (whole chunks); a slow one as soon
  // as its oldest unflushed sample has waited flush_latency (tick() checks between samples).
  if ((m.samples % m.flush_every == 0 && since >= m.flush_seconds) ||
      (!was_waiting && since >= m.flush_latency)) {
    m.flush_all();  // while streaming: queued, the integration goes on
  } else if (!was_waiting) {
    m.waiting_since = now;
  }
}

void TrajectoryWriter::append_row(std::size_t first, std::span<const double> values) {
  Impl& m = *impl_;
  assert(!m.closed_series && "append after end_streaming");
  assert(first + values.size() <= m.evaluations.size());
  for (std::size_t i = 0; i < values.size(); ++i) m.push(m.evaluations[first + i], values[i]);
  if (!std::exchange(m.waiting, true)) m.waiting_since = std::chrono::steady_clock::now();
}

void TrajectoryWriter::tick() {
  Impl& m = *impl_;
  if (!m.waiting || m.closed_series) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - m.waiting_since).count() >= m.flush_latency) m.flush_all();
}

void TrajectoryWriter::flush() {
  Impl& m = *impl_;
  if (!m.file.valid()) return;
  m.flush_all();
  if (m.writer.running()) m.wait();  // on disk when flush() returns
}

void TrajectoryWriter::begin_streaming() {
  flush();
  // From here on the file is written in SWMR mode: HDF5 orders its metadata writes so that the
  // file on disk is readable at every moment, by h5py (swmr=True) or `learnflow info`, even
  // after a SIGKILL. No object can be created until end_streaming(). The writer thread makes
  // every HDF5 call from here to end_streaming(). (An in-memory file has no reader to serve.)
  if (!impl_->in_memory) h5::check(H5Fstart_swmr_write(impl_->file.get()), "H5Fstart_swmr_write");
  impl_->streaming = true;
  if (writer_thread_wanted()) impl_->writer.start(impl_->file.get());
}

void TrajectoryWriter::end_streaming() {
  Impl& m = *impl_;
  if (!m.streaming) return;
  m.flush_all();
  m.writer.stop();  // the queue finished: HDF5 is the main thread's again
  if (m.writer.error()) m.fail();
  // Close every dataset, then the file, and reopen it normally to add /solver, /waves, …
  m.time.set.reset();
  for (StateSeries& ss : m.states) ss.series.set.reset();
  for (Series& s : m.metrics) s.set.reset();
  for (Series& s : m.evaluations) s.set.reset();
  m.streaming = false;
  m.closed_series = true;
  if (m.in_memory) return;  // never in SWMR mode; closing it would lose it
  m.file.reset();
  reopen_file();
}

void TrajectoryWriter::close_file() {
  Impl& m = *impl_;
  assert(!m.streaming);
  if (!m.file.valid() || m.in_memory) return;
  h5::check(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), "H5Fflush");
  h5::check(m.file.close(), "H5Fclose");
}

void TrajectoryWriter::reopen_file() {
  Impl& m = *impl_;
  if (m.in_memory) return;  // open all along
  const h5::QuietErrors quiet;
  hid_t file = H5Fopen(m.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (file < 0) {
    // A reader (h5py with swmr=True) may still hold its shared lock on the file: it must not make
    // the run fail at its end. Open without HDF5's lock then; our own lock keeps writers out.
    h5::Handle fapl(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
    H5Pset_file_locking(fapl.get(), false, true);
    file = H5Fopen(m.path.c_str(), H5F_ACC_RDWR, fapl.get());
  }
  m.file = h5::Handle(h5::check(file, "H5Fopen"), H5Fclose);
}

void TrajectoryWriter::save_rows(Snapshot& out) {
  Impl& m = *impl_;
  flush();  // every row on disk: the file holds exactly what the counts say
  auto save = [&](const Series& s) {
    out.put("writer/rows" + s.path, static_cast<double>(s.rows_written));
  };
  save(m.time);
  for (const StateSeries& ss : m.states) save(ss.series);
  for (const Series& s : m.metrics) save(s);
  for (const Series& s : m.evaluations) save(s);
  out.put("writer/samples", static_cast<double>(m.samples));
}

namespace {

// Whether `path` is a learnflow run file: its root has the attribute learnflow_version. Opened
// without HDF5's lock and, for the file of a killed run (still marked open), in SWMR mode.
bool is_run_file(const std::string& path) {
  const h5::QuietErrors quiet;
  if (H5Fis_hdf5(path.c_str()) <= 0) return false;
  h5::Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_file_locking(fapl.get(), false, true);
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (file < 0) file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get());
  if (file < 0) return false;
  const h5::Handle owned(file, H5Fclose);
  return H5Aexists_by_name(file, "/", "learnflow_version", H5P_DEFAULT) > 0;
}

}  // namespace

void remove_run_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw DataFileError(path, 0, fmt::format("{}: cannot open the earlier run file to replace it: {}",
                                             path, std::strerror(errno)));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  // The lock a writer holds: taken on this very file, so that no run can start writing it
  // between the check and the unlink.
  if (!whole_file_lock(fd, F_OFD_SETLK)) {
    throw DataFileError(path, 0, fmt::format("{}: another learnflow run is writing this file; "
                                             "choose another output file", path));
  }
  if (!is_run_file(path)) {
    throw DataFileError(path, 0, fmt::format("{}: --force replaces only an earlier learnflow run "
                                             "file, and this is not one: remove it yourself if it "
                                             "is not needed", path));
  }
  struct stat opened {}, named {};
  if (::fstat(fd, &opened) != 0 || ::stat(path.c_str(), &named) != 0 ||
      opened.st_dev != named.st_dev || opened.st_ino != named.st_ino) {
    throw DataFileError(path, 0, fmt::format("{}: the file changed while it was being replaced "
                                             "(another run?)", path));
  }
  if (::unlink(path.c_str()) != 0) {
    throw DataFileError(path, 0, fmt::format("{}: cannot remove the earlier run file: {}", path,
                                             std::strerror(errno)));
  }
}

bool run_file_in_use(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  short type = F_UNLCK;
  const bool held = whole_file_lock(fd, F_OFD_GETLK, &type) && type != F_UNLCK;
  ::close(fd);
  return held;
}

void TrajectoryWriter::write_array(const std::string& path,
                                   const std::vector<unsigned long long>& shape, const double* data) {
  h5::write_dataset(impl_->file.get(), path, shape, data);
}

void TrajectoryWriter::write_arrays(const std::vector<ParameterArray>& arrays) {
  for (const ParameterArray& a : arrays) {
    std::vector<unsigned long long> shape;
    for (const Eigen::Index d : a.shape) shape.push_back(static_cast<unsigned long long>(d));
    if (a.integer) {
      const std::vector<std::int64_t> values(a.values.begin(), a.values.end());
      h5::write_dataset(impl_->file.get(), a.name, shape, values.data());
    } else {
      h5::write_dataset(impl_->file.get(), a.name, shape, a.values.data());
    }
  }
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

void TrajectoryWriter::write_parameters(const std::string& group,
                                        const std::vector<ParameterArray>& arrays) {
  for (const ParameterArray& a : arrays) {
    std::vector<unsigned long long> shape;
    for (const Eigen::Index d : a.shape) shape.push_back(static_cast<unsigned long long>(d));
    h5::write_dataset(impl_->file.get(), "/parameters/" + group + "/" + a.name, shape, a.values.data());
  }
}

void TrajectoryWriter::write_data(const DataSet& data,
                                  const std::vector<std::pair<std::string, std::string>>& texts) {
  const hid_t f = impl_->file.get();
  h5::Handle g = h5::create_group_path(f, "/data");
  h5::write_attribute(g.get(), "name", data.name);
  h5::write_attribute(g.get(), "error_rows", static_cast<std::int64_t>(data.error_rows));
  h5::write_attribute(g.get(), "has_labels", static_cast<std::int64_t>(data.has_labels));
  for (const auto& [name, value] : texts) h5::write_attribute(g.get(), name.c_str(), value);
  auto describe = [&](const ExampleSet& set, const std::string& split) {
    h5::write_attribute(g.get(), (split + "_source").c_str(), set.source);
    h5::write_attribute(g.get(), (split + "_examples").c_str(), static_cast<std::int64_t>(set.size()));
    h5::write_attribute(g.get(), (split + "_features").c_str(), static_cast<std::int64_t>(set.inputs.rows()));
    h5::write_attribute(g.get(), (split + "_crc32").c_str(), static_cast<std::int64_t>(set.crc32));
    const std::vector<std::int64_t> index(set.index.begin(), set.index.end());
    h5::write_dataset(f, "/data/" + split + "_index", {index.size()}, index.data());
  };
  describe(data.train, "train");
  describe(data.test, "test");
}

void TrajectoryWriter::write_waves(const std::string& kind, const std::string& member,
                                   const std::vector<double>& arrivals,
                                   const std::vector<double>& neuron_quartiles) {
  write_array("/waves/" + kind + "/" + member, {arrivals.size()}, arrivals.data());
  write_array("/waves/neurons/" + kind + "/" + member, {arrivals.size(), 3}, neuron_quartiles.data());
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
