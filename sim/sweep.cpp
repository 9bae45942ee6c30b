#include "sim/sweep.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <zlib.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "outputs/h5file.hpp"
#include "outputs/table_file.hpp"
#include "sim/budget.hpp"
#include "sim/config.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/interrupt.hpp"
#include "sim/run.hpp"
#include "sim/waves.hpp"

extern char** environ;

namespace lf {
namespace {

// The value as --set takes it (`at` and `key` name it in the sweep file). Floats keep a '.' or an exponent (so that they stay floats) and
// their shortest text that reads back to the same double.
std::string toml_text(const toml::node& node, const ConfigSection& at, const std::string& key) {
  if (const auto* v = node.as_floating_point()) {
    const double x = v->get();
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    std::string text = fmt::format("{}", x);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
  }
  if (const auto* v = node.as_integer()) return fmt::format("{}", v->get());
  if (const auto* v = node.as_boolean()) return v->get() ? "true" : "false";
  if (const auto* v = node.as_string()) {
    std::ostringstream quoted;
    quoted << toml::value<std::string>(v->get());
    return quoted.str();
  }
  if (const auto* a = node.as_array()) {
    std::string text = "[";
    for (std::size_t i = 0; i < a->size(); ++i) {
      text += (i == 0 ? "" : ", ") + toml_text(*a->get(i), at, key);
    }
    return text + "]";
  }
  // An inline table: a whole table set at once (e.g. output.record).
  std::string text = "{ ";
  bool first = true;
  for (const auto& [name, value] : *node.as_table()) {
    const std::string_view k = name.str();
    const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    });
    std::ostringstream quoted;
    quoted << toml::value<std::string>(std::string(k));
    text += fmt::format("{}{} = {}", first ? "" : ", ", bare ? std::string(k) : quoted.str(),
                        toml_text(value, at, key));
    first = false;
  }
  return text + " }";
}

SweepValue sweep_value(const toml::node& node, const ConfigSection& at, const std::string& key) {
  SweepValue v;
  v.toml = toml_text(node, at, key);
  v.label = node.is_string() ? node.as_string()->get() : v.toml;
  if (const auto* f = node.as_floating_point()) {
    v.numeric = true;
    v.number = f->get();
  } else if (const auto* i = node.as_integer()) {
    v.numeric = true;
    v.number = static_cast<double>(i->get());
  } else if (const auto* b = node.as_boolean()) {
    v.numeric = true;
    v.number = b->get() ? 1.0 : 0.0;
  }
  return v;
}

SweepValue float_value(double x) {
  SweepValue v;
  v.toml = fmt::format("{}", x);
  if (v.toml.find_first_of(".e") == std::string::npos) v.toml += ".0";
  v.label = v.toml;
  v.numeric = true;
  v.number = x;
  return v;
}

// One part of the sweep (grid axis, zip, random samples): its keys and rows of values.
struct Part {
  std::vector<std::string> keys;
  std::vector<std::string> where;
  std::vector<std::vector<SweepValue>> rows;
};

// `grid`: one part per key, its values the rows.
void read_grid(const ConfigSection& sweep, std::vector<Part>& parts) {
  if (!sweep.has("grid")) return;
  const ConfigSection grid = sweep.section("grid");
  for (const auto& [name, node] : *sweep.node("grid")->as_table()) {
    const std::string key(name.str());
    grid.node(key);  // known
    const auto* values = node.as_array();
    if (values == nullptr || values->empty()) grid.fail(key, "expected a non-empty list of values");
    Part part;
    part.keys = {key};
    part.where = {grid.where(key)};
    for (const toml::node& v : *values) part.rows.push_back({sweep_value(v, grid, key)});
    parts.push_back(std::move(part));
  }
}

