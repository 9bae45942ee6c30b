#pragma once
// The `learnflow` command line (DESIGN §7). Returns the process exit status.
namespace lf {
int run_cli(int argc, char** argv);
}
