#include "sim/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "integrators/registry.hpp"
#include "models/registry.hpp"
#include "sim/budget.hpp"
#include "sim/core/csv.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/graph.hpp"
#include "sim/data.hpp"

namespace lf {
namespace {

// The value of a TOML number (`n.is_number()`) as a double. An integer beyond ±2^53 has no exact
// one, and toml++ gives none: that is the key's error (it used to surface as "bad optional
// access" after the output file was created; issue 8). `element` prefixes the message.
double number_value(const ConfigSection& s, std::string_view key, const toml::node& n,
                    const std::string& element = "") {
  if (const std::optional<double> v = n.value<double>()) return *v;
  s.fail(key, fmt::format("{}integer {} lies beyond ±2^53 and has no exact value as a number",
                          element, n.value<std::int64_t>().value_or(0)));
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The closest candidate, if it is close enough to be a plausible typo.
std::optional<std::string> closest(std::string_view word, const auto& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(3, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  return best;
}

}  // namespace

std::size_t toml_nesting_violation(std::string_view text, std::size_t limit) {
  std::size_t open = 0;  // '[' and '{' not yet closed
  std::size_t dots = 0;  // dots of the key (or number) being read
  std::size_t line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (c) {
      case '\n': ++line; dots = 0; break;
      case '#':  // a comment, to the end of the line
        while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
        break;
      case '"':
      case '\'': {
        // A string, skipped: basic strings ("…", """…""") honour backslash escapes, literal
        // ones ('…', '''…''') do not. An unterminated one ends the scan (toml++ reports it).
        const bool multiline = text.substr(i, 3) == std::string(3, c);
        std::size_t j = i + (multiline ? 3 : 1);
        for (; j < text.size(); ++j) {
          if (c == '"' && text[j] == '\\') {
            ++j;
            if (j < text.size() && text[j] == '\n') ++line;
            continue;
          }
          if (text[j] == '\n') {
            if (!multiline) break;
            ++line;
          }
          if (text[j] == c && (!multiline || text.substr(j, 3) == std::string(3, c))) break;
        }
        if (j >= text.size()) return 0;
        i = multiline && text[j] == c ? j + 2 : j;
        if (text[i] == '\n') --i;  // counted by the next round
        break;
      }
      case '[': case '{': ++open; dots = 0; break;
      case ']': case '}': open -= open > 0 ? 1 : 0; dots = 0; break;
      case '=': case ',': dots = 0; break;
      case '.': ++dots; break;
      default: break;
    }
    if (open + dots > limit) return line;
  }
  return 0;
}

std::optional<std::string> closest_name(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  return closest(word, candidates);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// ---------------------------------------------------------------------------------------------
// ConfigSection

ConfigSection::ConfigSection(const toml::table& table, std::string path, std::string file)
    : table_(&table), path_(std::move(path)), file_(std::move(file)) {}

std::string ConfigSection::key_path(std::string_view key) const {
  if (key.empty()) return path_;
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

std::string ConfigSection::where(std::string_view key) const {
  const toml::node* n = key.empty() ? table_ : table_->get(key);
  if (n == nullptr) n = table_;
  const auto& src = n->source();
  // Values from --set overrides are parsed with the source path "--set" (apply_override keeps
  // it). A node without a position (a section absent from the file, a table made by --set)
  // is reported by the file alone.
  if (src.path && *src.path == "--set") return "--set";
  if (src.begin.line == 0) return file_;
  return fmt::format("{}:{}", file_, src.begin.line);
}

std::string ConfigSection::resolve_path(const std::string& path) const {
  const std::filesystem::path p(path);
  const std::string resolved =
      p.is_absolute() ? path : (std::filesystem::path(file_).parent_path() / p).lexically_normal().string();
  files_read_->push_back(resolved);
  return resolved;
}

void ConfigSection::fail(std::string_view key, const std::string& message) const {
  const std::string k = key_path(key);
  throw ConfigError(k, where(key), fmt::format("{}: {}: {}", where(key), k, message));
}

bool ConfigSection::has(std::string_view key) const {
  known_.emplace(key);
  return table_->contains(key);
}

const toml::node* ConfigSection::node(std::string_view key) const {
  known_.emplace(key);
  return table_->get(key);
}

double ConfigSection::number(std::string_view key, std::optional<double> fallback) const {
  const toml::node* n = node(key);
  if (n == nullptr) {
    if (!fallback) fail(key, "required key is missing (a number)");
    return *fallback;
  }
  if (!n->is_number()) fail(key, fmt::format("expected a number, got {}", type_name(*n)));
  const double v = number_value(*this, key, *n);
  if (!std::isfinite(v)) fail(key, fmt::format("expected a finite number, got {}", v));
  return v;
}

double ConfigSection::positive(std::string_view key, std::optional<double> fallback) const {
  const double v = number(key, fallback);
  if (!(v > 0.0)) fail(key, fmt::format("must be > 0, got {}", v));
  return v;
}

double ConfigSection::non_negative(std::string_view key, std::optional<double> fallback) const {
  const double v = number(key, fallback);
  if (v < 0.0) fail(key, fmt::format("must be >= 0, got {}", v));
  return v;
}

std::int64_t ConfigSection::integer(std::string_view key, std::optional<std::int64_t> fallback) const {
  const toml::node* n = node(key);
  if (n == nullptr) {
    if (!fallback) fail(key, "required key is missing (an integer)");
    return *fallback;
  }
  if (!n->is_integer()) fail(key, fmt::format("expected an integer, got {}", type_name(*n)));
  return n->value<std::int64_t>().value();
}

bool ConfigSection::boolean(std::string_view key, std::optional<bool> fallback) const {
  const toml::node* n = node(key);
  if (n == nullptr) {
    if (!fallback) fail(key, "required key is missing (true or false)");
    return *fallback;
  }
  if (!n->is_boolean()) fail(key, fmt::format("expected true or false, got {}", type_name(*n)));
  return n->value<bool>().value();
}

std::string ConfigSection::string(std::string_view key, std::optional<std::string> fallback) const {
  const toml::node* n = node(key);
  if (n == nullptr) {
    if (!fallback) fail(key, "required key is missing (a string)");
    return *fallback;
  }
  if (!n->is_string()) fail(key, fmt::format("expected a string, got {}", type_name(*n)));
  return n->value<std::string>().value();
}

std::vector<double> ConfigSection::numbers(std::string_view key) const {
  const toml::node* n = node(key);
  if (n == nullptr) fail(key, "required key is missing (an array of numbers)");
  std::vector<double> out;
  if (n->is_number()) {  // a scalar is an array of one
    out.push_back(number_value(*this, key, *n));
    if (!std::isfinite(out.back())) fail(key, fmt::format("expected a finite number, got {}", out.back()));
    return out;
  }
  const toml::array* arr = n->as_array();
  if (arr == nullptr) fail(key, fmt::format("expected an array of numbers, got {}", type_name(*n)));
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::node& e = *arr->get(i);
    if (!e.is_number()) {
      fail(key, fmt::format("element {} must be a number, got {}", i, type_name(e)));
    }
    out.push_back(number_value(*this, key, e, fmt::format("element {}: ", i)));
    if (!std::isfinite(out.back())) fail(key, fmt::format("element {} is not finite", i));
  }
  return out;
}

std::vector<std::vector<double>> ConfigSection::number_rows(std::string_view key, bool finite) const {
  const toml::node* n = node(key);
  if (n == nullptr) fail(key, "required key is missing (an array of arrays of numbers)");
  const toml::array* arr = n->as_array();
  if (arr == nullptr) fail(key, fmt::format("expected an array of arrays, got {}", type_name(*n)));
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::array* row = arr->get(i)->as_array();
    if (row == nullptr) fail(key, fmt::format("element {} must be an array of numbers", i));
    std::vector<double> values;
    for (std::size_t j = 0; j < row->size(); ++j) {
      const toml::node& e = *row->get(j);
      if (!e.is_number()) {
        fail(key, fmt::format("element [{}][{}] must be a number, got {}", i, j, type_name(e)));
      }
      values.push_back(number_value(*this, key, e, fmt::format("element [{}][{}]: ", i, j)));
      // NaN and inf used to pass: a NaN edge weight was even replaced by a random one (issue 8).
      if (finite && !std::isfinite(values.back())) {
        fail(key, fmt::format("element [{}][{}] is not finite ({})", i, j, values.back()));
      }
    }
    rows.push_back(std::move(values));
  }
  return rows;
}

ConfigSection ConfigSection::section(std::string_view key) const {
  static const toml::table empty;
  const toml::node* n = node(key);
  if (n != nullptr && n->as_table() == nullptr) {
    fail(key, fmt::format("expected a table, got {}", type_name(*n)));
  }
  ConfigSection child(n == nullptr ? empty : *n->as_table(), key_path(key), file_);
  child.files_read_ = files_read_;
  return child;
}

std::vector<ConfigSection> ConfigSection::sections(std::string_view key) const {
  std::vector<ConfigSection> out;
  const toml::node* n = node(key);
  if (n == nullptr) return out;
  const toml::array* arr = n->as_array();
  if (arr == nullptr) fail(key, fmt::format("expected an array of tables ([[{}]]), got {}",
                                            key_path(key), type_name(*n)));
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::table* t = arr->get(i)->as_table();
    if (t == nullptr) fail(key, fmt::format("element {} must be a table", i));
    out.emplace_back(*t, fmt::format("{}[{}]", key_path(key), i), file_);
    out.back().files_read_ = files_read_;
  }
  return out;
}

void ConfigSection::finish() const {
  for (const auto& [k, v] : *table_) {
    const std::string_view key = k.str();
    if (known_.contains(key)) continue;
    const auto suggestion = closest(key, known_);
    const std::string k_path = key_path(key);
    const std::string place = where(key);
    throw ConfigError(k_path, place,
                      fmt::format("{}: {}: unknown key{}", place, k_path,
                                  suggestion ? fmt::format(" (did you mean '{}'?)",
                                                           key_path(*suggestion))
                                             : std::string()));
  }
}

// ---------------------------------------------------------------------------------------------
// --set overrides

void apply_override(toml::table& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(assignment, "--set",
                      fmt::format("--set: expected key.path=value, got '{}'", assignment));
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  // The value is parsed as TOML, by the same recursive parser as the file: the same guard.
  if (toml_nesting_violation("value = " + text, max_toml_nesting) != 0 ||
      static_cast<std::size_t>(std::count(path.begin(), path.end(), '.')) >= max_toml_nesting) {
    throw ConfigError(path, "--set", fmt::format("--set: {}: nested deeper than {} levels (dotted "
                                                 "keys, arrays, inline tables)",
                                                 path.substr(0, 200), max_toml_nesting));
  }
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + text, std::string_view("--set"));
  } catch (const toml::parse_error&) {  // not TOML: a bare string, quoted and parsed again so
    std::ostringstream quoted;            // that it too carries the source "--set"
    quoted << toml::value<std::string>(text);
    parsed = toml::parse("value = " + quoted.str(), std::string_view("--set"));
  }
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) {
      throw ConfigError(path, "--set", fmt::format("--set: empty component in key '{}'", path));
    }
    parts.push_back(part);
  }
  toml::table* table = &root;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* next = table->get(parts[i]);
    if (next == nullptr) {
      table->insert(parts[i], toml::table{});
      next = table->get(parts[i]);
    }
    if (!next->is_table()) {
      throw ConfigError(path, "--set", fmt::format("--set: '{}' is not a table in '{}'",
                                                   parts[i], path));
    }
    table = next->as_table();
  }
  // Moved, not copied: toml++ drops the source region of a copied node, and where() needs it
  // to report "--set" instead of the config file for an overridden key.
  table->insert_or_assign(parts.back(), std::move(*parsed.get("value")));
}

