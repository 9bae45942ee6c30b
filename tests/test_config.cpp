// Config reading: typed values, overrides, and error messages that name the key and the line.
#include <string>

#include "sim/core/errors.hpp"
#include "tests/helpers.hpp"

using namespace lf;
using namespace lf::test;

namespace {

const char* base = R"(
[network]
layers = [2, 3, 1]
[input]
value = [0.5, -0.5]
[integrator]
t_end = 2.0
)";

// The message of the ConfigError (or other InputError) thrown by loading `toml`.
std::string error_of(const std::string& toml, const std::vector<std::string>& overrides = {}) {
  try {
    experiment_from_toml(toml, overrides);
  } catch (const InputError& e) {
    return e.what();
  }
  FAIL("no error thrown");
  return {};
}

}  // namespace

TEST_CASE("defaults and layered shorthand") {
  const Experiment ex = experiment_from_toml(base);
  REQUIRE(ex.network.populations.size() == 3);
  CHECK(ex.network.populations[0].role == Role::input);
  CHECK(ex.network.populations[2].role == Role::output);
  CHECK(ex.network.projections[1].name == "layer2");  // named after its target
  CHECK(ex.network.projections[1].from == "layer1");
  CHECK(std::get<LeakyParams>(ex.model).c == 1.0);
  CHECK(ex.integrator.stepper == "dopri5");
  CHECK(ex.input_size() == 2);
  CHECK(ex.output.mode_for("x", "layer1").kind == RecordMode::all);
}

TEST_CASE("--set overrides are typed and validated like the file") {
  const Experiment ex = experiment_from_toml(
      base, {"integrator.rtol=1e-9", "model.type=leaky", "output.record.x=\"every:3\"",
             "model.c=2"});
  CHECK(ex.integrator.rtol == 1e-9);
  CHECK(std::get<LeakyParams>(ex.model).c == 2.0);
  CHECK(ex.output.mode_for("x", "layer1").stride == 3);
  // The stored text is the config after overrides, and parses back to the same values.
  const toml::table text = toml::parse(ex.config_text);
  CHECK(text["integrator"]["rtol"].value<double>() == 1e-9);
  CHECK(text["model"]["c"].value<double>() == 2.0);
  CHECK(error_of(base, {"integrator.rtol=-1"}) == "--set: integrator.rtol: must be > 0, got -1");
  CHECK(error_of(base, {"integrator.rtol=small"}).find("expected a number, got a string") !=
        std::string::npos);
  CHECK(error_of(base, {"norequals"}).find("expected key.path=value") != std::string::npos);
}

TEST_CASE("errors name the key, the file and the line") {
  std::string toml = base;
  toml.replace(toml.find("layers"), 6, "layres");
  CHECK(error_of(toml).find(".toml:3: network.layres: unknown key (did you mean "
                            "'network.layers'?)") != std::string::npos);
  CHECK(error_of(std::string(base) + "[model]\ntau = 0\n").find(":9: model.tau: must be > 0, got 0") !=
        std::string::npos);
  CHECK(error_of(std::string(base) + "[output]\nsampel_dt = 0.1\n")
            .find(":9: output.sampel_dt: unknown key (did you mean "
                  "'output.sample_dt'?)") != std::string::npos);
  CHECK(error_of(std::string(base) + "[model]\ntype = \"leakyy\"\n").find("unknown model 'leakyy'") !=
        std::string::npos);
}

TEST_CASE("edit distance") {
  CHECK(edit_distance("layers", "layres") == 2);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("dopri5", "dopri5") == 0);
}

namespace {

// A digraph u (input) -> h -> y (output) with the given population, projection and phase names.
std::string named_graph(const std::string& hidden, const std::string& projection,
                        const std::string& phase = "settle") {
  return R"(
[[network.population]]
name = "u"
size = 2
role = "input"
[[network.population]]
name = ")" + hidden + R"("
size = 3
[[network.population]]
name = "y"
size = 1
role = "output"
[[network.projection]]
from = "u"
to = ")" + hidden + R"("
name = ")" + projection + R"("
[[network.projection]]
from = ")" + hidden + R"("
to = "y"
[input]
value = [0.5, -0.5]
phases = [{ name = ")" + phase + R"(", duration = 1.0 }]
[integrator]
t_end = 2.0
)";
}

