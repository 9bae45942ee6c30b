#pragma once
// One function per stepper family, each defined in its own translation unit so the heavy odeint
// templates are instantiated once, in parallel builds.
#include "integrators/registry.hpp"

namespace lf {

struct IntegrationJob {
  const Model& model;
  Drive& drive;
  State& state;
  const IntegratorSpec& spec;
  const std::vector<double>& sample_times;
  IntegrationObserver& observer;
  const LoopPosition* resume = nullptr;
};

IntegrationResult integrate_dopri5(const IntegrationJob& job);
IntegrationResult integrate_rkck54(const IntegrationJob& job);
IntegrationResult integrate_rkf78(const IntegrationJob& job);
IntegrationResult integrate_bulirsch_stoer(const IntegrationJob& job);
IntegrationResult integrate_rk4(const IntegrationJob& job);
IntegrationResult integrate_euler(const IntegrationJob& job);

}  // namespace lf
