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