// ---------------------------------------------------------------------------------------------
// The experiment

namespace {

std::vector<std::string> known_names(const std::vector<PopulationSpec>& pops) {
  std::vector<std::string> names;
  for (const auto& p : pops) names.push_back(p.name);
  return names;
}

// An activation by name; its leaky_relu slope from `leaky_slope` in the same table, else from
// the fallback (the network's).
Activation read_activation(const ConfigSection& s, std::string_view key, Activation fallback) {
  Activation a = fallback;
  if (s.has(key)) {
    const std::string name = s.string(key);
    if (!parse_activation(name, a)) {
      std::vector<std::string> choices(activation_names().begin(), activation_names().end());
      s.fail(key, fmt::format("unknown activation '{}' (choose one of: {})", name, join(choices)));
    }
    a.slope = fallback.slope;
  }
  if (s.has("leaky_slope")) {
    a.slope = s.number("leaky_slope");
    if (!(a.slope > 0.0 && a.slope < 1.0)) {
      s.fail("leaky_slope", fmt::format("must be in (0, 1) (leaky_relu stays invertible and "
                                        "monotone), got {}", a.slope));
    }
  }
  return a;
}

InitSpec read_init(const ConfigSection& network) {
  InitSpec init;
  const ConfigSection s = network.section("init");
  init.weights = s.string("weights", init.weights);
  static const std::vector<std::string> schemes = {"normal", "uniform", "orthogonal", "zeros",
                                                   "file"};
  if (std::find(schemes.begin(), schemes.end(), init.weights) == schemes.end()) {
    s.fail("weights", fmt::format("unknown initialisation '{}' (choose one of: {})", init.weights,
                                  join(schemes)));
  }
  init.scale = s.non_negative("scale", init.scale);
  init.bias = s.string("bias", init.bias);
  if (init.bias != "zeros" && init.bias != "normal" && init.bias != "file") {
    s.fail("bias", fmt::format("unknown bias initialisation '{}' (choose one of: zeros, normal, "
                               "file)", init.bias));
  }
  init.bias_scale = s.number("bias_scale", init.bias_scale);
  if (init.weights == "file" || init.bias == "file") {
    init.file = s.resolve_path(s.string("file"));
    init.which = s.choice<std::string>("which", "initial", {{"initial", "initial"}, {"final", "final"}});
  } else {
    for (const char* key : {"file", "which"}) {
      if (s.has(key)) s.fail(key, "a file is read only with weights = \"file\" or bias = \"file\"");
    }
  }
  s.finish();
  return init;
}

// Names of populations, projections and phases become HDF5 path components (/state/x/<pop>,
// /parameters/W/<proj>) or entries of comma-joined attributes (phase_names): "." made a group
// named ".", "a/b" nested groups, and both were found only after the output file was created
// (issue 8). A name is 1 to 255 of the characters A-Z a-z 0-9 _ - . and not dots alone.
void check_name(const ConfigSection& s, std::string_view key, const std::string& name,
                std::string_view what) {
  const bool allowed_characters = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
  const bool dots_only = name.find_first_not_of('.') == std::string::npos;
  if (name.empty() || name.size() > 255 || !allowed_characters || dots_only) {
    std::string shown;
    for (const char c : name.substr(0, 64)) {
      shown += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? fmt::format("\\x{:02x}", c) : std::string(1, c);
    }
    if (name.size() > 64) shown += fmt::format("... ({} characters)", name.size());
    s.fail(key, fmt::format("'{}' is not a valid {} name (1 to 255 of the characters A-Z a-z 0-9 "
                            "_ - . and not only dots)", shown, what));
  }
}

// A neuron index as written in an edge: a non-negative integer that a double holds exactly
// (below 2^53). Larger values, infinities and NaN would not survive the conversion to an index
// (1e19 used to become neuron 0; issue 8).
bool is_neuron_index(double v) {
  return v >= 0.0 && v < 9007199254740992.0 && v == std::floor(v);
}

std::vector<EdgeSpec> read_edges(const ConfigSection& s) {
  std::vector<EdgeSpec> edges;
  const toml::node* n = s.node("edges");
  if (n->is_string()) {
    const std::string file = s.resolve_path(n->value<std::string>().value());
    const CsvTable table = read_csv(file);
    for (std::size_t i = 0; i < table.rows.size(); ++i) {
      const auto& row = table.rows[i];
      const std::string where = fmt::format("{}:{}", file, table.lines[i]);
      if (row.size() != 2 && row.size() != 3) {
        throw DataFileError(file, table.lines[i],
                            fmt::format("{}: expected src,dst[,weight], found {} fields", where,
                                        row.size()));
      }
      for (std::size_t j = 0; j < 2; ++j) {
        if (!is_neuron_index(row[j])) {
          throw DataFileError(file, table.lines[i],
                              fmt::format("{}: neuron index {} is not a non-negative integer "
                                          "below 2^53", where, row[j]));
        }
      }
      edges.push_back({static_cast<long>(row[0]), static_cast<long>(row[1]),
                       row.size() == 3 ? row[2] : std::numeric_limits<double>::quiet_NaN(), where});
    }
    return edges;
  }
  const auto rows = s.number_rows("edges", false);  // indices and weights checked here
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (row.size() != 2 && row.size() != 3) {
      s.fail("edges", fmt::format("edge {} must be [src, dst] or [src, dst, weight]", i));
    }
    if (!is_neuron_index(row[0]) || !is_neuron_index(row[1])) {
      s.fail("edges", fmt::format("edge {}: neuron indices must be non-negative integers below 2^53", i));
    }
    // A NaN weight used to mean "draw one from init" (issue 8): leave the weight out instead.
    if (row.size() == 3 && !std::isfinite(row[2])) {
      s.fail("edges", fmt::format("edge {}: weight {} is not finite", i, row[2]));
    }
    edges.push_back({static_cast<long>(row[0]), static_cast<long>(row[1]),
                     row.size() == 3 ? row[2] : std::numeric_limits<double>::quiet_NaN(),
                     fmt::format("{}: {}[{}]", s.where("edges"), s.key_path("edges"), i)});
  }
  return edges;
}

