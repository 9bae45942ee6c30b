#include "sim/core/interrupt.hpp"

#include <signal.h>
#include <unistd.h>

#include <initializer_list>

namespace lf {
namespace {

volatile std::sig_atomic_t requested = 0;
volatile std::sig_atomic_t hard_stop = 1;  // a second signal ends the process at once

extern "C" void on_stop_signal(int signal) {
  if (requested != 0 && hard_stop != 0) {
    // A second signal: the user insists; the streamed file stays readable (SWMR).
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  requested = signal;
}

}  // namespace

int interrupt_signal() noexcept { return requested; }
void finish_before_stopping() noexcept { hard_stop = 0; }

namespace {

struct sigaction stop_action() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a write under way completes; the loop polls the request
  return action;
}

}  // namespace

void install_interrupt_handlers() {
  const struct sigaction action = stop_action();
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &action, nullptr);
}

ScopedInterruptHandlers::ScopedInterruptHandlers(std::initializer_list<int> signals) {
  requested = 0;
  hard_stop = 1;
  const struct sigaction action = stop_action();
  for (const int s : signals) {
    Saved saved{s, {}};
    if (sigaction(s, &action, &saved.action) == 0) saved_.push_back(saved);
  }
}

ScopedInterruptHandlers::~ScopedInterruptHandlers() {
  for (const Saved& s : saved_) sigaction(s.signal, &s.action, nullptr);
}

}  // namespace lf
