"""Plumbing shared by the subcommands that draw one figure from a run file. The drawing
helpers are learnflow.plot's (python/learnflow/plot.py), importable from here too."""

import argparse
from pathlib import Path

import learnflow_path  # noqa: F401 (python/ on sys.path)
from learnflow.plot import (finite_series, log_scale, mark_switches, name_colors,  # noqa: F401
                            reference_line, shade_intervals)
from runfile import RunFile

FORMATS = (".png", ".pdf")


def output_path(value):
    """argparse type of -o: a path ending in one of FORMATS."""
    path = Path(value)
    if path.suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"{value}: must end in {' or '.join(FORMATS)}")
    return path


def default_output(run_path, command):
    """RUN.h5 -> RUN_<command>.png, next to the run file."""
    path = Path(run_path)
    stem = path.stem if path.suffix == ".h5" else path.name
    return path.with_name(f"{stem}_{command}.png")


def run_title(run):
    """Figure title: the run file, its model, integrator and solver outcome."""
    outcome = run.solver.get("outcome", "none (incomplete run)")
    return (f"{run.path}: model {run.attr('model', '?')}, integrator "
            f"{run.attr('integrator', '?')}, outcome {outcome}")


def add_figure_command(subcommands, name, draw, description):
    """Add subcommand `name RUN.h5 [-o OUT]` that saves the figure draw(run, args) returns.

    Returns the subparser, for command-specific options."""
    parser = subcommands.add_parser(name, help=description, description=description)
    parser.add_argument("run", metavar="RUN.h5", help="learnflow run file")
    parser.add_argument("-o", "--output", type=output_path, metavar="OUT.png",
                        help=f"figure file, .png or .pdf (default: RUN_{name}.png)")

    def save(args):
        output = args.output or default_output(args.run, name)
        with RunFile(args.run) as run:
            figure = draw(run, args)
        figure.savefig(output)
        print(output)

    parser.set_defaults(func=save)
    return parser
