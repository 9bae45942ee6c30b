#pragma once
// A request to stop the integration at the next step boundary (SIGINT, SIGTERM, SIGHUP; the CLI
// installs the handlers). Async-signal-safe: the handler only stores the signal number.
#include <csignal>

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

}  // namespace lf
