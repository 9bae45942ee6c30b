// STYLE rule 1: the RHS of a model is an odeint System that allocates nothing. Every example's
// model, and variants of the models' options, is evaluated over its first input segments at a
// state perturbed before each counted call (so that caches keyed on the state are missed, as
// between the stages of a step), with every heap allocation of the process counted: malloc,
// calloc and realloc are wrapped here (Eigen allocates with malloc, not operator new).
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "models/registry.hpp"
#include "sim/config.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

// Under AddressSanitizer the allocator is the sanitizer's, which these wrappers would bypass (the
// binary crashed at start-up): the test then only reports that it cannot count.
#if defined(__SANITIZE_ADDRESS__)
#define LEARNFLOW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEARNFLOW_SANITIZED 1
#endif
#endif
#if defined(__GLIBC__) && !defined(LEARNFLOW_SANITIZED)
#define LEARNFLOW_COUNT_ALLOCATIONS 1
#endif

#ifdef LEARNFLOW_COUNT_ALLOCATIONS
namespace {
std::atomic<long> allocations{0};
std::atomic<bool> counting{false};
}  // namespace

// Wrappers of glibc's allocator (the same heap, so free() needs no wrapper).
extern "C" void* __libc_malloc(std::size_t size);
extern "C" void* __libc_calloc(std::size_t count, std::size_t size);
extern "C" void* __libc_realloc(void* p, std::size_t size);
extern "C" void* malloc(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) ++allocations;
  return __libc_malloc(size);
}
extern "C" void* calloc(std::size_t count, std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) ++allocations;
  return __libc_calloc(count, size);
}
extern "C" void* realloc(void* p, std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) ++allocations;
  return __libc_realloc(p, size);
}
#endif

using namespace lf;

TEST_CASE("no model's RHS allocates (STYLE rule 1)") {
#ifndef LEARNFLOW_COUNT_ALLOCATIONS
  MESSAGE("allocations are counted by wrapping glibc's malloc: not on this C library, nor under "
          "AddressSanitizer");
  return;
#else
  const std::string root = LEARNFLOW_SOURCE_DIR;
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"examples/forward_wave.toml", {}},
      {"bench/problems/p1_L8_n256.toml", {}},  // the parallel RHS (OpenMP) of a large network
      {"examples/backward_wave.toml", {}},
      {"examples/xor_costate.toml", {}},
      {"examples/xor_costate.toml", {"model.mode=\"adjoint\""}},
      {"examples/dtp_relaxation.toml", {}},
      {"examples/dtp_relaxation.toml", {"model.update=\"flow\"", "model.correction=\"decoder_input\""}},
      {"examples/dtp_relaxation.toml",
       {"model.decoders=\"exact\"", "model.decoder_noise=0.0", "model.decoder_rate=0",
        "model.update=\"flow\""}},
      {"examples/gaitprop_patterns.toml", {}},
      {"examples/holonomic_chain.toml", {}},
      {"examples/holonomic_chain.toml", {"model.m_x=0.5", "model.dissipation=\"kinetic\""}},
      {"examples/holonomic_chain.toml", {"model.m_x=0.5", "model.input_switch=\"ramp\"", "model.ramp_width=4.0"}},
      {"examples/holonomic_xor.toml", {}},
      {"examples/holonomic_xor.toml", {"model.stabilize=\"baumgarte\"", "model.patterns=\"stream\""}},
      {"examples/holonomic_chain.toml", {"model.m_x=0.5", "model.solver=\"block\""}},
      {"examples/holonomic_chain.toml", {"model.m_x=0.5", "model.solver=\"cg\""}},
      {"examples/holonomic_xor.toml", {"model.solver=\"block\""}},
      {"examples/holonomic_xor.toml", {"model.solver=\"cg\""}},
      {"examples/gaitprop_patterns.toml", {"model.mode=\"discrete\""}},
      {"examples/eqprop_xor.toml", {}},
      {"examples/eqprop_xor.toml", {"model.update=\"flow\"", "network.activation=\"logistic\""}},
      {"examples/gnn_karate.toml", {}},
      {"examples/gnn_karate.toml", {"model.contraction=0.9", "model.contraction_weight=1.0"}},
      // Training runs: batches of 30 (64 for Fashion-MNIST), the RHS on n×B activities.
      {"examples/digits_costate.toml", {}},
      {"examples/digits_backprop.toml", {}},
      {"examples/digits_dtp.toml", {}},
      {"examples/digits_dtp.toml", {"model.iterations=0", "model.update=\"flow\""}},
      {"examples/digits_gaitprop.toml", {}},
      {"examples/digits_gaitprop.toml", {"model.mode=\"continuous\"", "model.lambda_orth=0.1"}},
      {"examples/fashion_mnist_costate.toml", {"data.limit=256"}},
  };
  for (const auto& [file, overrides] : cases) {
    std::string label = file;
    for (const std::string& o : overrides) label += " " + o;
    CAPTURE(label);
    const Experiment ex = load_experiment(root + "/" + file, overrides);
    const Network network = build_network(ex.network);
    const InputSignal signal(ex.input, ex.integrator.t0, ex.integrator.t_end);
    Drive drive(signal);
    const auto model = make_model(ex.model, network, drive);
    State s(static_cast<std::size_t>(model->layout().size())), ds(s.size());
    model->initial_state(s);
    const std::vector<double>& bounds = signal.boundaries();
    long worst = -1;
    for (std::size_t k = 0; k + 1 < bounds.size() && k < 6; ++k) {
      drive.enter_segment(k, bounds[k]);
      model->enter_segment(s, bounds[k]);
      model->rhs(s, ds, bounds[k]);  // first call of a segment: sizes anything lazily sized
      for (int call = 0; call < 3; ++call) {
        for (std::size_t i = 0; i < s.size(); ++i) s[i] += 1e-3 * std::sin(0.7 * static_cast<double>(i) + call);
        const double t = bounds[k] + 0.25 * (call + 1) * (bounds[k + 1] - bounds[k]);
        allocations = 0;
        counting = true;
        model->rhs(s, ds, t);
        counting = false;
        worst = std::max(worst, allocations.load());
      }
    }
    CHECK(worst == 0);
  }
#endif
}
