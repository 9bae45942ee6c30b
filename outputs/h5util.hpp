#pragma once
// Thin RAII helpers over the HDF5 C API, used only inside outputs/*.cpp.
#include <hdf5.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lf::h5 {

// Owns an HDF5 identifier and closes it with the matching H5*close.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  ~Handle() { reset(); }
  void reset() {
    if (id_ >= 0 && close_ != nullptr) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  // Closes now and returns the status (reset() and the destructor ignore it).
  herr_t close() {
    const herr_t status = id_ >= 0 && close_ != nullptr ? close_(id_) : 0;
    id_ = H5I_INVALID_HID;
    return status;
  }
  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

// A failed HDF5 call. Carries the errno of the system call that failed under it, read from
// HDF5's error stack (its POSIX driver reports "errno = 28"; 0: none reported), so that a full
// disk reads as one ("HDF5 call failed: H5Dwrite: disk full (No space left on device)").
class Error : public std::runtime_error {
 public:
  Error(const std::string& call, int system_errno, const std::string& detail);
  int system_errno() const noexcept { return system_errno_; }

 private:
  int system_errno_;
};

// What errno `code` means for an output file: "disk full (No space left on device)" for
// ENOSPC, "disk quota exceeded (…)" for EDQUOT, else strerror's text.
std::string describe_errno(int code);

// Throws h5::Error naming `what` when an HDF5 call failed (negative id or status). Must be
// called right after the call: the next HDF5 call clears the error stack it reads.
hid_t check(hid_t id, const char* what);

// Whether every component of `path` exists (without HDF5 error output).
bool exists(hid_t file, const std::string& path);
Handle create_group_path(hid_t file, const std::string& path);  // creates intermediate groups
void write_attribute(hid_t object, const char* name, const std::string& value);
void write_attribute(hid_t object, const char* name, std::int64_t value);
void write_attribute(hid_t object, const char* name, double value);

// A fixed-size float64 (int64) dataset, written at once.
void write_dataset(hid_t file, const std::string& path, const std::vector<unsigned long long>& shape,
                   const double* data);
void write_dataset(hid_t file, const std::string& path, const std::vector<unsigned long long>& shape,
                   const std::int64_t* data);

// Reads a float64 dataset completely; shape returned through `shape`.
std::vector<double> read_dataset(hid_t file, const std::string& path,
                                 std::vector<unsigned long long>& shape);
// An attribute rendered as text (numbers formatted, strings as they are).
std::string read_attribute_text(hid_t object, const std::string& name);
std::vector<std::string> attribute_names(hid_t object);

// Silences HDF5's automatic error stack printing for the lifetime of the object.
class QuietErrors {
 public:
  QuietErrors();
  ~QuietErrors();
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

}  // namespace lf::h5
