// _learnflow: the compiled part of the learnflow Python module. It builds an Experiment from a
// config file or a dict (a tree of values) with --set style overrides, runs it into its HDF5
// file with the GIL released and SIGINT turned into a clean stop, and reports how it ended.
// Reading run files, the errors' Python classes and the public API are pure Python
// (python/learnflow/); user errors cross as learnflow.errors.ConfigError / DataFileError /
// InputError with the CLI's message and the key, file or line as attributes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fmt/format.h>
#include <toml++/toml.h>

#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "integrators/registry.hpp"
#include "models/registry.hpp"
#include "sim/config.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/interrupt.hpp"
#include "sim/run.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace lf {
namespace {

// The name a dict config goes by in messages; its relative paths resolve against the working
// directory (it has no folder).
constexpr const char* dict_origin = "<dict>";

[[noreturn]] void bad_value(const std::string& key, const std::string& message) {
  throw ConfigError(key, dict_origin, fmt::format("{}: {}: {}", dict_origin, key, message));
}

// A TOML value of any kind a config holds.
using TomlValue = std::variant<bool, std::int64_t, double, std::string, toml::table, toml::array>;

// A Python value as a TOML value: bool, int, float, str, a dict (table) or a list or tuple
// (array) of them; numpy scalars and arrays through item() and tolist(). `key` (dotted) names
// the value in errors; `depth` counts the enclosing tables and arrays. (A plain recursive
// function: a callback template per level would instantiate itself without end.)
TomlValue to_toml(py::handle value, const std::string& key, std::size_t depth) {
  if (depth > max_toml_nesting) {
    bad_value(key, fmt::format("nested deeper than {} levels", max_toml_nesting));
  }
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) {
    try {
      return value.cast<std::int64_t>();
    } catch (const py::cast_error&) {
      bad_value(key, fmt::format("the integer {} does not fit in 64 bits", py::str(value).cast<std::string>()));
    }
  }
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::dict>(value)) {
    toml::table table;
    for (const auto& [k, v] : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(k)) {
        bad_value(key.empty() ? std::string("(top level)") : key,
                  fmt::format("the key {} is not a string", std::string(py::repr(k))));
      }
      const std::string name = py::str(k);  // a str, checked above
      std::visit([&](auto&& node) { table.insert_or_assign(name, std::move(node)); },
                 to_toml(v, key.empty() ? name : key + "." + name, depth + 1));
    }
    return table;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    toml::array array;
    for (const py::handle item : value) {
      std::visit([&](auto&& node) { array.push_back(std::move(node)); }, to_toml(item, key, depth + 1));
    }
    return array;
  }
  if (py::hasattr(value, "tolist") && py::hasattr(value, "dtype")) {  // numpy
    return to_toml(value.attr("tolist")(), key, depth);
  }
  bad_value(key, fmt::format("a {} is not a config value (bool, int, float, str, dict, list)",
                             py::type::of(value).attr("__name__").cast<std::string>()));
}

toml::table dict_to_table(const py::dict& config) {
  return std::get<toml::table>(to_toml(config, "", 0));  // a dict gives a table
}

// A config as given to run() or validate(): a path to a TOML file, or the table of a dict.
using ConfigSource = std::variant<std::string, toml::table>;

ConfigSource config_source(const py::object& config) {
  if (py::isinstance<py::dict>(config)) return dict_to_table(config.cast<py::dict>());
  return py::str(config).cast<std::string>();  // a str or os.PathLike (the wrapper calls fspath)
}

Experiment load(ConfigSource source, const std::vector<std::string>& overrides) {
  if (auto* path = std::get_if<std::string>(&source)) return load_experiment(*path, overrides);
  return experiment_from_table(std::move(std::get<toml::table>(source)), dict_origin, overrides);
}