// `zip`: one part, its lists (of equal length) read side by side.
void read_zip(const ConfigSection& sweep, std::vector<Part>& parts) {
  if (!sweep.has("zip")) return;
  const ConfigSection zip = sweep.section("zip");
  Part part;
  std::size_t length = 0;
  for (const auto& [name, node] : *sweep.node("zip")->as_table()) {
    const std::string key(name.str());
    zip.node(key);
    const auto* values = node.as_array();
    if (values == nullptr || values->empty()) zip.fail(key, "expected a non-empty list of values");
    if (part.keys.empty()) {
      length = values->size();
      part.rows.resize(length);
    } else if (values->size() != length) {
      zip.fail(key, fmt::format("{} values, but '{}' has {}: zipped lists must be of equal length",
                                values->size(), part.keys.front(), length));
    }
    part.keys.push_back(key);
    part.where.push_back(zip.where(key));
    for (std::size_t r = 0; r < length; ++r) part.rows[r].push_back(sweep_value(*values->get(r), zip, key));
  }
  if (part.keys.empty()) sweep.fail("zip", "expected a table of key = [values], the lists of equal length");
  parts.push_back(std::move(part));
}

// `random`: n samples, each key drawn from its distribution with one uniform number u ∈ [0, 1)
// of a 64-bit Mersenne twister seeded with `seed` (keys in alphabetical order within a sample).
// u is built from the generator's bits directly, not by std::uniform_real_distribution, whose
// algorithm the standard leaves to the library: the samples are the same everywhere.
void read_random(const ConfigSection& sweep, std::vector<Part>& parts) {
  if (!sweep.has("random")) return;
  const ConfigSection random = sweep.section("random");
  const std::int64_t n = random.integer("n");
  if (n < 1) random.fail("n", fmt::format("expected at least 1 sample, got {}", n));
  const std::int64_t seed = random.integer("seed", 0);
  if (n > static_cast<std::int64_t>(sweep_max_points) * 1000) {
    random.fail("n", fmt::format("{} samples: too many", n));
  }
  struct Distribution {
    std::string key, where, kind;
    double low = 0, high = 0;
    std::vector<SweepValue> choices;
  };
  std::vector<Distribution> distributions;
  const toml::table& table = *sweep.node("random")->as_table();
  for (const auto& [name, node] : table) {
    const std::string key(name.str());
    if (key == "n" || key == "seed") continue;
    random.node(key);  // known
    const auto* spec = node.as_table();
    if (spec == nullptr || spec->size() != 1) {
      random.fail(key, "expected one of { uniform = [low, high] }, { log_uniform = [low, high] }, "
                       "{ int_uniform = [low, high] }, { choice = [values] }");
    }
    Distribution d{key, random.where(key), std::string(spec->begin()->first.str()), 0, 0, {}};
    const auto* list = spec->begin()->second.as_array();
    if (list == nullptr || list->empty()) random.fail(key, fmt::format("{}: expected a list", d.kind));
    if (d.kind == "choice") {
      for (const toml::node& v : *list) d.choices.push_back(sweep_value(v, random, key));
    } else if (d.kind == "uniform" || d.kind == "log_uniform" || d.kind == "int_uniform") {
      bool valid = list->size() == 2;
      double bounds[2] = {0.0, 0.0};
      for (std::size_t b = 0; valid && b < 2; ++b) {
        const std::optional<double> v = list->get(b)->value<double>();
        valid = v.has_value() && std::isfinite(*v);
        if (valid) bounds[b] = *v;
      }
      d.low = bounds[0];
      d.high = bounds[1];
      if (!valid || !(d.low <= d.high)) {
        random.fail(key, fmt::format("{}: expected [low, high], finite numbers with low <= high",
                                     d.kind));
      }
      if (d.kind == "log_uniform" && !(d.low > 0)) {
        random.fail(key, fmt::format("log_uniform: the range must be positive, got low = {}", d.low));
      }
      if (d.kind == "int_uniform" &&
          (d.low != std::floor(d.low) || d.high != std::floor(d.high) || d.high - d.low > 1e15)) {
        random.fail(key, "int_uniform: expected integer bounds");
      }
    } else {
      random.fail(key, fmt::format("unknown distribution '{}' (choose one of: uniform, "
                                   "log_uniform, int_uniform, choice)", d.kind));
    }
    distributions.push_back(std::move(d));
  }
  random.finish();
  if (distributions.empty()) sweep.fail("random", "no key to sample (add e.g. \"model.gamma\" = { log_uniform = [1, 64] })");
  Part part;
  for (const Distribution& d : distributions) {
    part.keys.push_back(d.key);
    part.where.push_back(d.where);
  }
  std::mt19937_64 generator(static_cast<std::uint64_t>(seed));
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<SweepValue> row;
    for (const Distribution& d : distributions) {
      const double u = static_cast<double>(generator() >> 11) * 0x1.0p-53;  // [0, 1)
      if (d.kind == "uniform") {
        row.push_back(float_value(d.low + u * (d.high - d.low)));
      } else if (d.kind == "log_uniform") {
        row.push_back(float_value(std::exp(std::log(d.low) + u * (std::log(d.high) - std::log(d.low)))));
      } else if (d.kind == "int_uniform") {
        const double span = d.high - d.low;
        SweepValue v;
        v.number = d.low + std::min(std::floor(u * (span + 1)), span);
        v.numeric = true;
        v.toml = fmt::format("{}", static_cast<std::int64_t>(v.number));
        v.label = v.toml;
        row.push_back(v);
      } else {
        const auto count = static_cast<double>(d.choices.size());
        row.push_back(d.choices[static_cast<std::size_t>(std::min(std::floor(u * count), count - 1))]);
      }
    }
    part.rows.push_back(std::move(row));
  }
  parts.push_back(std::move(part));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataFileError(path, 0, fmt::format("{}: cannot open the file", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

Sweep load_sweep(const std::string& path) {
  Sweep sweep;
  sweep.file = path;
  sweep.text = read_text(path);
  if (const std::size_t line = toml_nesting_violation(sweep.text, max_toml_nesting); line != 0) {
    throw DataFileError(path, static_cast<long>(line),
                        fmt::format("{}:{}: TOML nested deeper than {} levels", path, line,
                                    max_toml_nesting));
  }
  toml::table root;
  try {
    root = toml::parse(sweep.text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    const long line = static_cast<long>(e.source().begin.line);
    throw DataFileError(path, line, fmt::format("{}:{}: TOML syntax error: {}", path, line,
                                                e.description()));
  }
  const ConfigSection top(root, "", path);
  if (!top.has("base")) {
    top.fail("base", "the sweep file names its base experiment: base = \"experiment.toml\" "
                     "(relative to the sweep file's folder)");
  }
  sweep.base = top.resolve_path(top.string("base"));
  if (!top.has("sweep")) top.fail("sweep", "no [sweep] table (grid, zip, random)");
  const ConfigSection table = top.section("sweep");
  top.finish();

  if (table.has("set")) {
    const ConfigSection set = table.section("set");
    for (const auto& [name, node] : *table.node("set")->as_table()) {
      const std::string key(name.str());
      set.node(key);
      sweep.fixed.push_back(fmt::format("{}={}", key, toml_text(node, set, key)));
    }
  }
  std::vector<Part> parts;
  read_grid(table, parts);
  read_zip(table, parts);
  read_random(table, parts);
  table.finish();
  if (parts.empty()) table.fail("", "nothing to sweep: give grid, zip or random");

  double count = 1;
  for (const Part& p : parts) {
    count *= static_cast<double>(p.rows.size());
    for (std::size_t k = 0; k < p.keys.size(); ++k) {
      if (std::find(sweep.keys.begin(), sweep.keys.end(), p.keys[k]) != sweep.keys.end()) {
        throw ConfigError("sweep", p.where[k], fmt::format("{}: sweep: key '{}' is swept twice",
                                                           p.where[k], p.keys[k]));
      }
      for (const std::string& fixed : sweep.fixed) {
        if (fixed.compare(0, fixed.find('='), p.keys[k]) == 0) {
          throw ConfigError("sweep", p.where[k], fmt::format("{}: sweep: key '{}' is both set "
                                                             "(sweep.set) and swept", p.where[k],
                                                             p.keys[k]));
        }
      }
      sweep.keys.push_back(p.keys[k]);
      sweep.key_where.push_back(p.where[k]);
    }
  }
  // Far beyond what --force allows to run, the list of points itself would be a burden.
  if (count > 1e7) {
    table.fail("", fmt::format("{:.3g} points: too many to list", count));
  }
  const auto points = static_cast<std::size_t>(count);
  const std::size_t digits = std::max<std::size_t>(4, fmt::format("{}", points - 1).size());
  for (std::size_t i = 0; i < points; ++i) {
    SweepPoint point;
    point.name = fmt::format("point-{:0{}}", i, digits);
    point.overrides = sweep.fixed;
    // Mixed radix, the last part varying fastest.
    std::vector<std::size_t> row(parts.size());
    std::size_t rest = i;
    for (std::size_t p = parts.size(); p-- > 0;) {
      row[p] = rest % parts[p].rows.size();
      rest /= parts[p].rows.size();
    }
    for (std::size_t p = 0; p < parts.size(); ++p) {
      for (std::size_t k = 0; k < parts[p].keys.size(); ++k) {
        const SweepValue& v = parts[p].rows[row[p]][k];
        point.values.push_back(v);
        point.overrides.push_back(fmt::format("{}={}", parts[p].keys[k], v.toml));
      }
    }
    sweep.points.push_back(std::move(point));
  }
  return sweep;
}

SweepCheck validate_sweep(const Sweep& sweep) {
  SweepCheck check;
  for (const SweepPoint& point : sweep.points) {
    try {
      const Experiment ex = load_experiment(sweep.base, point.overrides);
      SizeEstimate size;
      validate_experiment(ex, &size);
      check.bytes += size.file;
      check.fingerprints.push_back(static_cast<std::uint32_t>(
          crc32(0L, reinterpret_cast<const Bytef*>(ex.result_config.data()),
                static_cast<uInt>(ex.result_config.size()))));
    } catch (const ConfigError& e) {
      // A swept key (or a key inside one) is named with where the sweep file writes it.
      for (std::size_t k = 0; k < sweep.keys.size(); ++k) {
        const std::string& key = sweep.keys[k];
        if (e.where() == "--set" && (e.key() == key || e.key().rfind(key + ".", 0) == 0 ||
                                     key.rfind(e.key() + ".", 0) == 0)) {
          throw ConfigError(key, sweep.key_where[k],
                            fmt::format("{}: sweep key '{}' ({} = {}, {}): {}", sweep.key_where[k],
                                        key, key, point.values[k].toml, point.name, e.what()));
        }
      }
      throw ConfigError(e.key(), e.where(), fmt::format("{} ({}, the base {} with {}): {}",
                                                        sweep.file, point.name, sweep.base,
                                                        fmt::join(point.overrides, " "), e.what()));
    } catch (const InputError& e) {
      throw DataFileError(sweep.file, 0, fmt::format("{} ({}): {}", sweep.file, point.name, e.what()));
    }
  }
  return check;
}

std::string sweep_manifest(const Sweep& sweep, const SweepCheck& check) {
  // Paths are left out (they depend on the working directory); the experiments' checksums
  // stand for the sweep file and its base.
  std::string text = fmt::format("# learnflow sweep: {} points: name, crc32 of the experiment, "
                                 "overrides\n", sweep.points.size());
  for (std::size_t i = 0; i < sweep.points.size(); ++i) {
    text += fmt::format("{} {:08x} {}\n", sweep.points[i].name, check.fingerprints[i],
                        fmt::join(sweep.points[i].overrides, " "));
  }
  return text;
}

void write_point_record(const std::string& path, const PointRecord& record) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << fmt::format("status {}\nwall_seconds {}\nrank {}\nhost {}\n", record.status,
                       record.wall_seconds, record.rank, record.host);
    if (!out.flush()) throw DataFileError(temporary, 0, fmt::format("{}: cannot write", temporary));
  }
  std::filesystem::rename(temporary, path);  // a record is complete or absent
}

PointRecord read_point_record(const std::string& path) {
  std::istringstream in(read_text(path));
  PointRecord record;
  std::string word;
  int found = 0;
  while (in >> word) {
    if (word == "status" && (in >> record.status)) {
      ++found;
    } else if (word == "wall_seconds" && (in >> record.wall_seconds)) {
      ++found;
    } else if (word == "rank") {
      in >> record.rank;
    } else if (word == "host") {
      in >> record.host;
    }
  }
  if (found != 2) throw DataFileError(path, 0, fmt::format("{}: not a sweep point record", path));
  return record;
}

namespace {

// The last line of a point's log that says why it failed ("learnflow: error: …").
std::string failure_message(const std::string& log) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.rfind("learnflow: error: ", 0) == 0) last = line.substr(18);
  }
  return last;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// The median of the finite values (NaN when there are none): a rate per target phase or a speed
