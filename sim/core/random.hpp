#pragma once
// Seeded random numbers that give the same bits on every platform and standard library:
// splitmix64 to derive independent streams, xoshiro256** for the stream, Box–Muller for normals
// (std::normal_distribution is implementation-defined, so it is not used).
#include <cstdint>
#include <vector>

namespace lf {

// Mixes (seed, stream) into a well-spread 64-bit value: each projection gets its own stream.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

class Random {
 public:
  explicit Random(std::uint64_t seed);
  std::uint64_t next_u64();
  double uniform01();                 // in [0, 1), 53 random bits
  double uniform(double lo, double hi);
  double normal();                    // N(0, 1)
  std::uint64_t below(std::uint64_t n);  // uniform in [0, n), unbiased (n > 0)

 private:
  std::uint64_t s_[4];
  double spare_normal_ = 0.0;
  bool has_spare_ = false;
};

// A uniformly random permutation of 0 … n−1 (Fisher–Yates, drawing from `rng`).
std::vector<std::size_t> random_permutation(std::size_t n, Random& rng);

}  // namespace lf
