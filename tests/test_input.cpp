// Inputs: segments (breakpoints) and values within them.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "sim/core/input.hpp"

using namespace lf;

TEST_CASE("a sequence input switches at exact multiples of present") {
  InputSpec spec;
  spec.kind = InputKind::sequence;
  spec.sequence = {{1.0}, {2.0}, {3.0}};
  spec.present = 0.1;
  const InputSignal signal(spec, 0.0, 1.0);
  REQUIRE(signal.segments() == 10);
  CHECK(signal.boundaries()[3] == 3 * 0.1);  // k·present, no accumulated drift
  CHECK(signal.boundaries().back() == 1.0);
  Drive drive(signal);
  drive.enter_segment(4, signal.boundaries()[4]);
  CHECK(drive.at(0.45)(0, 0) == 2.0);  // vector 4 mod 3
  // At the right end of a segment the value is still that segment's (left limit).
  CHECK(drive.at(signal.boundaries()[5])(0, 0) == 2.0);

  spec.repeat = false;
  const InputSignal once(spec, 0.0, 1.0);
  CHECK(once.segments() == 3);  // the last vector is held until t_end
}

TEST_CASE("step and sine inputs") {
  InputSpec step;
  step.kind = InputKind::step;
  step.value = {1.0, 2.0};
  step.before = {0.0, -1.0};
  step.t_step = 0.5;
  const InputSignal s(step, 0.0, 2.0);
  REQUIRE(s.boundaries() == std::vector<double>{0.0, 0.5, 2.0});
  Eigen::VectorXd v(2);
  s.value(0, 0.5, v);
  CHECK(v[1] == -1.0);
  s.value(1, 0.5, v);
  CHECK(v[1] == 2.0);

  InputSpec sine;
  sine.kind = InputKind::sine;
  sine.amplitude = {2.0};
  sine.frequency = {0.25};
  sine.phase = {0.0};
  sine.offset = {1.0};
  const InputSignal w(sine, 0.0, 4.0);
  CHECK(w.segments() == 1);
  const Drive d(w);
  CHECK(d.at(1.0)(0, 0) == doctest::Approx(3.0));  // 1 + 2 sin(2π·0.25·1)
}

TEST_CASE("phases split every presentation into breakpoints") {
  InputSpec spec;
  spec.kind = InputKind::sequence;
  spec.sequence = {{1.0}, {2.0}};
  spec.present = 1.0;
  spec.phase_names = {"forward", "target"};
  spec.phase_durations = {0.3, 0.7};
  const InputSignal signal(spec, 0.0, 2.0);
  REQUIRE(signal.boundaries() == std::vector<double>{0.0, 0.3, 1.0, 1.3, 2.0});
  CHECK(signal.phase(0) == 0);
  CHECK(signal.phase(1) == 1);
  CHECK(signal.phase(2) == 0);
  CHECK(signal.phase(3) == 1);
  Eigen::VectorXd v(1);
  signal.value(3, 1.5, v);
  CHECK(v[0] == 2.0);  // the second vector, in its target phase
  const InputSignal back = signal.reversed();
  CHECK(back.phase(0) == 1);  // reversed time: the last segment first
}