NetworkSpec read_network(const ConfigSection& s) {
  NetworkSpec net;
  const std::int64_t seed = s.integer("seed", 1);
  if (seed < 0) s.fail("seed", fmt::format("must be >= 0, got {}", seed));
  net.seed = static_cast<std::uint64_t>(seed);
  net.init = read_init(s);
  const Activation activation = read_activation(s, "activation", Activation::tanh);

  const bool layered = s.has("layers");
  const bool graph = s.has("population");
  if (!layered && !graph) {
    // A misspelt key is the likely cause: report it first, with a suggestion.
    for (const char* key : {"output_activation", "plastic", "projection"}) s.has(key);
    s.finish();
  }
  if (layered == graph) {
    s.fail("", "give either layers = [...] or [[network.population]] tables (exactly one)");
  }
  if (layered) {
    Activation output_activation = activation;
    if (s.has("output_activation")) {
      const std::string name = s.string("output_activation");
      if (!parse_activation(name, output_activation)) {
        std::vector<std::string> choices(activation_names().begin(), activation_names().end());
        s.fail("output_activation", fmt::format("unknown activation '{}' (choose one of: {})",
                                                name, join(choices)));
      }
      output_activation.slope = activation.slope;
    }
    const bool plastic = s.boolean("plastic", false);
    const toml::node* n = s.node("layers");
    const toml::array* arr = n->as_array();
    if (arr == nullptr || arr->size() < 2) {
      s.fail("layers", "expected an array of at least two layer sizes, e.g. [2, 8, 1]");
    }
    for (std::size_t l = 0; l < arr->size(); ++l) {
      const auto size = arr->get(l)->value<std::int64_t>();
      if (!arr->get(l)->is_integer() || !size) {
        s.fail("layers", fmt::format("element {} must be an integer size", l));
      }
      if (*size <= 0) s.fail("layers", fmt::format("element {}: size must be > 0, got {}", l, *size));
      const bool last = l + 1 == arr->size();
      net.populations.push_back({fmt::format("layer{}", l), static_cast<long>(*size),
                                 l == 0 ? Role::input : last ? Role::output : Role::hidden,
                                 last ? output_activation : activation});
      if (l > 0) {
        ProjectionSpec p;
        p.name = fmt::format("layer{}", l);  // named after its target (DESIGN §9)
        p.from = fmt::format("layer{}", l - 1);
        p.to = p.name;
        p.plastic = plastic;
        p.symmetric = true;  // one undirected connection per pair of layers (eqprop)
        p.key = s.key_path("layers");
        net.projections.push_back(std::move(p));
      }
    }
  } else {
    for (const ConfigSection& ps : s.sections("population")) {
      PopulationSpec pop;
      pop.name = ps.string("name");
      check_name(ps, "name", pop.name, "population");
      for (const auto& other : net.populations) {
        if (other.name == pop.name) ps.fail("name", fmt::format("duplicate population '{}'", pop.name));
      }
      const std::int64_t size = ps.integer("size");
      if (size <= 0) ps.fail("size", fmt::format("must be > 0, got {}", size));
      pop.size = static_cast<long>(size);
      const std::string role = ps.string("role", "hidden");
      if (role == "input") pop.role = Role::input;
      else if (role == "hidden") pop.role = Role::hidden;
      else if (role == "output") pop.role = Role::output;
      else ps.fail("role", fmt::format("unknown role '{}' (choose one of: input, hidden, output)", role));
      pop.activation = read_activation(ps, "activation", activation);
      ps.finish();
      net.populations.push_back(std::move(pop));
    }
    const std::vector<std::string> names = known_names(net.populations);
    for (const ConfigSection& ps : s.sections("projection")) {
      ProjectionSpec p;
      p.key = ps.key_path("");
      p.from = ps.string("from");
      p.to = ps.string("to");
      for (const char* key : {"from", "to"}) {
        const std::string& target = std::string_view(key) == "from" ? p.from : p.to;
        if (std::find(names.begin(), names.end(), target) == names.end()) {
          const auto guess = closest(target, names);
          ps.fail(key, fmt::format("no population named '{}'{}", target,
                                   guess ? fmt::format(" (did you mean '{}'?)", *guess) : ""));
        }
      }
      for (const auto& pop : net.populations) {
        if (pop.name == p.to && pop.role == Role::input) {
          ps.fail("to", fmt::format("population '{}' is an input (clamped): it cannot receive a "
                                    "projection", p.to));
        }
      }
      p.name = ps.string("name", p.from + "_" + p.to);
      check_name(ps, "name", p.name, "projection");
      for (const auto& other : net.projections) {
        if (other.name == p.name) ps.fail("name", fmt::format("duplicate projection '{}'", p.name));
      }
      p.plastic = ps.boolean("plastic", false);
      p.symmetric = ps.boolean("symmetric", false);
      if (ps.has("edges")) {
        p.sparse = true;
        p.edges = read_edges(ps);
        if (ps.has("weights")) ps.fail("weights", "give either edges or weights, not both");
      } else if (ps.has("weights")) {
        p.weights_csv = ps.resolve_path(ps.string("weights"));
      }
      if (p.symmetric && p.sparse) {
        ps.fail("symmetric", "a symmetric projection is dense: give weights (or none), not edges");
      }
      ps.finish();
      net.projections.push_back(std::move(p));
    }
    // A symmetric projection between two populations needs exactly one symmetric reverse, of
    // the same plasticity: the pair is one undirected connection (DESIGN §2, eqprop).
    const std::vector<ConfigSection> tables = s.sections("projection");
    for (std::size_t k = 0; k < net.projections.size(); ++k) {
      const ProjectionSpec& p = net.projections[k];
      if (!p.symmetric || p.from == p.to) continue;
      std::vector<std::size_t> reverse;
      for (std::size_t r = 0; r < net.projections.size(); ++r) {
        const ProjectionSpec& q = net.projections[r];
        if (q.from == p.to && q.to == p.from) reverse.push_back(r);
      }
      const auto symmetric_reverse = std::count_if(reverse.begin(), reverse.end(), [&](std::size_t r) {
        return net.projections[r].symmetric;
      });
      if (reverse.size() != 1 || symmetric_reverse != 1) {
        tables[k].fail("symmetric", fmt::format(
            "projection '{}' ({} -> {}) is symmetric, so it needs exactly one reverse projection "
            "from '{}' to '{}' with symmetric = true (found {} reverse, {} of them symmetric)",
            p.name, p.from, p.to, p.to, p.from, reverse.size(), symmetric_reverse));
      }
      if (net.projections[reverse[0]].plastic != p.plastic) {
        tables[k].fail("plastic", fmt::format("projection '{}' and its symmetric reverse '{}' "
                                              "share their weights: give both the same plastic",
                                              p.name, net.projections[reverse[0]].name));
      }
    }
    if (net.populations.empty()) s.fail("population", "at least one population is needed");
  }
  s.finish();
  return net;
}

