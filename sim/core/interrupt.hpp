#pragma once
// A request to stop the integration at the next step boundary (SIGINT, SIGTERM, SIGHUP; the CLI
// installs the handlers). Async-signal-safe: the handler only stores the signal number.
#include <signal.h>

#include <csignal>
#include <initializer_list>
#include <vector>

namespace lf {

// The signal that asked the run to stop, or 0.
int interrupt_signal() noexcept;
// From here on a second signal is only recorded, not fatal: the run is writing its file's last
// objects outside SWMR mode, where a kill would leave it marked open (the backward sweep, with
// the file closed, still stops at its next step on the first signal).
void finish_before_stopping() noexcept;
// SIGINT, SIGTERM and SIGHUP record the request (the loop stops at its next step boundary); a
// second one of them ends the process at once.
void install_interrupt_handlers();

// For a library caller that keeps its own handlers (the Python module): for its lifetime, the
// given signals record a stop request as above (a second one ends the process), and any earlier
// request is forgotten; the caller's handlers are restored at the end. Scopes do not nest.
class ScopedInterruptHandlers {
 public:
  explicit ScopedInterruptHandlers(std::initializer_list<int> signals);
  ~ScopedInterruptHandlers();
  ScopedInterruptHandlers(const ScopedInterruptHandlers&) = delete;
  ScopedInterruptHandlers& operator=(const ScopedInterruptHandlers&) = delete;

 private:
  struct Saved {
    int signal;
    struct sigaction action;
  };
  std::vector<Saved> saved_;
};

}  // namespace lf
