#pragma once
// Thin RAII helpers over the HDF5 C API, used only inside outputs/*.cpp.
#include <hdf5.h>

#include <cstdint>
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
  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

// Throws std::runtime_error naming `what` when an HDF5 call failed (negative id or status).
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
