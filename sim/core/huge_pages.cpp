#include "sim/core/huge_pages.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace lf {

void prefer_huge_pages(void* data, std::size_t bytes, std::size_t min_bytes) {
#if defined(MADV_HUGEPAGE)
  if (bytes < min_bytes) return;
  const auto page = std::uintptr_t{4096};
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
  (void)min_bytes;
#endif
}

}  // namespace lf