bool contains(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

}  // namespace

TEST_CASE("names that become HDF5 paths are checked at config time (issue 8)") {
  // "." made a group named "." and "a/b" nested groups: exit 2 only after the file existed.
  for (const char* name : {".", "..", "...", "", "a/b", "/", "a b", "a,b", "x\\u0001y", "λ"}) {
    INFO("name: " << name);
    const std::string rule = "name (1 to 255 of the characters A-Z a-z 0-9 _ - . and not only dots)";
    CHECK(contains(error_of(named_graph(name, "p")),
                   ":7: network.population[1].name: '"));
    CHECK(contains(error_of(named_graph(name, "p")), "' is not a valid population " + rule));
    CHECK(contains(error_of(named_graph("h", name)), ": network.projection[0].name: '"));
    CHECK(contains(error_of(named_graph("h", name)), "' is not a valid projection " + rule));
    CHECK(contains(error_of(named_graph("h", "p", name)), ": input.phases[0].name: '"));
  }
  CHECK(contains(error_of(named_graph("x\\u0001y", "p")), "'x\\x01y' is not a valid population"));
  CHECK(contains(error_of(named_graph(std::string(300, 'n'), "p")), "... (300 characters)"));
  // Dots, dashes and underscores are fine where the name is not only dots.
  const Experiment ex = experiment_from_toml(named_graph("h.1-a_b", "..p", "a.b"));
  CHECK(ex.network.populations[1].name == "h.1-a_b");
  CHECK(ex.network.projections[0].name == "..p");
  CHECK(ex.network.projections[1].name == "h.1-a_b_y");
}

TEST_CASE("TOML nested too deep is refused before toml++ parses it (issue 8)") {
  CHECK(toml_nesting_violation("[a.b.c]\nx = [[1], [2]]\n", 64) == 0);
  CHECK(toml_nesting_violation("x = 1\n[" + std::string(64, 'a') + "]\n", 3) == 0);
  std::string dotted = "t";
  for (int i = 0; i < 64; ++i) dotted += ".t";  // 65 components
  CHECK(toml_nesting_violation("x = 1\n\n[" + dotted + "]\n", 64) == 3);
  CHECK(toml_nesting_violation(dotted + " = 1\n", 64) == 0);  // 64 dots: 64 levels
  CHECK(toml_nesting_violation(dotted + ".t = 1\n", 64) == 1);
  CHECK(toml_nesting_violation("x = " + std::string(65, '[') + std::string(65, ']'), 64) == 1);
  CHECK(toml_nesting_violation("x = " + std::string(64, '[') + std::string(64, ']'), 64) == 0);
  // Strings and comments are skipped, whatever they hold; lines inside them are counted.
  const std::string deep = std::string(100, '[') + std::string(100, '.') + std::string(100, '{');
  CHECK(toml_nesting_violation("a = \"" + deep + "\\\"" + deep + "\"\n", 64) == 0);
  CHECK(toml_nesting_violation("a = '" + deep + "'\n# " + deep + "\n", 64) == 0);
  CHECK(toml_nesting_violation("a = \"\"\"\n" + deep + "\n\"\"\"\nb = '''" + deep + "\n'''\n[" +
                                   dotted + "]",
                               64) == 6);
  CHECK(toml_nesting_violation("a = \"\"\n[" + dotted + "]", 64) == 2);

  // A header dotted 50,000 levels deep overflowed the stack inside the parser (a segfault).
  std::string header = "[t";
  for (int i = 0; i < 50000; ++i) header += ".t";
  const std::string error = error_of(std::string(base) + "\n\n" + header + "]\n");
  CHECK(contains(error, ":10: TOML nested deeper than 64 levels (dotted keys, arrays, inline tables)"));
  CHECK(contains(error_of(std::string(base) + "x = " + std::string(100000, '[') +
                          std::string(100000, ']') + "\n"),
                 ":8: TOML nested deeper than 64 levels"));
  // --set values are parsed by the same parser: the same guard, and for the key path.
  CHECK(error_of(base, {"integrator.t_end=" + std::string(100, '[') + std::string(100, ']')}) ==
        "--set: integrator.t_end: nested deeper than 64 levels (dotted keys, arrays, inline tables)");
  CHECK(contains(error_of(base, {dotted + "=1"}), "--set: t.t.t"));
  CHECK(contains(error_of(base, {dotted + "=1"}), ": nested deeper than 64 levels"));
}

