#pragma once
// User-facing errors. Every message names the offending config key (or file and line), the value
// found and what was allowed; the CLI maps each class to its documented exit status.
// Bugs are assertions, not exceptions of this family.
#include <stdexcept>
#include <string>

namespace lf {

// Exit status of the `learnflow` command (DESIGN §7).
// A run stopped by signal N (SIGINT, SIGTERM, SIGHUP) exits with exit_interrupted_base + N, as a
// shell reports a process killed by it (130 for Ctrl-C), after closing its file normally.
enum ExitStatus : int {
  exit_ok = 0,
  exit_bad_input = 2,
  exit_numerical = 3,
  exit_interrupted_base = 128,
};

// Base class of every error caused by what the user gave us (config, data files, arguments).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad config value: carries the dotted key and where it was written ("file:line", or
// "--set" for a command-line override).
class ConfigError : public InputError {
 public:
  ConfigError(std::string key, std::string where, const std::string& what);
  const std::string& key() const noexcept { return key_; }
  const std::string& where() const noexcept { return where_; }

 private:
  std::string key_;
  std::string where_;
};

// A bad data file (CSV, HDF5 initialisation file, output path): carries the file and, where it
// applies, the 1-based line number (0 when the error is not about one line).
class DataFileError : public InputError {
 public:
  DataFileError(std::string file, long line, const std::string& what);
  const std::string& file() const noexcept { return file_; }
  long line() const noexcept { return line_; }

 private:
  std::string file_;
  long line_;
};

}  // namespace lf
