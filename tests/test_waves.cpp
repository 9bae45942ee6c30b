// Wave arrival times on analytic curves.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "sim/waves.hpp"

using namespace lf;

TEST_CASE("arrival time: first crossing of half the change, interpolated") {
  std::vector<double> t, m;
  for (int i = 0; i <= 400; ++i) {
    t.push_back(i * 0.01);
    m.push_back(t.back() < 1.0 ? 0.2 : 0.2 + 3.0 * (1.0 - std::exp(-(t.back() - 1.0))));
  }
  // Segment [1, 4]: m − m0 = 3(1 − e^{−(t−1)}) reaches half of its change 3(1 − e^{−3}) at
  // t = 1 − ln(1 − (1 − e^{−3})/2); linear interpolation over 0.01 errs by < 0.01²·max|m''|/8/|m'|.
  const double expected = 1.0 - std::log(1.0 - (1.0 - std::exp(-3.0)) / 2.0);
  const auto arrival = arrival_time(t, m, 1.0, 4.0);
  REQUIRE(arrival);
  CHECK(*arrival == doctest::Approx(expected).epsilon(1e-5));
  CHECK_FALSE(arrival_time(t, m, 0.0, 1.0));  // flat segment: undefined
  CHECK_FALSE(arrival_time(t, m, 1.001, 1.009));  // no samples

  // A ramp crossing between samples: interpolation is exact.
  const std::vector<double> tr{0, 1, 2, 3}, mr{0, 0, 2, 2};
  CHECK(*arrival_time(tr, mr, 0, 3) == doctest::Approx(1.5));
}