// A vector-valued key whose scalar form means "the same for every input".
std::vector<double> read_vector(const ConfigSection& s, std::string_view key, std::size_t n,
                                std::optional<double> fallback,
                                std::string_view populations = "input populations") {
  if (!s.has(key)) {
    if (!fallback) s.fail(key, "required key is missing (a number or an array of numbers)");
    return std::vector<double>(n, *fallback);
  }
  std::vector<double> v = s.numbers(key);
  if (v.size() == 1 && n != 1 && s.node(key)->is_number()) v.assign(n, v[0]);
  if (v.size() != n) {
    s.fail(key, fmt::format("has {} values but the {} have {} neurons", v.size(), populations, n));
  }
  return v;
}

// Rows of `width` numbers, inline (key_inline = [[...], ...]) or from a CSV file (key_file);
// `what` names the rows' meaning in messages ("input", "target").
std::vector<std::vector<double>> read_rows(const ConfigSection& s, std::string_view key_inline,
                                           std::string_view key_file, std::size_t width,
                                           std::string_view what) {
  const std::string populations = what == "input" ? "input populations" : "output populations";
  if (s.has(key_inline)) {
    auto rows = s.number_rows(key_inline);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].size() != width) {
        s.fail(key_inline, fmt::format("{} vector {} has {} values but the {} have {} neurons",
                                       what, i, rows[i].size(), populations, width));
      }
    }
    if (rows.empty()) s.fail(key_inline, "the sequence is empty");
    return rows;
  }
  const std::string file = s.resolve_path(s.string(key_file));
  const CsvTable table = read_csv(file);
  for (std::size_t i = 0; i < table.rows.size(); ++i) {
    if (table.rows[i].size() != width) {
      throw DataFileError(file, table.lines[i],
                          fmt::format("{}:{}: {} row has {} values but the {} have {} neurons", file,
                                      table.lines[i], what, table.rows[i].size(), populations,
                                      width));
    }
  }
  return table.rows;
}

