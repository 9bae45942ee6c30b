#include "outputs/checkpoint_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "outputs/h5util.hpp"
#include "sim/core/errors.hpp"

namespace lf {
namespace {

// Every array is the dataset /arrays/<index> with its name in the attribute `name`; every text
// the attribute <index> of /texts with its name in /texts' attribute `names` (one per line).
constexpr int format_version = 1;

// fsync of a file or directory; false when it failed.
bool sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0;
  return ::close(fd) == 0 && synced;
}

// Whether `path` is a checkpoint learnflow wrote (its root attribute learnflow_checkpoint).
bool is_checkpoint(const std::string& path) {
  const h5::QuietErrors quiet;
  if (H5Fis_hdf5(path.c_str()) <= 0) return false;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return false;
  const h5::Handle owned(file, H5Fclose);
  return H5Aexists_by_name(file, "/", "learnflow_checkpoint", H5P_DEFAULT) > 0;
}

}  // namespace

bool foreign_checkpoint(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error) && !is_checkpoint(path);
}

void remove_checkpoint(const std::string& path) {
  std::error_code error;
  if (std::filesystem::exists(path, error) && is_checkpoint(path)) std::filesystem::remove(path, error);
  // The temporary is learnflow's by its name; a kill while it was written leaves it half done.
  std::filesystem::remove(path + ".partial", error);
}

std::string checkpoint_path(const std::string& output_path) { return output_path + ".checkpoint"; }

void write_checkpoint(const std::string& path, const Snapshot& snapshot) {
  const std::string temporary = path + ".partial";
  try {
    const h5::QuietErrors quiet;
    h5::Handle fapl(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);  // large attributes
    h5::Handle file(h5::check(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                              "H5Fcreate"), H5Fclose);
    h5::Handle root(h5::check(H5Gopen2(file.get(), "/", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
    h5::write_attribute(root.get(), "learnflow_checkpoint", static_cast<std::int64_t>(format_version));
    h5::Handle arrays = h5::create_group_path(file.get(), "/arrays");
    std::size_t i = 0;
    for (const auto& [name, values] : snapshot.arrays()) {
      const std::string at = fmt::format("/arrays/{}", i++);
      h5::write_dataset(file.get(), at, {values.size()}, values.data());
      h5::Handle set(h5::check(H5Dopen2(file.get(), at.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
      h5::write_attribute(set.get(), "name", name);
    }
    h5::Handle texts = h5::create_group_path(file.get(), "/texts");
    std::string names;
    i = 0;
    for (const auto& [name, text] : snapshot.texts()) {
      names += name + "\n";
      h5::write_attribute(texts.get(), std::to_string(i++).c_str(), text);
    }
    h5::write_attribute(texts.get(), "names", names);
    h5::check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), "H5Fflush");
    texts.reset();
    arrays.reset();
    root.reset();
    if (file.close() < 0) throw std::runtime_error("H5Fclose failed");
  } catch (const std::exception& e) {
    std::remove(temporary.c_str());
    throw DataFileError(path, 0, fmt::format("{}: cannot write the checkpoint: {}", path, e.what()));
  }
  // Only a checkpoint that is on disk replaces the previous one.
  if (!sync_file(temporary) || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw DataFileError(path, 0, fmt::format("{}: cannot write the checkpoint (sync or rename failed)", path));
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  sync_file(parent.empty() ? std::string(".") : parent.string());
}

Snapshot read_checkpoint(const std::string& path) {
  Snapshot snapshot;
  try {
    const h5::QuietErrors quiet;
    h5::Handle file(h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen"),
                    H5Fclose);
    h5::Handle root(h5::check(H5Gopen2(file.get(), "/", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
    if (h5::read_attribute_text(root.get(), "learnflow_checkpoint") != std::to_string(format_version)) {
      throw std::runtime_error("written by another version of learnflow");
    }
    for (std::size_t i = 0; h5::exists(file.get(), fmt::format("/arrays/{}", i)); ++i) {
      const std::string at = fmt::format("/arrays/{}", i);
      std::vector<unsigned long long> shape;
      std::vector<double> values = h5::read_dataset(file.get(), at, shape);
      h5::Handle set(h5::check(H5Dopen2(file.get(), at.c_str(), H5P_DEFAULT), "H5Dopen2"), H5Dclose);
      snapshot.put(h5::read_attribute_text(set.get(), "name"), std::move(values));
    }
    h5::Handle texts(h5::check(H5Gopen2(file.get(), "/texts", H5P_DEFAULT), "H5Gopen2"), H5Gclose);
    const std::string names = h5::read_attribute_text(texts.get(), "names");
    std::size_t i = 0, from = 0;
    for (std::size_t end; (end = names.find('\n', from)) != std::string::npos; from = end + 1) {
      snapshot.put_text(names.substr(from, end - from),
                        h5::read_attribute_text(texts.get(), std::to_string(i++)));
    }
  } catch (const std::exception& e) {
    throw DataFileError(path, 0, fmt::format("{}: cannot read the checkpoint: {}", path, e.what()));
  }
  return snapshot;
}

}  // namespace lf
