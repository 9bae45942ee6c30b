"""Plumbing shared by the subcommands that draw one figure from a run file."""

import argparse
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection

from runfile import RunFile

FORMATS = (".png", ".pdf")
MAX_SWITCH_LINES = 50  # more input switches than this are not marked: they would hide the data


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


def mark_switches(axes_list, segments):
    """Vertical dotted lines at the input switches (the segment starts after the first) on each
    axes, unless there are more than MAX_SWITCH_LINES of them."""
    switches = [start for start, _ in segments[1:]]
    if len(switches) > MAX_SWITCH_LINES:
        return
    for axes in axes_list:
        # Not axes.vlines: it would widen the y data limits to [0, 1] (axes coordinates).
        lines = LineCollection([[(t, 0.0), (t, 1.0)] for t in switches],
                               transform=axes.get_xaxis_transform(),
                               colors="0.3", linestyles=":", linewidths=0.8)
        axes.add_collection(lines, autolim=False)


def shade_intervals(axes_list, intervals, color="0.9"):
    """Shade the time intervals [(start, end)] over the full height of each axes."""
    for axes in axes_list:
        # In axes coordinates along y, like mark_switches: the y data limits stay as they are.
        spans = PolyCollection([[(start, 0.0), (end, 0.0), (end, 1.0), (start, 1.0)]
                                for start, end in intervals],
                               transform=axes.get_xaxis_transform(), facecolors=color,
                               edgecolors="none", zorder=0)
        axes.add_collection(spans, autolim=False)


def reference_line(axes, y):
    """Dashed horizontal reference line at y (included in the y data limits)."""
    axes.axhline(y, color="0.3", linestyle="--", linewidth=0.8)


def finite_series(series):
    """The entries of {name: (times, values)} with at least one finite value."""
    return {name: data for name, data in series.items() if np.isfinite(data[1]).any()}


def log_scale(axes, values):
    """Log scale if the finite values are >= 0 and one is > 0 (zeros leave gaps); else linear."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    if finite.size and finite.min() >= 0 and finite.max() > 0:
        axes.set_yscale("log", nonpositive="mask")


def name_colors(names):
    """{name: colour of the default cycle}, by position in names (network order): a population
    and the projection named after it get one colour in every panel."""
    return {name: f"C{index % 10}" for index, name in enumerate(names)}


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
