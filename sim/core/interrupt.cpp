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

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a write under way completes; the loop polls the request
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &action, nullptr);
}

}  // namespace lf
