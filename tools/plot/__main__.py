"""learnflow plotting tool.

    /usr/bin/python3 tools/plot SUBCOMMAND RUN.h5 [-o OUT.png|OUT.pdf]
    /usr/bin/python3 tools/plot sweep DIR --metric M --x KEY [--y KEY2]

Each subcommand lives in a module of this folder that provides register(subcommands).
"""

import argparse
import os
import sys

# Find the sibling modules, also when this folder is run as a script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import matplotlib

matplotlib.use("Agg")  # render off-screen: no display needed

from errors import PlotError
import energy
import graph
import metrics
import weights
import relaxation
import sweep
import waves

# Modules providing register(subcommands); add new subcommand modules here.
COMMAND_MODULES = (waves, metrics, relaxation, weights, energy, sweep, graph)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot", description="Plot a learnflow run file (HDF5).")
    subcommands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subcommands)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (PlotError, OSError) as error:
        print(f"plot: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
