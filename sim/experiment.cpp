#include "sim/experiment.hpp"

#include "sim/errors.hpp"

namespace lf {

ConfigError::ConfigError(std::string key, std::string where, const std::string& what)
    : InputError(what), key_(std::move(key)), where_(std::move(where)) {}

DataFileError::DataFileError(std::string file, long line, const std::string& what)
    : InputError(what), file_(std::move(file)), line_(line) {}

std::size_t Experiment::input_size() const {
  std::size_t n = 0;
  for (const auto& p : network.populations) {
    if (p.role == Role::input) n += static_cast<std::size_t>(p.size);
  }
  return n;
}

std::size_t Experiment::output_size() const {
  std::size_t n = 0;
  for (const auto& p : network.populations) {
    if (p.role == Role::output) n += static_cast<std::size_t>(p.size);
  }
  return n;
}

RecordMode OutputSpec::mode_for(const std::string& kind, const std::string& member) const {
  if (const auto it = record.find(kind + "/" + member); it != record.end()) return it->second;
  if (const auto it = record.find(kind); it != record.end()) return it->second;
  return {RecordMode::all, 1};
}

}  // namespace lf
