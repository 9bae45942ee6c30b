"""Wave propagation: when each population's activity (forward wave, x) or costate (backward
wave, lambda) responds to each input segment: the first time the norm of its change since the
segment's start reaches half of its change over the segment (sim/waves.hpp).

Subcommands: `waves` (space-time heatmap + mean per population with arrival marks, one column
per wave) and `arrivals` (the arrival times as a table or JSON). The C++ side implements the same
arrival definition and stores its results under /waves/<kind>/<population>. The panels and the
arrival computation are learnflow.plot's (python/learnflow/plot.py).
"""

import json

import numpy as np
from matplotlib.figure import Figure

import learnflow_path  # noqa: F401 (python/ on sys.path)
from errors import PlotError
from figures import add_figure_command, mark_switches, run_title
from learnflow.plot import (FLAT_TOLERANCE, MAX_COLUMNS, MAX_MARKED_SEGMENTS,  # noqa: F401
                            WAVE_KINDS, arrival_time, draw_heatmap, draw_means, half_change_time,
                            segment_arrivals, wave_arrival)
from runfile import RunFile

FIGSIZE = (10.0, 7.0)  # inches, per wave column
DPI = 100


def recorded_waves(run):
    """{kind: activities} of the WAVE_KINDS recorded in /state; PlotError if there are none."""
    recorded = {kind: run.activities(kind) for kind in WAVE_KINDS}
    recorded = {kind: activities for kind, activities in recorded.items() if activities}
    if not recorded:
        raise PlotError(f"{run.path}: no recorded x (/state/x/<population>) "
                        "nor lambda (/state/lambda/<population>)")
    return recorded


def draw_waves(run, args):
    """Figure, one column per recorded wave (x forward, then λ backward): heatmap of the block
    (rows = neurons by population) over its mean per population with arrival marks."""
    recorded = recorded_waves(run)
    if len(run.time) < 2:
        raise PlotError(f"{run.path}: fewer than 2 samples recorded")
    segments = run.segments
    columns = len(recorded)
    figure = Figure(figsize=(FIGSIZE[0] * columns, FIGSIZE[1]), dpi=DPI, layout="constrained")
    grid = figure.add_gridspec(2, 2 * columns, width_ratios=(40, 1) * columns,
                               height_ratios=(3, 2))
    first = None
    for column, (kind, activities) in enumerate(recorded.items()):
        symbol, wave = WAVE_KINDS[kind]
        heat = figure.add_subplot(grid[0, 2 * column], sharex=first)
        first = first or heat
        means = figure.add_subplot(grid[1, 2 * column], sharex=heat)
        draw_heatmap(heat, figure.add_subplot(grid[0, 2 * column + 1]), activities, run.time,
                     symbol)
        draw_means(means, activities, segments, symbol)
        mark_switches((heat, means), segments)
        heat.set_title(f"{wave} ({symbol})", fontweight="bold")
        heat.tick_params(labelbottom=False)
        means.set_xlabel("time")
    figure.suptitle(run_title(run))
    return figure


def _records(kind, population, segments, arrivals):
    return [{"population": population, "segment": index, "start": start, "arrival": arrival,
             "kind": kind}
            for index, ((start, _), arrival) in enumerate(zip(segments, arrivals))]


def arrival_records(run):
    """All arrivals computed from /state, x before lambda: [{"population", "segment", "start",
    "arrival", "kind"}] (arrival None if undefined)."""
    segments = run.segments
    records = []
    for kind, activities in recorded_waves(run).items():
        for activity in activities:
            arrivals = segment_arrivals(activity, segments)
            records += _records(kind, activity.name, segments, arrivals)
    return records


def stored_arrival_records(run):
    """The arrivals learnflow stored in /waves, as arrival_records gives them."""
    segments = run.segments
    records = []
    for kind in WAVE_KINDS:
        for population, stored in run.stored_waves(kind).items():
            # output.waves = "first:K" measures the first K segments only.
            if len(stored) > len(segments):
                raise PlotError(f"{run.path}: /waves/{kind}/{population} holds {len(stored)} "
                                f"arrivals for {len(segments)} input segments")
            arrivals = [float(value) if np.isfinite(value) else None for value in stored]
            records += _records(kind, population, segments, arrivals)
    if not records:
        raise PlotError(f"{run.path}: no stored wave arrivals (/waves/<kind>/<population>)")
    return records


def print_arrivals(args):
    with RunFile(args.run) as run:
        records = stored_arrival_records(run) if args.from_file else arrival_records(run)
    if args.json:
        print(json.dumps(records, indent=1))
        return
    width = max(len("population"), *(len(record["population"]) for record in records))
    print(f"{'population':<{width}} {'segment':>7} {'start':>14} {'arrival':>14} {'delay':>14} "
          "kind")
    for record in records:
        arrival = record["arrival"]
        timing = ("-", "-") if arrival is None else \
            (f"{arrival:.9g}", f"{arrival - record['start']:.9g}")
        print(f"{record['population']:<{width}} {record['segment']:>7} "
              f"{record['start']:>14.9g} {timing[0]:>14} {timing[1]:>14} {record['kind']}")


def register(subcommands):
    add_figure_command(subcommands, "waves", draw_waves,
                       "space-time heatmaps of x (forward wave) and, where recorded, of the "
                       "costates lambda (backward wave), with mean per population and arrivals")
    parser = subcommands.add_parser(
        "arrivals", help="print wave arrival times per population and input segment",
        description="Print, per population with recorded x (forward wave) or lambda (backward "
                    "wave) and per input segment, the first time at which the norm of its change "
                    "since the segment's start reaches half of its change over the segment "
                    "(from the recorded samples; a norm record uses the change of its norm).")
    parser.add_argument("run", metavar="RUN.h5", help="learnflow run file")
    parser.add_argument("--json", action="store_true",
                        help='print a JSON list of {"population", "segment", "start", "arrival", '
                             '"kind"} (kind "x" or "lambda")')
    parser.add_argument("--from-file", action="store_true",
                        help="print the arrivals learnflow stored in /waves instead of computing "
                             "them from /state")
    parser.set_defaults(func=print_arrivals)