double phase_total(const InputSpec& in) {
  double total = 0.0;
  for (const double d : in.phase_durations) total += d;
  return total;
}

// phases = [{ name = "forward", duration = 4.0 }, { name = "target", duration = 6.0 }]
// A phase that ends on convergence: { name = "forward", until = { residual = 1e-6 },
// max_duration = 50 } (it lasts at most max_duration; the schedule after it moves earlier).
// Returns the total (maximum) duration (0 without phases).
double read_phases(const ConfigSection& s, InputSpec& in) {
  in.phase_names.clear();
  in.phase_durations.clear();
  in.phase_until.clear();
  for (const ConfigSection& ps : s.sections("phases")) {
    const std::string name = ps.string("name");
    check_name(ps, "name", name, "phase");
    if (std::find(in.phase_names.begin(), in.phase_names.end(), name) != in.phase_names.end()) {
      ps.fail("name", fmt::format("duplicate phase '{}'", name));
    }
    in.phase_names.push_back(name);
    if (ps.has("until")) {
      if (ps.has("duration")) {
        ps.fail("duration", "a phase that ends on convergence (until) has a max_duration, not a duration");
      }
      const ConfigSection until = ps.section("until");
      in.phase_until.push_back(until.positive("residual"));
      until.finish();
      in.phase_durations.push_back(ps.positive("max_duration"));
    } else {
      if (ps.has("max_duration")) {
        ps.fail("max_duration", "max_duration belongs to a phase with until = { residual = ... }; "
                                "give a fixed phase a duration");
      }
      in.phase_until.push_back(0.0);
      in.phase_durations.push_back(ps.positive("duration"));
    }
    ps.finish();
  }
  return phase_total(in);
}

InputSpec read_input(const ConfigSection& s, std::size_t n, std::size_t n_out) {
  InputSpec in;
  const std::string kind = s.string("kind", "constant");
  if (kind == "constant") {
    in.kind = InputKind::constant;
    in.value = n == 0 && !s.has("value") ? std::vector<double>{} : read_vector(s, "value", n, {});
  } else if (kind == "step") {
    in.kind = InputKind::step;
    in.value = read_vector(s, "value", n, {});
    in.before = read_vector(s, "before", n, 0.0);
    in.t_step = s.number("t0");
  } else if (kind == "sine") {
    in.kind = InputKind::sine;
    in.amplitude = read_vector(s, "amplitude", n, {});
    in.frequency = read_vector(s, "frequency", n, {});
    in.phase = read_vector(s, "phase", n, 0.0);
    in.offset = read_vector(s, "offset", n, 0.0);
  } else if (kind == "sequence") {
    in.kind = InputKind::sequence;
    in.present = read_phases(s, in) > 0.0 && !s.has("present") ? phase_total(in)
                                                                 : s.positive("present");
    if (!in.phase_durations.empty() && std::abs(phase_total(in) - in.present) > 1e-12 * in.present) {
      s.fail("phases", fmt::format("the phases last {} in all, but each vector is presented for "
                                   "present = {}: they must be equal", phase_total(in), in.present));
    }
    in.repeat = s.boolean("repeat", true);
    if (s.has("values") == s.has("file")) {
      s.fail("values", "give the sequence either inline (values = [[...], ...]) or as file = \"x.csv\"");
    }
    in.sequence = read_rows(s, "values", "file", n, "input");
    if (s.has("targets") && s.has("target_file")) {
      s.fail("targets", "give the targets either inline (targets = [[...], ...]) or as "
                        "target_file = \"y.csv\", not both");
    }
    if (s.has("targets") || s.has("target_file")) {
      in.targets = read_rows(s, "targets", "target_file", n_out, "target");
      if (in.targets.size() != in.sequence.size()) {
        s.fail(s.has("targets") ? "targets" : "target_file",
               fmt::format("{} targets for {} input vectors: give one target per input vector",
                           in.targets.size(), in.sequence.size()));
      }
    }
  } else {
    const std::vector<std::string> kinds = {"constant", "step", "sine", "sequence"};
    const auto guess = closest(kind, kinds);
    s.fail("kind", fmt::format("unknown input kind '{}'{} (choose one of: {})", kind,
                               guess ? fmt::format(" (did you mean '{}'?)", *guess) : "",
                               join(kinds)));
  }
  if (in.kind != InputKind::sequence) read_phases(s, in);
  if (in.kind != InputKind::sequence && s.has("target")) {
    in.target = read_vector(s, "target", n_out, {}, "output populations");
    in.target_t0 = s.number("target_t0", in.target_t0);
  }
  s.finish();
  return in;
}

