#include "models/registry.hpp"

#include <fmt/format.h>

#include <array>

#include "models/adjoint.hpp"
#include "models/backprop_sgd.hpp"
#include "models/costate.hpp"
#include "models/dtp.hpp"
#include "models/eqprop.hpp"
#include "models/gaitprop.hpp"
#include "models/gnn.hpp"
#include "models/holonomic.hpp"
#include "models/leaky.hpp"

namespace lf {
namespace {

constexpr std::array<ModelInfo, 8> infos = {{
    {"leaky", "forward waves of leaky neurons: tau dx/dt = -c x + sigma(W x + b + u)"},
    {"costate", "Betti-Gori costates: backward waves of lambda, online weight flow, exact adjoint"},
    {"dtp", "differential target propagation: relaxing targets, approximate inverses, DTP updates"},
    {"gaitprop", "GAIT-prop: incremental targets through exact layer inverses, backprop for orthogonal W"},
    {"backprop", "discrete minibatch SGD with exact backprop: the baseline of the continuous models"},
    {"eqprop", "equilibrium propagation: energy relaxation in free and nudged phases, contrastive update"},
    {"holonomic", "Lagrangian learning: massive neurons and weights, reactions lambda of x = sigma(a) (DAGs)"},
    {"gnn", "Gori-Scarselli graph neural network as a diffusion: node states, costates, shared weights ([graph])"},
}};

}  // namespace

std::string model_type(const ModelParams& params) {
  return std::visit([](const auto& p) -> std::string {
    using P = std::decay_t<decltype(p)>;
    if constexpr (std::is_same_v<P, LeakyParams>) return "leaky";
    if constexpr (std::is_same_v<P, CostateParams>) return "costate";
    if constexpr (std::is_same_v<P, DtpParams>) return "dtp";
    if constexpr (std::is_same_v<P, GaitpropParams>) return "gaitprop";
    if constexpr (std::is_same_v<P, BackpropParams>) return "backprop";
    if constexpr (std::is_same_v<P, EqpropParams>) return "eqprop";
    if constexpr (std::is_same_v<P, HolonomicParams>) return "holonomic";
    if constexpr (std::is_same_v<P, GnnParams>) return "gnn";
  }, params);
}

std::span<const ModelInfo> model_infos() { return infos; }

BuiltModel build_model(const ModelParams& params, const Network& network, const Drive& drive) {
  return std::visit([&](const auto& p) -> BuiltModel {
    using P = std::decay_t<decltype(p)>;
    if constexpr (std::is_same_v<P, LeakyParams>) return {std::make_unique<LeakyModel>(network, p, drive)};
    if constexpr (std::is_same_v<P, CostateParams>) {
      // Adjoint mode: the forward pass first; the run then sweeps backward (sim/run.cpp).
      if (p.mode == CostateMode::adjoint) {
        auto forward = std::make_unique<AdjointForwardModel>(network, p, drive);
        const AdjointForwardModel* adjoint = forward.get();
        return {std::move(forward), adjoint};
      }
      return {std::make_unique<CostateModel>(network, p, drive)};
    }
    if constexpr (std::is_same_v<P, DtpParams>) return {std::make_unique<DtpModel>(network, p, drive)};
    if constexpr (std::is_same_v<P, GaitpropParams>) return {std::make_unique<GaitpropModel>(network, p, drive)};
    if constexpr (std::is_same_v<P, BackpropParams>) return {std::make_unique<BackpropSgdModel>(network, p, drive)};
    if constexpr (std::is_same_v<P, EqpropParams>) return {std::make_unique<EqpropModel>(network, p, drive)};
    if constexpr (std::is_same_v<P, HolonomicParams>) return {std::make_unique<HolonomicModel>(network, p, drive)};
    if constexpr (std::is_same_v<P, GnnParams>) return {std::make_unique<GnnModel>(p, network.seed, drive)};
  }, params);
}

std::unique_ptr<Model> make_model(const ModelParams& params, const Network& network,
                                  const Drive& drive) {
  return build_model(params, network, drive).model;
}

}  // namespace lf
