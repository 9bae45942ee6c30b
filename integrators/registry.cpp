#include "integrators/registry.hpp"

#include <array>
#include <cassert>

#include "integrators/steppers.hpp"

namespace lf {
namespace {

constexpr std::array<StepperInfo, 6> infos = {{
    {"dopri5", 5, true, true, "Dormand-Prince 5(4), FSAL, dense output (default)"},
    {"rkck54", 5, true, false, "Cash-Karp 5(4), stops at sample times"},
    {"rkf78", 8, true, false, "Runge-Kutta-Fehlberg 7(8), 13 stages, stops at sample times"},
    {"bs", 0, true, false, "Bulirsch-Stoer extrapolation, adaptive order, stops at sample times"},
    {"rk4", 4, false, false, "classical Runge-Kutta 4, fixed step dt0"},
    {"euler", 1, false, false, "explicit Euler, fixed step dt0"},
}};

}  // namespace

std::span<const StepperInfo> stepper_infos() { return infos; }

const StepperInfo* find_stepper(std::string_view name) {
  for (const auto& info : infos) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

IntegrationResult integrate(const Model& model, Drive& drive, State& state,
                            const IntegratorSpec& spec, const std::vector<double>& sample_times,
                            IntegrationObserver& observer, const LoopPosition* resume) {
  const IntegrationJob job{model, drive, state, spec, sample_times, observer, resume};
  const std::string_view name = spec.stepper;
  if (name == "dopri5") return integrate_dopri5(job);
  if (name == "rkck54") return integrate_rkck54(job);
  if (name == "rkf78") return integrate_rkf78(job);
  if (name == "bs") return integrate_bulirsch_stoer(job);
  if (name == "rk4") return integrate_rk4(job);
  if (name == "euler") return integrate_euler(job);
  assert(false && "stepper validated at config time");
  return {};
}

}  // namespace lf
