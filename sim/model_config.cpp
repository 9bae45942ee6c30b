// Reading the [model] table: `type` and that model's parameters, validated (models/params.hpp).
#include <fmt/format.h>

#include "models/registry.hpp"
#include "sim/config.hpp"

namespace lf {
namespace {

Loss parse_loss(const ConfigSection& s) {
  return s.choice<Loss>("loss", "squared",
                        {{"squared", Loss::squared}, {"cross_entropy", Loss::cross_entropy}});
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
  p.kappa = s.non_negative("kappa", p.kappa);
  p.plastic_bias = s.boolean("plastic_bias", p.plastic_bias);
  p.loss = parse_loss(s);
  p.mode = s.choice<CostateMode>("mode", "diffusion", {{"diffusion", CostateMode::diffusion},
                                                       {"adjoint", CostateMode::adjoint}});
  // Inertia (models/costate.hpp): the masses of the weights and of the neurons.
  p.m_w = s.non_negative("m_w", p.m_w);
  p.m_x = s.non_negative("m_x", p.m_x);
  if (p.mode == CostateMode::adjoint) {
    if (p.m_w > 0.0) s.fail("m_w", "the exact adjoint has no inertia: set m_w = 0 or mode = \"diffusion\"");
    if (p.m_x > 0.0) s.fail("m_x", "the exact adjoint has no inertia: set m_x = 0 or mode = \"diffusion\"");
  }
  return p;
}

DtpParams parse_dtp(const ConfigSection& s) {
  DtpParams p;
  p.tau_h = s.positive("tau_h", p.tau_h);
  p.tau_r = s.positive("tau_r", p.tau_r);
  p.beta = s.positive("beta", p.beta);
  p.correction = s.choice<TargetCorrection>(
      "correction", "decoder_output",
      {{"decoder_output", TargetCorrection::decoder_output},
       {"decoder_input", TargetCorrection::decoder_input}});
  const std::int64_t iterations = s.integer("iterations", 0);
  if (iterations < 0) s.fail("iterations", fmt::format("must be >= 0, got {}", iterations));
  p.iterations = static_cast<int>(iterations);
  p.update = s.choice<DtpUpdate>("update", "dtp1",
                                 {{"none", DtpUpdate::none}, {"dtp1", DtpUpdate::dtp1},
                                  {"dtp", DtpUpdate::dtp}, {"flow", DtpUpdate::flow}});
  p.eta = s.non_negative("eta", p.eta);
  p.decay = s.non_negative("decay", p.decay);
  p.decoders = s.choice<DecoderKind>("decoders", "pinv",
                                     {{"pinv", DecoderKind::pinv}, {"random", DecoderKind::random},
                                      {"exact", DecoderKind::exact}});
  p.decoder_noise = s.non_negative("decoder_noise", p.decoder_noise);
  p.decoder_rate = s.non_negative("decoder_rate", p.decoder_rate);
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
  p.eta = s.non_negative("eta", p.eta);
  p.lambda_orth = s.non_negative("lambda_orth", p.lambda_orth);
  p.mode = s.choice<GaitpropMode>("mode", "continuous", {{"continuous", GaitpropMode::continuous},
                                                         {"discrete", GaitpropMode::discrete}});
  p.loss = parse_loss(s);
  return p;
}

BackpropParams parse_backprop(const ConfigSection& s) {
  BackpropParams p;
  p.eta = s.non_negative("eta", p.eta);
  p.kappa = s.non_negative("kappa", p.kappa);
  p.plastic_bias = s.boolean("plastic_bias", p.plastic_bias);
  p.loss = parse_loss(s);
  return p;
}

EqpropParams parse_eqprop(const ConfigSection& s) {
  EqpropParams p;
  p.beta = s.positive("beta", p.beta);
  p.symmetric = s.boolean("symmetric", p.symmetric);
  p.eta = s.non_negative("eta", p.eta);
  p.update = s.choice<EqpropUpdate>("update", "discrete", {{"discrete", EqpropUpdate::discrete},
                                                           {"flow", EqpropUpdate::flow}});
  p.tau = s.positive("tau", p.tau);
  if (p.symmetric && p.beta >= 1.0) {
    // F = E − βC at −β: ∂²F/∂u_out² = 1 − β (+ bounded terms of ρ), so for β >= 1 F is unbounded
    // below in u_out (smooth ρ: the −β relaxation runs off to infinity; hard_sigmoid: it sticks
    // at the box) and the symmetric estimate is meaningless.
    s.fail("beta", fmt::format("must be < 1 with symmetric = true (the relaxation at -beta "
                               "minimises E - beta C, which is unbounded below in the outputs for "
                               "beta >= 1), got {}", p.beta));
  }
  return p;
}

HolonomicParams parse_holonomic(const ConfigSection& s) {
  HolonomicParams p;
  p.m_x = s.non_negative("m_x", p.m_x);
  p.m_w = s.positive("m_w", p.m_w);
  p.theta = s.non_negative("theta", p.theta);
  p.alpha = s.positive("alpha", p.alpha);
  p.sign = s.choice<HolonomicSign>("sign", "mechanics", {{"mechanics", HolonomicSign::mechanics},
                                                         {"minimum", HolonomicSign::minimum}});
  p.dissipation = s.choice<HolonomicDissipation>(
      "dissipation", "kinetic",
      {{"kinetic", HolonomicDissipation::kinetic}, {"whole", HolonomicDissipation::whole}});
  p.stabilize = s.choice<HolonomicStabilization>(
      "stabilize", "project",
      {{"project", HolonomicStabilization::project}, {"baumgarte", HolonomicStabilization::baumgarte},
       {"none", HolonomicStabilization::none}});
  p.patterns = s.choice<HolonomicPatterns>(
      "patterns", "stream", {{"stream", HolonomicPatterns::stream}, {"batch", HolonomicPatterns::batch}});
  p.input_switch = s.choice<HolonomicInputSwitch>(
      "input_switch", "impact", {{"impact", HolonomicInputSwitch::impact}, {"ramp", HolonomicInputSwitch::ramp}});
  p.ramp_width = s.positive("ramp_width", p.ramp_width);
  p.plastic_bias = s.boolean("plastic_bias", p.plastic_bias);
  p.loss = parse_loss(s);
  p.solver = s.choice<HolonomicSolver>(
      "solver", "dense",
      {{"dense", HolonomicSolver::dense}, {"block", HolonomicSolver::block}, {"cg", HolonomicSolver::cg}});
  p.cg_tolerance = s.positive("cg_tolerance", p.cg_tolerance);
  return p;
}

Activation parse_named_activation(const ConfigSection& s, std::string_view key, Activation fallback) {
  if (!s.has(key)) return fallback;
  const std::string name = s.string(key);
  Activation a;
  if (!parse_activation(name, a)) {
    std::string names;
    for (const auto n : activation_names()) names += (names.empty() ? "" : ", ") + std::string(n);
    s.fail(key, fmt::format("unknown activation '{}' (choose one of: {})", name, names));
  }
  return a;
}

GnnParams parse_gnn(const ConfigSection& s) {
  GnnParams p;
  const std::int64_t state = s.integer("state", p.state);
  if (state <= 0) s.fail("state", fmt::format("must be > 0, got {}", state));
  p.state = static_cast<long>(state);
  p.c = s.positive("c", p.c);
  p.tau_x = s.positive("tau_x", p.tau_x);
  p.tau_lambda = s.positive("tau_lambda", p.tau_lambda);
  p.gamma = s.positive("gamma", p.gamma);
  p.kappa = s.non_negative("kappa", p.kappa);
  p.activation = parse_named_activation(s, "activation", p.activation);
  p.output_activation = parse_named_activation(s, "output_activation", p.output_activation);
  p.loss = s.choice<Loss>("loss", "cross_entropy",
                          {{"squared", Loss::squared}, {"cross_entropy", Loss::cross_entropy}});
  p.aggregate = s.choice<GnnAggregate>("aggregate", "mean",
                                       {{"mean", GnnAggregate::mean}, {"sum", GnnAggregate::sum}});
  p.learn = s.boolean("learn", p.learn);
  p.contraction = s.non_negative("contraction", p.contraction);
  p.contraction_weight = s.non_negative("contraction_weight", p.contraction_weight);
  p.mode = s.choice<GnnMode>("mode", "flow", {{"flow", GnnMode::flow}, {"discrete", GnnMode::discrete}});
  p.eta = s.non_negative("eta", p.eta);
  if (p.mode == GnnMode::discrete && !p.learn) {
    s.fail("learn", "mode = \"discrete\" is a training loop: it needs learn = true");
  }
  if (p.contraction > 0.0 && !twice_differentiable(p.activation)) {
    s.fail("contraction", fmt::format("the contraction penalty's gradient needs σ'', and activation "
                                      "'{}' is not twice differentiable", activation_name(p.activation)));
  }
  return p;
}

}  // namespace

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
  } else if (type == "backprop") {
    params = parse_backprop(s);
  } else if (type == "eqprop") {
    params = parse_eqprop(s);
  } else if (type == "holonomic") {
    params = parse_holonomic(s);
  } else if (type == "gnn") {
    params = parse_gnn(s);
  } else {
    std::string names;
    for (const auto& info : model_infos()) names += (names.empty() ? "" : ", ") + std::string(info.name);
    s.fail("type", fmt::format("unknown model '{}' (choose one of: {})", type, names));
  }
  s.finish();
  return params;
}

}  // namespace lf
