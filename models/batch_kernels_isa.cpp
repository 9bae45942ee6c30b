// One instruction set's batched products (models/batch_kernels.hpp), built into its own shared
// library with -march=LEARNFLOW_KERNEL_ARCH and hidden symbols (CMakeLists.txt): only the entry
// point below is exported.
#include "models/batch_kernels_impl.hpp"

#define LEARNFLOW_JOIN2(a, b) a##b
#define LEARNFLOW_JOIN(a, b) LEARNFLOW_JOIN2(a, b)
#define LEARNFLOW_STRING2(a) #a
#define LEARNFLOW_STRING(a) LEARNFLOW_STRING2(a)

extern "C" [[gnu::visibility("default")]] const lf::BatchKernels* LEARNFLOW_JOIN(
    learnflow_batch_kernels_, LEARNFLOW_KERNEL_SYMBOL)() {
  static const lf::BatchKernels set = LEARNFLOW_BATCH_KERNEL_SET(LEARNFLOW_STRING(LEARNFLOW_KERNEL_ARCH));
  return &set;
}