// `training`: the run's length follows from [train]; t_end is set by the caller.
IntegratorSpec read_integrator(const ConfigSection& s, bool training) {
  IntegratorSpec it;
  it.stepper = s.string("stepper", it.stepper);
  if (find_stepper(it.stepper) == nullptr) {
    std::vector<std::string> names;
    for (const auto& info : stepper_infos()) names.emplace_back(info.name);
    const auto guess = closest(it.stepper, names);
    s.fail("stepper", fmt::format("unknown stepper '{}'{} (choose one of: {})", it.stepper,
                                  guess ? fmt::format(" (did you mean '{}'?)", *guess) : "",
                                  join(names)));
  }
  it.rtol = s.positive("rtol", it.rtol);
  it.atol = s.non_negative("atol", it.atol);
  it.norm = s.choice<ErrorNorm>("norm", "max", {{"max", ErrorNorm::max}, {"rms", ErrorNorm::rms}});
  it.dt0 = s.number("dt0", it.dt0);
  if (it.dt0 < 0.0) s.fail("dt0", fmt::format("must be >= 0 (0: automatic), got {}", it.dt0));
  it.dt_max = s.positive("dt_max", it.dt_max);
  const std::int64_t max_steps = s.integer("max_steps", it.max_steps);
  if (max_steps <= 0) s.fail("max_steps", fmt::format("must be > 0, got {}", max_steps));
  it.max_steps = static_cast<long>(max_steps);
  it.stop_on_divergence = s.choice<bool>("on_divergence", "continue", {{"continue", false}, {"stop", true}});
  it.dt_min = s.non_negative("dt_min", it.dt_min);
  it.max_wall_seconds = s.positive("max_wall_seconds", it.max_wall_seconds);
  it.t0 = s.number("t0", it.t0);
  if (training && s.has("t_end")) {
    s.fail("t_end", "a training run lasts train.epochs × minibatches × train.present: remove "
                    "integrator.t_end (shorten a run with train.epochs)");
  }
  it.t_end = training ? it.t0 + 1.0 : s.number("t_end", it.t_end);
  if (!(it.t_end > it.t0)) {
    s.fail("t_end", fmt::format("must be > t0 = {}, got {}", it.t0, it.t_end));
  }
  const StepperInfo& info = *find_stepper(it.stepper);
  if (!info.adaptive && it.dt0 == 0.0) {
    s.fail("dt0", fmt::format("the fixed-step stepper '{}' needs a step size dt0 > 0", it.stepper));
  }
  // Bulirsch–Stoer's error control lives inside odeint (its extrapolation orders share one
  // max-norm checker); fixed-step steppers have none.
  if (it.norm != ErrorNorm::max && (!info.adaptive || it.stepper == "bs")) {
    s.fail("norm", fmt::format("the stepper '{}' has no {}; norm = \"rms\" needs dopri5, rkck54 "
                               "or rkf78", it.stepper,
                               info.adaptive ? "choice of error norm" : "error control"));
  }
  s.finish();
  return it;
}

RecordMode parse_record_mode(const ConfigSection& s, const std::string& key, const std::string& v) {
  if (v == "all") return {RecordMode::all, 1};
  if (v == "norm") return {RecordMode::norm, 1};
  if (v == "none") return {RecordMode::none, 1};
  if (v.rfind("every:", 0) == 0) {
    char* end = nullptr;
    const long k = std::strtol(v.c_str() + 6, &end, 10);
    if (*end == '\0' && k > 0 && v.size() > 6) return {RecordMode::every, k};
  }
  s.fail(key, fmt::format("unknown record mode '{}' (choose one of: all, every:K, norm, none)", v));
}

