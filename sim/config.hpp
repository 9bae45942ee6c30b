#pragma once
// Reading TOML experiment files. A ConfigSection is a view of one table that reads typed values,
// reports bad ones as ConfigError naming the dotted key and "file:line", and at finish() reports
// every key it was never asked for as unknown, suggesting the closest known key.
#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <memory>
#include <set>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "sim/experiment.hpp"

namespace lf {

class ConfigSection {
 public:
  ConfigSection(const toml::table& table, std::string path, std::string file);

  // Every path resolve_path returned, by this section and those made from it: the files the
  // experiment reads (a run must not write over any of them).
  const std::vector<std::string>& files_read() const { return *files_read_; }

  bool has(std::string_view key) const;
  double number(std::string_view key, std::optional<double> fallback = std::nullopt) const;
  double positive(std::string_view key, std::optional<double> fallback = std::nullopt) const;
  double non_negative(std::string_view key, std::optional<double> fallback = std::nullopt) const;
  // A string key that names one of `choices`, returned as its value; `fallback` is a name.
  template <class T>
  T choice(std::string_view key, std::string_view fallback,
           std::initializer_list<std::pair<std::string_view, T>> choices) const;
  std::int64_t integer(std::string_view key, std::optional<std::int64_t> fallback = std::nullopt) const;
  bool boolean(std::string_view key, std::optional<bool> fallback = std::nullopt) const;
  std::string string(std::string_view key, std::optional<std::string> fallback = std::nullopt) const;
  std::vector<double> numbers(std::string_view key) const;          // array of numbers
  // Array of arrays of finite numbers (`finite` false: NaN and inf pass, for the caller's check).
  std::vector<std::vector<double>> number_rows(std::string_view key, bool finite = true) const;
  ConfigSection section(std::string_view key) const;                // absent: an empty section
  std::vector<ConfigSection> sections(std::string_view key) const;  // array of tables
  const toml::node* node(std::string_view key) const;               // raw node, marks it known

  std::string key_path(std::string_view key) const;  // "network.layers"
  std::string where(std::string_view key) const;     // "file:line" of the key (or of the table)
  // Resolves a path written in the config relative to the config file's folder.
  std::string resolve_path(const std::string& path) const;
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;

  // Throws ConfigError for the first key present in the table but never asked for.
  void finish() const;

 private:
  const toml::table* table_;
  std::string path_;
  std::string file_;
  mutable std::set<std::string, std::less<>> known_;
  std::shared_ptr<std::vector<std::string>> files_read_ = std::make_shared<std::vector<std::string>>();
};

template <class T>
T ConfigSection::choice(std::string_view key, std::string_view fallback,
                        std::initializer_list<std::pair<std::string_view, T>> choices) const {
  const std::string name = string(key, std::string(fallback));
  std::string names;
  for (const auto& [candidate, value] : choices) {
    if (candidate == name) return value;
    names += (names.empty() ? "" : ", ") + std::string(candidate);
  }
  fail(key, "unknown " + std::string(key) + " '" + name + "' (choose one of: " + names + ")");
}

// Applies "key.path=value" overrides to a parsed config: the value is parsed as TOML, and read as
// a bare string when it is not valid TOML (so --set model.type=leaky works). Throws ConfigError.
void apply_override(toml::table& root, const std::string& assignment);

// Reads [model]: `type` and that model's parameters (sim/model_config.cpp). Throws ConfigError.
ModelParams parse_model_params(const ConfigSection& section);

// Reads [graph] of a gnn run (sim/graph_config.cpp): edges, features, labels, masks, validated.
// Throws ConfigError or DataFileError naming the file and row.
std::shared_ptr<const Graph> read_graph(const ConfigSection& section);

// Reads, overrides and validates an experiment file. Throws InputError (ConfigError,
// DataFileError) for any problem.
Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides);
// The same from TOML text, or from a tree of values (a table built in code: its values have no
// line, so messages name `path` alone). `path` names the config in messages and is the base of
// the relative paths it holds ("" or a name without a folder: the working directory); it is
// not read.
Experiment experiment_from_text(std::string_view text, const std::string& path,
                                const std::vector<std::string>& overrides);
Experiment experiment_from_table(toml::table root, const std::string& path,
                                 const std::vector<std::string>& overrides);

// toml++ parses dotted keys, arrays and inline tables recursively, so deep nesting overflows
// the stack: the file and --set values are scanned first (outside strings and comments), and
// more than this many levels of open '[' and '{' plus dotted key components is an error.
inline constexpr std::size_t max_toml_nesting = 64;
// The 1-based line where `text` first nests deeper than `limit` levels; 0 if it never does.
std::size_t toml_nesting_violation(std::string_view text, std::size_t limit);

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word`, if it is close enough to be a plausible typo.
std::optional<std::string> closest_name(std::string_view word,
                                        const std::vector<std::string>& candidates);

}  // namespace lf
