#pragma once
// What an integration reports: how it ended (heyoka-style outcome) and its statistics.
#include <string>
#include <string_view>

namespace lf {

// How an integration ended (heyoka-style outcome).
enum class Outcome {
  success,
  err_nf_state,    // a non-finite state
  step_underflow,  // the step size fell below rounding of t, or below integrator.dt_min
  step_limit,      // integrator.max_steps
  diverged,        // a diverged phase with integrator.on_divergence = "stop"
  wall_limit,      // integrator.max_wall_seconds
  interrupted,     // a signal (SIGINT, SIGTERM, SIGHUP) asked the run to stop
};
inline std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::success: return "success";
    case Outcome::err_nf_state: return "err_nf_state";
    case Outcome::step_underflow: return "step_underflow";
    case Outcome::step_limit: return "step_limit";
    case Outcome::diverged: return "diverged";
    case Outcome::wall_limit: return "wall_limit";
    case Outcome::interrupted: return "interrupted";
  }
  return "?";
}

struct SolverStats {
  long steps = 0;      // accepted steps
  long rejected = 0;   // rejected step attempts
  long rhs_evals = 0;  // evaluations of the right-hand side
  double wall_seconds = 0.0;
};

struct IntegrationResult {
  Outcome outcome = Outcome::success;
  double t = 0.0;        // time reached: t_end on success, else the time of the failure
  std::string message;   // for failures: what happened, where
  SolverStats stats;
};

}  // namespace lf