// per segment summarised for the index.
double finite_median(std::vector<double> values) {
  std::erase_if(values, [](double v) { return !std::isfinite(v); });
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  return quantile_sorted(values, 0.5);
}

// Per wave kind stored in the run file: the median over the measured segments of the front's
// speed.
std::vector<std::pair<std::string, double>> wave_front_speeds(const RunFileSummary& summary) {
  std::vector<std::pair<std::string, double>> speeds;
  for (const std::string kind : {"x", "h", "lambda"}) {
    const bool stored = std::any_of(summary.waves.begin(), summary.waves.end(),
                                    [&](const RunFileSummary::Wave& w) { return w.kind == kind; });
    if (!stored) continue;
    std::vector<double> values;
    for (const FrontFit& fit : stored_front_speeds(summary, kind)) values.push_back(fit.speed);
    speeds.emplace_back(kind, finite_median(std::move(values)));
  }
  return speeds;
}

}  // namespace

std::size_t write_sweep_index(const Sweep& sweep, const std::string& dir) {
  const std::size_t n = sweep.points.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto numbers = [&](std::string name) {
    return TableColumn{std::move(name), true, std::vector<double>(n, nan), {}};
  };
  const auto texts = [&](std::string name) {
    return TableColumn{std::move(name), false, {}, std::vector<std::string>(n)};
  };
  std::vector<TableColumn> columns{texts("point")};
  for (std::size_t i = 0; i < n; ++i) columns[0].texts[i] = sweep.points[i].name;
  for (std::size_t k = 0; k < sweep.keys.size(); ++k) {
    const bool numeric = std::all_of(sweep.points.begin(), sweep.points.end(),
                                     [&](const SweepPoint& p) { return p.values[k].numeric; });
    TableColumn c = numeric ? numbers(sweep.keys[k]) : texts(sweep.keys[k]);
    for (std::size_t i = 0; i < n; ++i) {
      if (numeric) c.numbers[i] = sweep.points[i].values[k].number;
      else c.texts[i] = sweep.points[i].values[k].label;
    }
    columns.push_back(std::move(c));
  }
  TableColumn status = numbers("status"), outcome = texts("outcome"), message = texts("message"),
              wall = numbers("wall_seconds"), rank = numbers("rank"), host = texts("host");
  // Final metrics and solver statistics, by column name; absent in a point: NaN.
  std::map<std::string, std::vector<double>> metrics;
  const auto put = [&](const std::string& name, std::size_t i, double value) {
    auto [it, inserted] = metrics.try_emplace(name, std::vector<double>(n, nan));
    it->second[i] = value;
  };
  const auto column_name = [](std::string name) {
    std::replace(name.begin(), name.end(), '/', '.');
    return name;
  };
  std::size_t failed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string stem = (std::filesystem::path(dir) / sweep.points[i].name).string();
    const PointRecord record = read_point_record(stem + ".done");
    status.numbers[i] = record.status;
    wall.numbers[i] = record.wall_seconds;
    host.texts[i] = record.host;
    rank.numbers[i] = record.rank;
    failed += record.status != 0;
    outcome.texts[i] = record.status == exit_ok ? "success"
                       : record.status == exit_bad_input ? "bad_input"
                       : record.status == exit_numerical ? "numerical_failure"
                       : record.status > exit_interrupted_base
                           ? fmt::format("signal_{}", record.status - exit_interrupted_base)
                           : fmt::format("exit_{}", record.status);
    if (record.status != 0) {
      // The run file by its name alone: the index does not depend on where DIR is.
      std::string text = failure_message(stem + ".log");
      const std::string run_file = stem + ".h5";
      for (std::size_t at = text.find(run_file); at != std::string::npos; at = text.find(run_file, at)) {
        text.replace(at, run_file.size(), sweep.points[i].name + ".h5");
      }
      message.texts[i] = std::move(text);
    }
    if (!std::filesystem::exists(stem + ".h5")) continue;
    try {
      const RunProgress progress = read_run_progress(stem + ".h5");
      if (progress.finished && !progress.outcome.empty()) outcome.texts[i] = progress.outcome;
      put("samples", i, static_cast<double>(progress.samples));
      put("final.time", i, progress.t);
      for (const auto& [name, value] : progress.metrics) put("final." + column_name(name), i, value);
      for (const auto& [name, value] : progress.epoch) put("epoch." + column_name(name), i, value);
      if (progress.phases > 0) {
        put("phases", i, static_cast<double>(progress.phases));
        put("phases.converged", i, static_cast<double>(progress.converged));
        put("phases.diverged", i, static_cast<double>(progress.diverged));
      }
      const RunFileSummary summary = read_run_summary(stem + ".h5");
      for (const auto& [name, text] : summary.solver_attributes) {
        // Wall times differ from one execution to the next: the index keeps its own.
        if (name.find("seconds") != std::string::npos || name == "threads") continue;
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (end != text.c_str() && *end == '\0') put("solver." + column_name(name), i, value);
      }
      // Fitted rates: a relaxation's decay rate per layer (dtp: the median over its target
      // phases of the rate fitted to the residual, and of the rate predicted from the Jacobian),
      // and the wave fronts' speeds (the median over the measured segments of the least-squares
      // speed, layers per unit time, as `learnflow info` reports them).
      for (const DatasetInfo& d : summary.datasets) {
        const std::string population = d.path.substr(d.path.rfind('/') + 1);
        for (const auto& [attribute, column] : {std::pair{"fitted_rate", "fitted"},
                                                std::pair{"predicted_rate", "predicted"}}) {
          const auto it = d.numbers.find(attribute);
          if (it != d.numbers.end()) put("rate." + population + "." + column, i, finite_median(it->second));
        }
      }
      for (const auto& [kind, speed] : wave_front_speeds(summary)) {
        put("wave." + kind + ".speed", i, speed);
      }
    } catch (const InputError&) {
      // A point that failed before its file was complete: its record says how it ended.
    }
  }
  for (TableColumn* c : {&status, &outcome, &message, &wall, &rank, &host}) columns.push_back(std::move(*c));
  for (auto& [name, values] : metrics) columns.push_back(TableColumn{name, true, std::move(values), {}});

  write_table_file((std::filesystem::path(dir) / "index.h5").string(), columns,
                   {{"sweep_file", sweep.file}, {"sweep", sweep.text}, {"base", sweep.base},
                    {"learnflow_version", LEARNFLOW_VERSION}});
  const std::string csv_path = (std::filesystem::path(dir) / "index.csv").string();
  std::ofstream csv(csv_path + ".tmp", std::ios::binary | std::ios::trunc);
  for (std::size_t c = 0; c < columns.size(); ++c) {
    csv << (c == 0 ? "" : ",") << csv_field(columns[c].name);
  }
  csv << "\n";
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const TableColumn& col = columns[c];
      csv << (c == 0 ? "" : ",");
      if (!col.numeric) csv << csv_field(col.texts[i]);
      else if (!std::isnan(col.numbers[i])) csv << fmt::format("{}", col.numbers[i]);
    }
    csv << "\n";
  }
  if (!csv.flush()) throw DataFileError(csv_path, 0, fmt::format("{}: cannot write", csv_path));
  csv.close();
  std::filesystem::rename(csv_path + ".tmp", csv_path);
  return failed;
}

}  // namespace lf

