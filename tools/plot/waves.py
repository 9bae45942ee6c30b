"""Wave propagation: when each population's activity (forward wave, x) or costate (backward
wave, lambda) responds to each input segment: the first time the norm of its change since the
segment's start reaches half of its change over the segment (sim/waves.hpp).

Subcommands: `waves` (space-time heatmap + mean per population with arrival marks, one column
per wave) and `arrivals` (the arrival times as a table or JSON). The C++ side implements the same
arrival definition and stores its results under /waves/<kind>/<population>.
"""

import json
import math

import numpy as np
from matplotlib.figure import Figure

from errors import PlotError
from figures import add_figure_command, mark_switches, run_title
from runfile import RunFile

FIGSIZE = (10.0, 7.0)  # inches, per wave column
DPI = 100
MAX_COLUMNS = 2000  # time resolution of the heatmap
MAX_MARKED_SEGMENTS = 20
FLAT_TOLERANCE = 1e-9  # relative change below which a segment has no arrival
# The recorded blocks whose waves are analysed: kind (as in /state/<kind>) -> (symbol, wave).
WAVE_KINDS = {"x": ("x", "forward wave"), "lambda": ("λ", "backward wave")}


def half_change_time(t, d, scale):
    """The first time the series d (d[0] the reference) reaches half of its last change,
    interpolated linearly; None if fewer than 2 samples, a value is not finite, or the change is
    flat (|d[-1] - d[0]| <= FLAT_TOLERANCE * max(1, scale)). The same as sim/waves.cpp."""
    if len(t) < 2 or not np.all(np.isfinite(d)):
        return None
    change = d[-1] - d[0]
    if abs(change) <= FLAT_TOLERANCE * max(1.0, scale):
        return None
    half = 0.5 * change
    moved = d - d[0]
    reached = moved >= half if half > 0 else moved <= half
    i = int(np.argmax(reached[1:])) + 1
    before, after = moved[i - 1], moved[i]
    fraction = 1.0 if after == before else min(max((half - before) / (after - before), 0.0), 1.0)
    return float(t[i - 1] + fraction * (t[i] - t[i - 1]))


def wave_arrival(t, rows):
    """(arrival, (median, q25, q75)) of a population from its samples rows [T, n] at times t,
    the first row the reference: the arrival is the half-change time of d(t) = ||x(t) - x(t0)||,
    the quartiles those of the neurons' half-change times of |x_i(t) - x_i(t0)| (NaN if none).
    A 1-D series is one neuron. The definition of sim/waves.hpp."""
    rows = np.asarray(rows, dtype=float)
    if rows.ndim == 1:
        rows = rows[:, None]
    nan = (math.nan, math.nan, math.nan)
    if len(t) < 2 or rows.shape[0] != len(t) or rows.shape[1] == 0:
        return None, nan
    change = rows - rows[0]
    scale = max(np.linalg.norm(rows[0]), np.linalg.norm(rows[-1]))
    arrival = half_change_time(t, np.linalg.norm(change, axis=1), scale)
    halves = []
    for i in range(rows.shape[1]):
        h = half_change_time(t, np.abs(change[:, i]), max(abs(rows[0, i]), abs(rows[-1, i])))
        if h is not None:
            halves.append(h)
    quartiles = tuple(float(q) for q in np.quantile(halves, [0.5, 0.25, 0.75])) if halves else nan
    return arrival, quartiles


def arrival_time(t, m, start, end):
    """Wave arrival time of the samples m (1-D series or [T, n] rows) in the segment
    [start, end], or None if undefined: wave_arrival over the samples with start <= t <= end
    (the first of them the reference). t must be increasing."""
    first = np.searchsorted(t, start, side="left")
    stop = np.searchsorted(t, end, side="right")
    if stop - first < 2:
        return None
    return wave_arrival(np.asarray(t)[first:stop], np.asarray(m)[first:stop])[0]


def segment_arrivals(activity, segments):
    """Arrival time (or None) of one population in each segment, from its recorded samples."""
    results = []
    for start, end in segments:
        first = int(np.searchsorted(activity.times, start, side="left"))
        stop = int(np.searchsorted(activity.times, end, side="right"))
        if stop - first < 2:
            results.append(None)
            continue
        results.append(wave_arrival(activity.times[first:stop], activity.rows(first, stop))[0])
    return results


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
        _draw_heatmap(heat, figure.add_subplot(grid[0, 2 * column + 1]), activities, run.time,
                      symbol)
        _draw_means(means, activities, segments, symbol)
        mark_switches((heat, means), segments)
        heat.set_title(f"{wave} ({symbol})", fontweight="bold")
        heat.tick_params(labelbottom=False)
        means.set_xlabel("time")
    figure.suptitle(run_title(run))
    return figure


def _draw_heatmap(axes, colorbar_axes, activities, time, symbol):
    blocks = [activity for activity in activities if activity.size > 0]
    if not blocks:
        axes.text(0.5, 0.5, "no per-neuron records (norms only)", ha="center", va="center",
                  transform=axes.transAxes)
        colorbar_axes.set_axis_off()
        return
    t_lo, t_hi = time[0], time[-1]
    columns = min(MAX_COLUMNS, len(time))
    # The time shown at the centre of each image column.
    centres = t_lo + (np.arange(columns) + 0.5) * (t_hi - t_lo) / columns
    image = np.vstack([activity.held(centres).T for activity in blocks])
    finite = np.abs(image[np.isfinite(image)])
    limit = finite.max() if finite.size and finite.max() > 0 else 1.0
    shown = axes.imshow(image, aspect="auto", interpolation="nearest", cmap="RdBu_r",
                        vmin=-limit, vmax=limit, extent=(t_lo, t_hi, len(image), 0))
    edges = np.cumsum([0] + [activity.size for activity in blocks])
    axes.hlines(edges[1:-1], t_lo, t_hi, colors="k", linewidth=0.6)
    axes.set_yticks((edges[:-1] + edges[1:]) / 2, [activity.name for activity in blocks])
    axes.set_ylabel("neurons by population")
    axes.figure.colorbar(shown, cax=colorbar_axes, label=symbol)


def _draw_means(axes, activities, segments, symbol):
    marked = segments[:MAX_MARKED_SEGMENTS]
    for activity in activities:
        mean = activity.mean()
        label = f"{activity.name} (norm)" if activity.is_norm else activity.name
        (line,) = axes.plot(activity.times, mean, linewidth=1.2, label=label)
        arrivals = [t for t in segment_arrivals(activity, marked) if t is not None]
        axes.plot(arrivals, np.interp(arrivals, activity.times, mean), linestyle="none",
                  marker="|", markersize=14, markeredgewidth=2, color=line.get_color())
    note = f" (first {MAX_MARKED_SEGMENTS} of {len(segments)} segments)" \
        if len(segments) > MAX_MARKED_SEGMENTS else ""
    axes.set_title(f"mean {symbol} per population, | = wave arrival (half of ‖Δ{symbol}‖){note}",
                   fontsize="medium")
    axes.set_ylabel(f"mean {symbol} (or ‖{symbol}‖)")
    axes.legend(loc="best", fontsize="small")


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
