#pragma once
// The models learnflow knows, by name, and building the model of an experiment (their [model]
// parameters are read by sim/model_config.cpp).
#include <memory>
#include <span>
#include <string_view>

#include "sim/core/model.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

namespace lf {

struct ModelInfo {
  std::string_view name;
  std::string_view summary;
};

std::span<const ModelInfo> model_infos();

// Builds the model; `network` and `drive` must outlive it. Throws InputError when the network
// does not suit the model.
std::unique_ptr<Model> make_model(const ModelParams& params, const Network& network,
                                  const Drive& drive);

}  // namespace lf
