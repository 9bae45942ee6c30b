#include "models/batch_kernels.hpp"

#include <cstdlib>
#include <string>
#include <vector>

#include "models/batch_kernels_impl.hpp"
#include "sim/core/errors.hpp"

namespace lf {
namespace {

std::vector<const BatchKernels*> available_sets() {
  static const BatchKernels baseline = LEARNFLOW_BATCH_KERNEL_SET("baseline");
  std::vector<const BatchKernels*> sets{&baseline};
#ifdef LEARNFLOW_ISA_KERNELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v3")) sets.push_back(learnflow_batch_kernels_x86_64_v3());
  if (__builtin_cpu_supports("x86-64-v4")) sets.push_back(learnflow_batch_kernels_x86_64_v4());
#endif
  return sets;
}

const std::vector<const BatchKernels*>& sets() {
  static const std::vector<const BatchKernels*> all = available_sets();
  return all;
}

const BatchKernels& choose() {
  const char* wanted = std::getenv("LEARNFLOW_KERNELS");
  if (wanted == nullptr || *wanted == '\0') return *sets().back();
  std::string names;
  for (const BatchKernels* s : sets()) {
    if (std::string(s->name) == wanted) return *s;
    names += std::string(names.empty() ? "" : ", ") + s->name;
  }
  throw InputError("environment variable LEARNFLOW_KERNELS = '" + std::string(wanted) +
                           "': this build and CPU run only " + names);
}

}  // namespace

std::span<const BatchKernels* const> batch_kernel_sets() { return sets(); }

const BatchKernels& batch_kernels() {
  static const BatchKernels& chosen = choose();
  return chosen;
}

}  // namespace lf
