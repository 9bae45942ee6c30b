#pragma once
// The models learnflow knows, by name: parsing and validating their [model] parameters, and
// building the model of an experiment.
#include <memory>
#include <span>
#include <string_view>

#include "models/model.hpp"
#include "models/params.hpp"
#include "sim/input.hpp"
#include "sim/network.hpp"

namespace lf {

class ConfigSection;

struct ModelInfo {
  std::string_view name;
  std::string_view summary;
};

std::span<const ModelInfo> model_infos();

// Reads [model]: `type` and that model's parameters. Throws ConfigError.
ModelParams parse_model_params(const ConfigSection& section);

// Builds the model; `network` and `drive` must outlive it. Throws InputError when the network
// does not suit the model.
std::unique_ptr<Model> make_model(const ModelParams& params, const Network& network,
                                  const Drive& drive);

}  // namespace lf