TEST_CASE("non-finite numbers are refused in every inline array (issue 8)") {
  const std::string sequence = R"(
[network]
layers = [2, 3, 1]
[model]
type = "costate"
[input]
kind = "sequence"
values = [[0.5, -0.5], [VALUE, 1.0]]
targets = [[0.1], [TARGET]]
present = 1.0
[integrator]
t_end = 2.0
)";
  auto with = [&](const std::string& value, const std::string& target) {
    std::string text = sequence;
    text.replace(text.find("VALUE"), 5, value);
    text.replace(text.find("TARGET"), 6, target);
    return text;
  };
  CHECK(experiment_from_toml(with("0.25", "0.5")).input.sequence[1][0] == 0.25);
  CHECK(contains(error_of(with("nan", "0.5")), ":8: input.values: element [1][0] is not finite (nan)"));
  CHECK(contains(error_of(with("-inf", "0.5")), ":8: input.values: element [1][0] is not finite (-inf)"));
  CHECK(contains(error_of(with("0.1", "inf")), ":9: input.targets: element [1][0] is not finite (inf)"));
  // A scalar standing for the whole vector, and a constant target.
  CHECK(contains(error_of(std::string(base) + "[output]\n", {"input.value=nan"}),
                 "--set: input.value: expected a finite number, got nan"));
  CHECK(contains(error_of(base, {"input.target=[nan]", "model.type=costate"}),
                 "--set: input.target: element 0 is not finite"));
  // An edge weight: NaN used to mean "draw one" and was replaced by a random weight.
  CHECK(contains(error_of(named_graph("h", "p") + "[[network.projection]]\nfrom = \"h\"\nto = \"h\"\n"
                                                  "edges = [[0, 1, 0.5], [1, 2, nan]]\n"),
                 ": network.projection[2].edges: edge 1: weight nan is not finite"));
}

TEST_CASE("lists built before the run are bounded by the config (issue 8)") {
  // Tiny sample_dt, present or phases, or a huge t_end, built lists of billions of entries.
  CHECK(contains(error_of(base, {"output.sample_dt=1e-9"}),
                 "--set: output.sample_dt: 1e-09 over [0, 2] gives 2e+09 sample times, more than "
                 "1e+08 (the sample times are listed before the run): raise output.sample_dt or "
                 "shorten the run (integrator.t_end)"));
  const std::string far = error_of(std::string(base) + "[output]\nsample_dt = 0.5\n", {"integrator.t_end=1e12"});
  CHECK(contains(far, ":9: output.sample_dt: 0.5 over [0, 1e+12] gives 2e+12 sample times"));
  CHECK(contains(far, "shorten the run (integrator.t_end)"));
  CHECK(contains(error_of(R"(
[network]
layers = [2, 3, 1]
[input]
kind = "sequence"
values = [[0.5, -0.5], [1.0, 1.0]]
present = 1e-9
[integrator]
t_end = 1.0
[output]
sample_dt = 0.5
)"),
                 ":7: input.present: the input switches 1e+09 times over [0, 1], more than 1e+08"));
  CHECK(contains(error_of(std::string(base) + "[output]\nsample_dt = 0.5\n",
                          {"input.phases=[{ name = \"a\", duration = 1e-9 }]"}),
                 "--set: input.phases: the input switches 2e+09 times over [0, 2]"));
  // The network's weights alone would not fit: refused before they are drawn (1.2 TB).
  CHECK(contains(error_of("[network]\nlayers = [2, 400000, 400000]\n[input]\nvalue = [1, 2]\n"),
                 ":2: network.layers: the run would need at least 1.16 TiB of memory, more than "
                 "this machine's "));
}
