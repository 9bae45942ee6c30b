#include "models/registry.hpp"

#include <fmt/format.h>

#include <array>

#include "models/adjoint.hpp"
#include "models/costate.hpp"
#include "models/leaky.hpp"
#include "sim/config.hpp"
#include "sim/errors.hpp"

namespace lf {
namespace {

constexpr std::array<ModelInfo, 2> infos = {{
    {"leaky", "forward waves of leaky neurons: tau dx/dt = -c x + sigma(W x + b + u)"},
    {"costate", "Betti-Gori costates: backward waves of lambda, online weight flow, exact adjoint"},
}};

LeakyParams parse_leaky(const ConfigSection& s) {
  LeakyParams p;
  p.c = s.positive("c", p.c);
  p.tau = s.positive("tau", p.tau);
  return p;
}

CostateParams parse_costate(const ConfigSection& s) {
  CostateParams p;
  p.c = s.positive("c", p.c);
  p.tau_x = s.positive("tau_x", p.tau_x);
  p.tau_lambda = s.positive("tau_lambda", p.tau_lambda);
  p.gamma = s.positive("gamma", p.gamma);
  p.kappa = s.number("kappa", p.kappa);
  if (p.kappa < 0.0) s.fail("kappa", fmt::format("must be >= 0, got {}", p.kappa));
  p.plastic_bias = s.boolean("plastic_bias", p.plastic_bias);
  const std::string loss = s.string("loss", "squared");
  if (loss == "squared") p.loss = Loss::squared;
  else if (loss == "cross_entropy") p.loss = Loss::cross_entropy;
  else s.fail("loss", fmt::format("unknown loss '{}' (choose one of: squared, cross_entropy)", loss));
  const std::string mode = s.string("mode", "diffusion");
  if (mode == "diffusion") p.mode = CostateMode::diffusion;
  else if (mode == "adjoint") p.mode = CostateMode::adjoint;
  else s.fail("mode", fmt::format("unknown mode '{}' (choose one of: diffusion, adjoint)", mode));
  return p;
}

}  // namespace

std::string model_type(const ModelParams& params) {
  return std::visit([](const auto& p) -> std::string {
    using P = std::decay_t<decltype(p)>;
    if constexpr (std::is_same_v<P, LeakyParams>) return "leaky";
    if constexpr (std::is_same_v<P, CostateParams>) return "costate";
  }, params);
}

std::span<const ModelInfo> model_infos() { return infos; }

ModelParams parse_model_params(const ConfigSection& s) {
  const std::string type = s.string("type", "leaky");
  ModelParams params;
  if (type == "leaky") {
    params = parse_leaky(s);
  } else if (type == "costate") {
    params = parse_costate(s);
  } else {
    std::string names;
    for (const auto& info : infos) names += (names.empty() ? "" : ", ") + std::string(info.name);
    s.fail("type", fmt::format("unknown model '{}' (choose one of: {})", type, names));
  }
  s.finish();
  return params;
}

std::unique_ptr<Model> make_model(const ModelParams& params, const Network& network,
                                  const Drive& drive) {
  return std::visit([&](const auto& p) -> std::unique_ptr<Model> {
    using P = std::decay_t<decltype(p)>;
    if constexpr (std::is_same_v<P, LeakyParams>) return std::make_unique<LeakyModel>(network, p, drive);
    if constexpr (std::is_same_v<P, CostateParams>) {
      // Adjoint mode: the forward pass first; the run then sweeps backward (sim/run.cpp).
      if (p.mode == CostateMode::adjoint) return std::make_unique<AdjointForwardModel>(network, p, drive);
      return std::make_unique<CostateModel>(network, p, drive);
    }
  }, params);
}

}  // namespace lf
