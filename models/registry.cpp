#include "models/registry.hpp"

#include <fmt/format.h>

#include <array>

#include "models/leaky.hpp"
#include "sim/config.hpp"
#include "sim/errors.hpp"

namespace lf {
namespace {

constexpr std::array<ModelInfo, 1> infos = {{
    {"leaky", "forward waves of leaky neurons: tau dx/dt = -c x + sigma(W x + b + u)"},
}};

LeakyParams parse_leaky(const ConfigSection& s) {
  LeakyParams p;
  p.c = s.positive("c", p.c);
  p.tau = s.positive("tau", p.tau);
  return p;
}

}  // namespace

std::string model_type(const ModelParams& params) {
  return std::visit([](const auto& p) -> std::string {
    using P = std::decay_t<decltype(p)>;
    if constexpr (std::is_same_v<P, LeakyParams>) return "leaky";
  }, params);
}

std::span<const ModelInfo> model_infos() { return infos; }

ModelParams parse_model_params(const ConfigSection& s) {
  const std::string type = s.string("type", "leaky");
  ModelParams params;
  if (type == "leaky") {
    params = parse_leaky(s);
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
    if constexpr (std::is_same_v<P, LeakyParams>) {
      for (const Projection& proj : network.projections) {
        if (proj.plastic) {
          throw ConfigError("network", "",
                            fmt::format("network: projection '{}' is plastic, but model 'leaky' "
                                        "has no weight flow (set plastic = false)", proj.name));
        }
      }
      return std::make_unique<LeakyModel>(network, p, drive);
    }
  }, params);
}

}  // namespace lf
