#include "sim/checkpoint.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "outputs/checkpoint_file.hpp"
#include "sim/core/diagnostics.hpp"
#include "sim/core/errors.hpp"

namespace lf {

void put_position(Snapshot& out, const LoopPosition& at) {
  out.put("loop/segment", static_cast<double>(at.segment));
  out.put("loop/t", at.t);
  out.put("loop/dt", at.dt);
  out.put("loop/shift", at.shift);
  out.put("loop/next_sample", static_cast<double>(at.next_sample));
  out.put("loop/steps", static_cast<double>(at.stats.steps));
  out.put("loop/rejected", static_cast<double>(at.stats.rejected));
  out.put("loop/rhs_evals", static_cast<double>(at.stats.rhs_evals));
  out.put("loop/wall_seconds", at.stats.wall_seconds);
  out.put("loop/phase_start", at.phase_start);
  out.put("loop/residual_start", at.residual_start);
  out.put("loop/residual_prev", at.residual_prev);
  out.put("loop/at_segment_start", at.at_segment_start ? 1.0 : 0.0);
  out.put("loop/derivative", at.derivative);
}

LoopPosition position_from(const Snapshot& in) {
  LoopPosition at;
  // Counts are stored as doubles: a negative, fractional or non-finite one is damage.
  for (const char* name : {"loop/segment", "loop/next_sample", "loop/steps", "loop/rejected",
                           "loop/rhs_evals"}) {
    const double v = in.scalar(name);
    if (!(v >= 0.0 && v < 9.0e15 && v == std::floor(v))) {
      throw InputError(fmt::format("the checkpoint's '{}' is damaged ({})", name, v));
    }
  }
  at.segment = in.count("loop/segment");
  at.t = in.scalar("loop/t");
  at.dt = in.scalar("loop/dt");
  at.shift = in.scalar("loop/shift");
  at.next_sample = in.count("loop/next_sample");
  at.stats.steps = static_cast<long>(in.scalar("loop/steps"));
  at.stats.rejected = static_cast<long>(in.scalar("loop/rejected"));
  at.stats.rhs_evals = static_cast<long>(in.scalar("loop/rhs_evals"));
  at.stats.wall_seconds = in.scalar("loop/wall_seconds");
  at.phase_start = in.scalar("loop/phase_start");
  at.residual_start = in.scalar("loop/residual_start");
  at.residual_prev = in.scalar("loop/residual_prev");
  at.at_segment_start = in.scalar("loop/at_segment_start") != 0.0;
  at.derivative = in.get("loop/derivative");
  return at;
}

Checkpointer::Checkpointer(IntegrationObserver& inner, const Model& model, TrajectoryWriter& writer,
                           std::vector<Part> parts, std::string path, std::string config,
                           double interval, double final_t)
    : inner_(inner), model_(model), writer_(writer), parts_(std::move(parts)),
      path_(std::move(path)), config_(std::move(config)), interval_(interval), final_t_(final_t) {}

bool Checkpointer::checkpoint_due(double t) {
  if (t >= final_t_) return true;
  return interval_ > 0.0 &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count() >= interval_;
}

void Checkpointer::checkpoint(const State& s, const LoopPosition& at) {
  Snapshot snapshot;
  snapshot.put_text("run/config", config_);
  put_position(snapshot, at);
  snapshot.put("state", s);
  model_.save_events(snapshot);
  for (const Part& part : parts_) part(snapshot);
  writer_.save_rows(snapshot);  // flushes: the file holds what the checkpoint says
  try {
    write_checkpoint(path_, snapshot);
  } catch (const InputError& e) {
    if (!warned_) eprint("learnflow: warning: {}\n", e.what());
    warned_ = true;
  }
  last_ = std::chrono::steady_clock::now();
}

}  // namespace lf
