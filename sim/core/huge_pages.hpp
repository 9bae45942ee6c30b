#pragma once
// Asks Linux to back a large buffer that is about to be written for the first time with 2 MiB
// pages ("transparent huge pages" in madvise mode). Writing fresh memory costs a page fault per
// page: on the development machine a 376 MB matrix (Fashion-MNIST's 60000 × 784 doubles) took
// 1.05 s to fault in with 4 KiB pages and 0.04 s with 2 MiB pages. Only a hint: where it is not
// granted (other systems, THP off) nothing changes but the time. Buffers under `min_bytes` are
// left alone (the default, 32 MiB: glibc's largest mmap threshold, above which every allocation
// has pages of its own; a smaller buffer may share its pages with the heap).
#include <cstddef>

namespace lf {

void prefer_huge_pages(void* data, std::size_t bytes, std::size_t min_bytes = std::size_t{32} << 20);

}  // namespace lf