// `training`: the input of a training run (defaults: a sample at the end of every minibatch,
// blocks recorded as norms); null otherwise.
// `max_bytes`: output.max_bytes, the largest output file the run may write (sim/budget.hpp).
OutputSpec read_output(const ConfigSection& s, bool residual_by_default, const InputSpec* training,
                       double& max_bytes) {
  OutputSpec out;
  max_bytes = s.positive("max_bytes", max_bytes);
  out.residual = residual_by_default;
  out.file = s.string("file", out.file);
  out.sample_dt = s.positive("sample_dt", training != nullptr ? training->present : out.sample_dt);
  if (training != nullptr) out.default_mode = {RecordMode::norm, 1};
  if (s.has("examples")) {
    if (training == nullptr) s.fail("examples", "only training runs ([train]) have a batch of examples");
    for (const double e : s.numbers("examples")) {
      if (e < 0 || e != std::floor(e) || e >= static_cast<double>(training->train.batch)) {
        s.fail("examples", fmt::format("{} is not an example of the batch (integers 0 … {}: "
                                       "train.batch = {})", e, training->train.batch - 1,
                                       training->train.batch));
      }
      out.examples.push_back(static_cast<long>(e));
    }
    if (out.examples.empty()) s.fail("examples", "give at least one example, e.g. [0]");
  }
  const std::int64_t flush = s.integer("flush_every", out.flush_every);
  if (flush <= 0) s.fail("flush_every", fmt::format("must be > 0, got {}", flush));
  out.flush_every = static_cast<long>(flush);
  out.flush_seconds = s.non_negative("flush_seconds", out.flush_seconds);
  out.flush_latency = s.positive("flush_latency", out.flush_latency);
  out.checkpoint_seconds = s.non_negative("checkpoint_seconds", out.checkpoint_seconds);
  out.residual = s.boolean("residual", out.residual);
  // Wave arrivals: "auto" (every segment, none for a training run), "all", "first:K", "none".
  const std::string waves = s.string("waves", "auto");
  if (waves == "auto") {
    out.wave_segments = training != nullptr ? 0 : OutputSpec::all_segments;
  } else if (waves == "all") {
    out.wave_segments = OutputSpec::all_segments;
  } else if (waves == "none") {
    out.wave_segments = 0;
  } else {
    char* end = nullptr;
    const long k = waves.rfind("first:", 0) == 0 ? std::strtol(waves.c_str() + 6, &end, 10) : 0;
    if (end == nullptr || *end != '\0' || k <= 0 || waves.size() <= 6) {
      s.fail("waves", fmt::format("unknown waves '{}' (choose one of: auto, all, first:K with K > 0, none)", waves));
    }
    out.wave_segments = k;
  }
  if (const toml::node* n = s.node("record")) {
    const toml::table* t = n->as_table();
    if (t == nullptr) s.fail("record", "expected a table, e.g. { x = \"all\", W = \"norm\" }");
    const ConfigSection rs = s.section("record");
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      out.record[key] = parse_record_mode(rs, key, rs.string(key));
    }
  }
  s.finish();
  return out;
}

// [train] (epochs of minibatches) and [data] (the examples): the input of a training run.
void read_training(const ConfigSection& top, Experiment& ex) {
  if (!top.has("data")) {
    top.section("train").fail("", "a training run needs a [data] table: the examples it learns "
                                  "from (e.g. [data] name = \"digits\")");
  }
  if (!top.has("train")) {
    top.section("data").fail("", "[data] is shown by a training run: add a [train] table (epochs, "
                                 "batch, present)");
  }
  if (top.has("input")) {
    top.section("input").fail("", "a training run ([train]) takes its input from [data]: remove "
                                  "[input] (give phases as train.phases)");
  }
  if (std::holds_alternative<LeakyParams>(ex.model)) {
    top.section("model").fail("type", "model 'leaky' does not learn: a training run needs a "
                                      "learning model (costate, dtp, gaitprop, backprop, eqprop)");
  }
  if (const auto* costate = std::get_if<CostateParams>(&ex.model);
      costate != nullptr && costate->mode == CostateMode::adjoint) {
    top.section("model").fail("mode", "mode = \"adjoint\" computes the exact gradient over a "
                                      "fixed window and does not learn: use mode = \"diffusion\" "
                                      "in a training run");
  }
  const bool plastic_weights = std::any_of(ex.network.projections.begin(), ex.network.projections.end(),
                                          [](const ProjectionSpec& p) { return p.plastic; });
  if (!plastic_weights && (std::holds_alternative<CostateParams>(ex.model) ||
                           std::holds_alternative<BackpropParams>(ex.model))) {
    top.section("network").fail("plastic", fmt::format(
        "no projection is plastic, so model '{}' learns nothing: set network.plastic = true (or "
        "plastic = true on the [[network.projection]] tables that learn)", model_type(ex.model)));
  }
  const ConfigSection data = top.section("data");
  const DataSpec spec = read_data_spec(data, ex.network.seed);
  auto set = std::make_shared<const DataSet>(
      load_data_set(spec, static_cast<Eigen::Index>(ex.input_size()),
                    static_cast<Eigen::Index>(ex.output_size())));
  if (set->error_rows == 0) {
    data.fail("", fmt::format("the training examples of {} have no labels or targets to learn",
                              set->train.source));
  }
  ex.data = spec;

  const ConfigSection s = top.section("train");
  InputSpec& in = ex.input;
  in.kind = InputKind::dataset;
  in.data = set;
  TrainSpec& tr = in.train;
  const std::int64_t epochs = s.integer("epochs");
  if (epochs <= 0) s.fail("epochs", fmt::format("must be > 0, got {}", epochs));
  tr.epochs = static_cast<long>(epochs);
  const std::int64_t batch = s.integer("batch", 1);
  if (batch <= 0) s.fail("batch", fmt::format("must be > 0, got {}", batch));
  if (batch > set->train.size()) {
    s.fail("batch", fmt::format("{} exceeds the {} training examples of {}", batch,
                                set->train.size(), set->name));
  }
  tr.batch = static_cast<long>(batch);
  tr.shuffle = s.boolean("shuffle", tr.shuffle);
  const std::int64_t seed = s.integer("seed", static_cast<std::int64_t>(ex.network.seed));
  if (seed < 0) s.fail("seed", fmt::format("must be >= 0, got {}", seed));
  tr.seed = static_cast<std::uint64_t>(seed);
  tr.reset = s.boolean("reset", tr.reset);
  const std::int64_t every = s.integer("eval_every", 0);
  if (every < 0) s.fail("eval_every", fmt::format("must be >= 0 (0: once per epoch), got {}", every));
  tr.eval_every = static_cast<long>(every);
  tr.eval_train = s.boolean("eval_train", tr.eval_train);
  in.present = read_phases(s, in) > 0.0 && !s.has("present") ? phase_total(in) : s.positive("present");
  if (!in.phase_durations.empty() && std::abs(phase_total(in) - in.present) > 1e-12 * in.present) {
    s.fail("phases", fmt::format("the phases last {} in all, but each minibatch is presented for "
                                 "present = {}: they must be equal", phase_total(in), in.present));
  }
  s.finish();
}

}  // namespace

Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataFileError(path, 0, fmt::format("{}: cannot open the config file", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  Experiment ex = experiment_from_text(buffer.str(), path, overrides);
  ex.input_files.insert(ex.input_files.begin(), path);
  return ex;
}

Experiment experiment_from_text(std::string_view text, const std::string& path,
                                const std::vector<std::string>& overrides) {
  // toml++ parses nested keys, arrays and inline tables recursively: a header dotted 50,000
  // levels deep overflowed the stack (issue 8).
  if (const std::size_t line = toml_nesting_violation(text, max_toml_nesting); line != 0) {
    throw DataFileError(path, static_cast<long>(line),
                        fmt::format("{}:{}: TOML nested deeper than {} levels (dotted keys, arrays, "
                                    "inline tables)", path, line, max_toml_nesting));
  }
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    const long line = static_cast<long>(e.source().begin.line);
    throw DataFileError(path, line, fmt::format("{}:{}: TOML syntax error: {}", path, line,
                                                e.description()));
  }
  return experiment_from_table(std::move(root), path, overrides);
}