namespace lf {

std::string point_path(const Sweep& sweep, const std::string& dir, std::size_t i,
                       const char* extension) {
  return (std::filesystem::path(dir) / (sweep.points.at(i).name + extension)).string();
}

std::size_t run_sweep_points(const Sweep& sweep, const SweepRunOptions& options,
                             const std::function<std::optional<std::size_t>()>& next,
                             const std::function<void()>& idle) {
  struct Running {
    std::size_t point;
    std::chrono::steady_clock::time_point start;
  };
  std::map<pid_t, Running> running;
  std::string host(256, '\0');
  if (gethostname(host.data(), host.size() - 1) != 0) host = "unknown";
  host.resize(std::strlen(host.c_str()));
  std::size_t ran = 0;
  bool exhausted = false, forwarded = false;
  const auto start_point = [&](std::size_t i) {
    const std::string run_file = point_path(sweep, options.dir, i, ".h5");
    // What an unfinished earlier attempt left (a killed sweep): this point starts afresh.
    std::filesystem::remove(run_file);
    std::filesystem::remove(run_file + ".checkpoint");
    const std::string log = point_path(sweep, options.dir, i, ".log");
    std::vector<std::string> words{options.program, "sweep", sweep.file, "-o", options.dir,
                                   "--point", std::to_string(i), "--threads",
                                   std::to_string(options.threads), "--quiet"};
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid = 0;
    const int error = posix_spawn(&pid, options.program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      throw DataFileError(options.program, 0, fmt::format("{}: cannot start a point's process: {}",
                                                          options.program, std::strerror(error)));
    }
    running.emplace(pid, Running{i, std::chrono::steady_clock::now()});
  };
  for (;;) {
    while (!exhausted && interrupt_signal() == 0 && running.size() < static_cast<std::size_t>(options.jobs)) {
      const std::optional<std::size_t> i = next();
      if (!i) {
        exhausted = true;
      } else if (!std::filesystem::exists(point_path(sweep, options.dir, *i, ".done"))) {
        start_point(*i);
      }
    }
    if (running.empty()) break;
    if (interrupt_signal() != 0 && !forwarded) {
      // Ctrl-C reaches the whole process group; a signal sent to the sweep alone is passed on.
      for (const auto& [pid, point] : running) kill(pid, interrupt_signal());
      forwarded = true;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      idle();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const Running point = it->second;
    running.erase(it);
    PointRecord record;
    record.status = WIFEXITED(status) ? WEXITSTATUS(status)
                                      : exit_interrupted_base + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    record.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - point.start).count();
    record.host = host;
    record.rank = options.rank;
    if (interrupt_signal() != 0 && record.status >= exit_interrupted_base) continue;  // redone
    write_point_record(point_path(sweep, options.dir, point.point, ".done"), record);
    ++ran;
  }
  return ran;
}

}  // namespace lf
