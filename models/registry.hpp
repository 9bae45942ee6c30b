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

class AdjointForwardModel;

// A model as a run needs it: the ODE system it integrates forward, and what the run must do
// after that integration.
struct BuiltModel {
  std::unique_ptr<Model> model;
  // Costate mode "adjoint": the same object as `model`, whose forward trajectory the run stores
  // for the exact (Pontryagin) backward sweep after it (sim/adjoint_sweep.hpp); null otherwise.
  const AdjointForwardModel* adjoint = nullptr;
};

// Builds the model; `network` and `drive` must outlive it. Throws InputError when the network
// does not suit the model.
BuiltModel build_model(const ModelParams& params, const Network& network, const Drive& drive);
// build_model's model alone, for callers that only integrate forward.
std::unique_ptr<Model> make_model(const ModelParams& params, const Network& network,
                                  const Drive& drive);

}  // namespace lf