Experiment experiment_from_table(toml::table root, const std::string& path,
                                 const std::vector<std::string>& overrides) {
  for (const std::string& assignment : overrides) apply_override(root, assignment);

  Experiment ex;
  ex.config_path = path;
  std::ostringstream text;
  text << root;
  ex.config_text = text.str();
  {
    // What a resumed run must share with the interrupted one: the config without the keys that
    // shape no result (where the file goes, how often it is flushed or checkpointed, the limits).
    toml::table shaping = root;
    if (toml::table* t = shaping["integrator"].as_table()) t->erase("max_wall_seconds");
    if (toml::table* t = shaping["output"].as_table()) {
      for (const char* key : {"file", "flush_every", "flush_seconds", "flush_latency",
                              "checkpoint_seconds", "max_bytes"}) {
        t->erase(key);
      }
    }
    std::ostringstream shaping_text;
    shaping_text << shaping;
    ex.result_config = shaping_text.str();
  }

  const ConfigSection top(root, "", path);
  top.string("description", "");
  if (top.section("model").string("type", "leaky") == "gnn") {
    // A gnn run has no populations: [network] gives only the seed and init of the shared
    // weights, [graph] the graph (models/gnn.hpp).
    const ConfigSection ns = top.section("network");
    const std::int64_t seed = ns.integer("seed", 1);
    if (seed < 0) ns.fail("seed", fmt::format("must be >= 0, got {}", seed));
    ex.network.seed = static_cast<std::uint64_t>(seed);
    ex.network.init = read_init(ns);
    ns.finish();
    ex.model = parse_model_params(top.section("model"));
    GnnParams& gnn = std::get<GnnParams>(ex.model);
    const ConfigSection init = ns.section("init");
    if (ex.network.init.weights == "orthogonal" || ex.network.init.weights == "file") {
      init.fail("weights", fmt::format("model 'gnn' draws its shared weights as normal, uniform or "
                                       "zeros, not '{}'", ex.network.init.weights));
    }
    if (ex.network.init.bias == "file") init.fail("bias", "model 'gnn' draws its biases as zeros or normal");
    gnn.init_weights = ex.network.init.weights;
    gnn.init_scale = ex.network.init.scale;
    gnn.init_bias = ex.network.init.bias;
    gnn.init_bias_scale = ex.network.init.bias_scale;
    gnn.graph = read_graph(top.section("graph"));
  } else {
    ex.network = read_network(top.section("network"));
    ex.model = parse_model_params(top.section("model"));
  }
  const bool learning_model = !std::holds_alternative<LeakyParams>(ex.model);
  for (const ProjectionSpec& p : ex.network.projections) {
    if (p.plastic && !learning_model) {
      throw ConfigError(p.key, path, fmt::format("{}: {}: projection '{}' is plastic, but model '{}' "
                                                 "has no weight flow (use a learning model such as "
                                                 "costate, or plastic = false)", path, p.key,
                                                 p.name, model_type(ex.model)));
    }
  }
  // A training run takes its input from [data], shown as [train] says; others from [input].
  const bool training = top.has("train") || top.has("data");
  if (training) {
    read_training(top, ex);
  } else {
    ex.input = read_input(top.section("input"), ex.input_size(), ex.output_size());
  }
  ex.integrator = read_integrator(top.section("integrator"), training);
  if (training) {
    // t_end = t0 + E·M·present, computed as the schedule computes its boundaries.
    const std::size_t minibatches =
        static_cast<std::size_t>(ex.input.train.epochs) *
        ((static_cast<std::size_t>(ex.input.data->train.size()) + static_cast<std::size_t>(ex.input.train.batch) - 1) /
         static_cast<std::size_t>(ex.input.train.batch));
    ex.integrator.t_end = ex.integrator.t0 + static_cast<double>(minibatches) * ex.input.present;
  }
  // Learning models record their relaxation residuals by default.
  ex.output = read_output(top.section("output"), learning_model, training ? &ex.input : nullptr,
                          ex.max_output_bytes);
  top.finish();
  // Before anything large is built: the lists of the schedule, the network's size.
  check_schedule(ex, [&](std::string_view key) {
    std::string_view at = key;
    toml::node_view<const toml::node> n = std::as_const(root).at_path(at);
    while (!n && at.find('.') != std::string_view::npos) {  // absent: its table
      at = at.substr(0, at.rfind('.'));
      n = std::as_const(root).at_path(at);
    }
    if (!n) return path;
    const toml::source_region& src = n.node()->source();
    if (src.path && *src.path == "--set") return std::string("--set");
    return src.begin.line == 0 ? path : fmt::format("{}:{}", path, src.begin.line);
  });
  for (const std::string& file : top.files_read()) ex.input_files.push_back(file);
  return ex;
}

}  // namespace lf
