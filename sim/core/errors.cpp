#include "sim/core/errors.hpp"

namespace lf {

ConfigError::ConfigError(std::string key, std::string where, const std::string& what)
    : InputError(what), key_(std::move(key)), where_(std::move(where)) {}

DataFileError::DataFileError(std::string file, long line, const std::string& what)
    : InputError(what), file_(std::move(file)), line_(line) {}

}  // namespace lf
