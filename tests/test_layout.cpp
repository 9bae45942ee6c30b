// StateLayout: blocks are contiguous, named, and viewed without raw offsets.
#include <doctest/doctest.h>

#include "sim/core/layout.hpp"

using namespace lf;

TEST_CASE("state layout names contiguous blocks") {
  StateLayout layout;
  const BlockId x = layout.add("x", "hidden", {3});
  const BlockId w = layout.add("W", "hidden_out", {2, 3});
  CHECK(layout.size() == 9);
  CHECK(layout.block(w).offset == 3);
  CHECK(layout.block(w).name() == "W/hidden_out");
  CHECK(layout.find("W", "hidden_out") == w);
  CHECK(layout.contains("x", "hidden"));
  CHECK_FALSE(layout.contains("x", "out"));
  CHECK_THROWS_AS(layout.find("lambda", "hidden"), std::out_of_range);

  State s(9, 0.0);
  layout.vector(s, x) << 1, 2, 3;
  auto m = layout.matrix(s, w);
  m(1, 2) = 7.0;  // row-major: element (1, 2) is the last of the block
  CHECK(s[8] == 7.0);
  CHECK(s[2] == 3.0);
}