// Raises learnflow.errors.<name>(message, **attributes) from a C++ user error.
void raise_python(const char* name, const std::string& message, const py::dict& attributes) {
  const py::object type = py::module_::import("learnflow.errors").attr(name);
  const py::object error = type(message, **attributes);
  PyErr_SetObject(type.ptr(), error.ptr());
}

py::dict result_dict(const IntegrationResult& r) {
  return py::dict("outcome"_a = std::string(outcome_name(r.outcome)), "message"_a = r.message,
                  "t"_a = r.t, "steps"_a = r.stats.steps, "rejected"_a = r.stats.rejected,
                  "rhs_evals"_a = r.stats.rhs_evals, "wall_seconds"_a = r.stats.wall_seconds);
}

// Runs the config into `output` (empty: output.file; in_memory: a file in memory, whose bytes
// come back as "image"). The GIL is released from the parsing on
// (data sets load then) to the end; SIGINT stops the run at its next step as in the CLI (a
// second one ends the process). Returns what the CLI reports.
py::dict run(const py::object& config, const std::vector<std::string>& overrides,
             const std::string& output, int threads, bool force, bool resume, bool progress,
             bool log_evaluations, bool in_memory) {
  ConfigSource source = config_source(config);
  RunReport report;
  int signal = 0;
  {
    py::gil_scoped_release release;
    const ScopedInterruptHandlers handlers({SIGINT});
    RunOptions options{output, threads, progress, log_evaluations};
    options.force = force;
    options.resume = resume;
    options.in_memory = in_memory;
    Run run(load(std::move(source), overrides), options);
    report = run.execute();
    signal = interrupt_signal();
  }
  py::dict out("result"_a = result_dict(report.result), "output"_a = report.output_path,
               "samples"_a = report.samples, "threads"_a = report.threads,
               "diverged_phases"_a = report.diverged_phases,
               "first_divergence"_a = report.first_divergence, "checkpoint"_a = report.checkpoint,
               "signal"_a = signal);
  out["adjoint"] = report.adjoint ? py::object(result_dict(*report.adjoint)) : py::none();
  out["resumed_at"] = report.resumed_at ? py::object(py::float_(*report.resumed_at)) : py::none();
  out["image"] = in_memory ? py::object(py::bytes(reinterpret_cast<const char*>(report.image.data()),
                                                  report.image.size()))
                           : py::none();
  return out;
}

std::string validate(const py::object& config, const std::vector<std::string>& overrides) {
  ConfigSource source = config_source(config);
  py::gil_scoped_release release;
  return validate_experiment(load(std::move(source), overrides));
}

}  // namespace
}  // namespace lf

PYBIND11_MODULE(_learnflow, m) {
  m.doc() = "learnflow's compiled core: use the learnflow package (learnflow.run, learnflow.open)";
  m.attr("version") = LEARNFLOW_VERSION;
  m.def("run", &lf::run, "config"_a, "overrides"_a, "output"_a, "threads"_a, "force"_a,
        "resume"_a, "progress"_a, "log_evaluations"_a, "in_memory"_a = false);
  m.def("validate", &lf::validate, "config"_a, "overrides"_a);
  m.def("models", [] {
    std::vector<std::pair<std::string, std::string>> out;
    for (const lf::ModelInfo& i : lf::model_infos()) out.emplace_back(i.name, i.summary);
    return out;
  });
  m.def("integrators", [] {
    std::vector<std::string> out;
    for (const lf::StepperInfo& s : lf::stepper_infos()) out.emplace_back(s.name);
    return out;
  });
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lf::ConfigError& e) {
      lf::raise_python("ConfigError", e.what(), py::dict("key"_a = e.key(), "where"_a = e.where()));
    } catch (const lf::DataFileError& e) {
      lf::raise_python("DataFileError", e.what(), py::dict("file"_a = e.file(), "line"_a = e.line()));
    } catch (const lf::InputError& e) {
      lf::raise_python("InputError", e.what(), py::dict());
    }
  });
}
