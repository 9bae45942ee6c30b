#include "sim/cli.hpp"

int main(int argc, char** argv) { return lf::run_cli(argc, argv); }
