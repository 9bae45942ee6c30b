#include "models/registry.hpp"

#include <fmt/format.h>

#include <array>

#include "models/adjoint.hpp"
#include "models/costate.hpp"
#include "models/dtp.hpp"
#include "models/gaitprop.hpp"
#include "models/leaky.hpp"
#include "sim/config.hpp"
#include "sim/errors.hpp"

namespace lf {
namespace {

constexpr std::array<ModelInfo, 4> infos = {{
    {"leaky", "forward waves of leaky neurons: tau dx/dt = -c x + sigma(W x + b + u)"},
    {"costate", "Betti-Gori costates: backward waves of lambda, online weight flow, exact adjoint"},
    {"dtp", "differential target propagation: relaxing targets, approximate inverses, DTP updates"},
    {"gaitprop", "GAIT-prop: incremental targets through exact layer inverses, backprop for orthogonal W"},
}};

Loss parse_loss(const ConfigSection& s) {
  const std::string loss = s.string("loss", "squared");
  if (loss == "squared") return Loss::squared;
  if (loss == "cross_entropy") return Loss::cross_entropy;
  s.fail("loss", fmt::format("unknown loss '{}' (choose one of: squared, cross_entropy)", loss));
}

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
  p.loss = parse_loss(s);
  const std::string mode = s.string("mode", "diffusion");
  if (mode == "diffusion") p.mode = CostateMode::diffusion;
  else if (mode == "adjoint") p.mode = CostateMode::adjoint;
  else s.fail("mode", fmt::format("unknown mode '{}' (choose one of: diffusion, adjoint)", mode));
  return p;
}

DtpParams parse_dtp(const ConfigSection& s) {
  DtpParams p;
  p.tau_h = s.positive("tau_h", p.tau_h);
  p.tau_r = s.positive("tau_r", p.tau_r);
  p.beta = s.positive("beta", p.beta);
  const std::string correction = s.string("correction", "decoder_output");
  if (correction == "decoder_output") p.correction = TargetCorrection::decoder_output;
  else if (correction == "decoder_input") p.correction = TargetCorrection::decoder_input;
  else s.fail("correction", fmt::format("unknown correction '{}' (choose one of: decoder_output, "
                                        "decoder_input)", correction));
  const std::int64_t iterations = s.integer("iterations", 0);
  if (iterations < 0) s.fail("iterations", fmt::format("must be >= 0, got {}", iterations));
  p.iterations = static_cast<int>(iterations);
  const std::string update = s.string("update", "dtp1");
  if (update == "none") p.update = DtpUpdate::none;
  else if (update == "dtp1") p.update = DtpUpdate::dtp1;
  else if (update == "dtp") p.update = DtpUpdate::dtp;
  else if (update == "flow") p.update = DtpUpdate::flow;
  else s.fail("update", fmt::format("unknown update '{}' (choose one of: none, dtp1, dtp, flow)", update));
  p.eta = s.number("eta", p.eta);
  if (p.eta < 0.0) s.fail("eta", fmt::format("must be >= 0, got {}", p.eta));
  p.decay = s.number("decay", p.decay);
  if (p.decay < 0.0) s.fail("decay", fmt::format("must be >= 0, got {}", p.decay));
  const std::string decoders = s.string("decoders", "pinv");
  if (decoders == "pinv") p.decoders = DecoderKind::pinv;
  else if (decoders == "random") p.decoders = DecoderKind::random;
  else if (decoders == "exact") p.decoders = DecoderKind::exact;
  else s.fail("decoders", fmt::format("unknown decoders '{}' (choose one of: pinv, random, exact)", decoders));
  p.decoder_noise = s.number("decoder_noise", p.decoder_noise);
  if (p.decoder_noise < 0.0) s.fail("decoder_noise", fmt::format("must be >= 0, got {}", p.decoder_noise));
  p.decoder_rate = s.number("decoder_rate", p.decoder_rate);
  if (p.decoder_rate < 0.0) s.fail("decoder_rate", fmt::format("must be >= 0, got {}", p.decoder_rate));
  if (p.decoder_rate > 0.0 && p.decoders == DecoderKind::exact) {
    s.fail("decoder_rate", "exact decoders are not learned: set decoder_rate = 0 or decoders = \"pinv\"");
  }
  p.loss = parse_loss(s);
  return p;
}

GaitpropParams parse_gaitprop(const ConfigSection& s) {
  GaitpropParams p;
  p.tau_h = s.positive("tau_h", p.tau_h);
  p.tau_r = s.positive("tau_r", p.tau_r);
  p.gamma = s.positive("gamma", p.gamma);
  p.eta = s.number("eta", p.eta);
  if (p.eta < 0.0) s.fail("eta", fmt::format("must be >= 0, got {}", p.eta));
  p.lambda_orth = s.number("lambda_orth", p.lambda_orth);
  if (p.lambda_orth < 0.0) s.fail("lambda_orth", fmt::format("must be >= 0, got {}", p.lambda_orth));
  const std::string mode = s.string("mode", "continuous");
  if (mode == "continuous") p.mode = GaitpropMode::continuous;
  else if (mode == "discrete") p.mode = GaitpropMode::discrete;
  else s.fail("mode", fmt::format("unknown mode '{}' (choose one of: continuous, discrete)", mode));
  p.loss = parse_loss(s);
  return p;
}

}  // namespace

std::string model_type(const ModelParams& params) {
  return std::visit([](const auto& p) -> std::string {
    using P = std::decay_t<decltype(p)>;
    if constexpr (std::is_same_v<P, LeakyParams>) return "leaky";
    if constexpr (std::is_same_v<P, CostateParams>) return "costate";
    if constexpr (std::is_same_v<P, DtpParams>) return "dtp";
    if constexpr (std::is_same_v<P, GaitpropParams>) return "gaitprop";
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
  } else if (type == "dtp") {
    params = parse_dtp(s);
  } else if (type == "gaitprop") {
    params = parse_gaitprop(s);
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
    if constexpr (std::is_same_v<P, DtpParams>) return std::make_unique<DtpModel>(network, p, drive);
    if constexpr (std::is_same_v<P, GaitpropParams>) return std::make_unique<GaitpropModel>(network, p, drive);
  }, params);
}

}  // namespace lf
