#pragma once
// Diagnostics on stderr (errors, warnings, the summary line, the progress line) that never
// throw. fmt::print(stderr, …) throws std::system_error when the stream cannot be written
// (stderr redirected to /dev/full, a closed pipe), which ended every run, even a successful
// one, with std::terminate (status 134; issue 8). A message that cannot be shown is dropped:
// the exit status and the output file still say what happened.
#include <fmt/format.h>

#include <cstdio>
#include <string_view>
#include <utility>

namespace lf {

// Writes `text` to `stream`, ignoring failure.
inline void write_unchecked(std::FILE* stream, std::string_view text) noexcept {
  if (!text.empty()) static_cast<void>(std::fwrite(text.data(), 1, text.size(), stream));
}

// fmt::print(stream, …) that never throws (formatting may allocate: bad_alloc drops the text).
template <typename... Args>
void eprint(std::FILE* stream, fmt::format_string<Args...> format, Args&&... args) noexcept {
  try {
    write_unchecked(stream, fmt::format(format, std::forward<Args>(args)...));
  } catch (...) {
  }
}

// fmt::print(stderr, …) that never throws.
template <typename... Args>
void eprint(fmt::format_string<Args...> format, Args&&... args) noexcept {
  eprint(stderr, format, std::forward<Args>(args)...);
}

}  // namespace lf
