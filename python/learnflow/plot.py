"""Plots of a learnflow run on any matplotlib axes (tools/plot composes its figures from them).

    import matplotlib.pyplot as plt
    import learnflow
    run = learnflow.open("out/forward_wave.h5")
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True)
    learnflow.plot.heatmap(run, ax=top)              # space-time heatmap of x
    learnflow.plot.waves(run, ax=bottom)             # mean x per population, | = wave arrival
    learnflow.plot.metrics(run, "residual", ax=...)  # a metric (or a group of them) over time
    learnflow.plot.relaxation(run, ax=...)           # dtp: residuals with fitted/predicted decays

`run` is a learnflow.Run (also one kept in memory), a path, or a plotfile.RunFile; `ax`
defaults to the current axes of pyplot. Each function returns the axes. Nothing to draw:
PlotError. The wave arrival definition is sim/waves.hpp's (and /waves in the file).
"""

import contextlib
import math
from typing import NamedTuple, Optional, Tuple

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D

from .errors import PlotError
from .plotfile import RunFile, natural_key

__all__ = ["waves", "heatmap", "metrics", "learning_curve", "relaxation", "PlotError"]

MAX_SWITCH_LINES = 50  # more input switches than this are not marked: they would hide the data
MAX_COLUMNS = 2000  # time resolution of the heatmap
MAX_MARKED_SEGMENTS = 20
FLAT_TOLERANCE = 1e-9  # relative change below which a segment has no arrival
# The recorded blocks whose waves are analysed: kind (as in /state/<kind>) -> (symbol, wave).
WAVE_KINDS = {"x": ("x", "forward wave"), "lambda": ("λ", "backward wave")}
DEFAULT_PHASES = 6  # target phases whose fitted and predicted decays are drawn
FIT_POINTS = 20  # points per drawn decay: exact on a linear scale as well
# Line style of the decay drawn at each rate attribute of /metrics/relaxation/residual/<layer>.
RATE_STYLES = {"fitted_rate": "--", "predicted_rate": ":"}


@contextlib.contextmanager
def _opened(run):
    """A RunFile of run (a path, a learnflow.Run or a RunFile), closed at the end if opened here."""
    if isinstance(run, RunFile):
        yield run
        return
    plot_file = RunFile(run)
    try:
        yield plot_file
    finally:
        plot_file.close()


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt
        return plt.gca()
    return ax


# -- shared drawing helpers --------------------------------------------------------------------

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


def legend(axes, handles, columns=None):
    """Legend of the handles, in one row unless columns is given."""
    axes.legend(handles=handles, loc="best", fontsize="small", ncols=columns or len(handles))


def style_handles(styles):
    """Grey legend entries, one per (line style, label)."""
    return [Line2D([], [], color="0.3", linestyle=style, label=label) for style, label in styles]


# -- waves ---------------------------------------------------------------------------------------

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


def _recorded(run, kind):
    if kind not in WAVE_KINDS:
        raise PlotError(f"no wave of kind '{kind}' (choose one of: {', '.join(WAVE_KINDS)})")
    activities = run.activities(kind)
    if not activities:
        raise PlotError(f"{run.path}: no recorded {kind} (/state/{kind}/<population>)")
    return activities


def draw_heatmap(axes, colorbar_axes, activities, time, symbol):
    """The space-time heatmap of the per-neuron records of activities (rows: neurons by
    population), with a colour bar on colorbar_axes (None: beside axes)."""
    blocks = [activity for activity in activities if activity.size > 0]
    if not blocks:
        axes.text(0.5, 0.5, "no per-neuron records (norms only)", ha="center", va="center",
                  transform=axes.transAxes)
        if colorbar_axes is not None:
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
    if colorbar_axes is not None:
        axes.figure.colorbar(shown, cax=colorbar_axes, label=symbol)
    else:
        axes.figure.colorbar(shown, ax=axes, label=symbol)


def draw_means(axes, activities, segments, symbol):
    """The mean of each population over time (its norm for a norm record), with the wave
    arrival in each of the first MAX_MARKED_SEGMENTS segments marked |."""
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


def waves(run, ax=None, kind="x"):
    """The wave of kind "x" (forward) or "lambda" (backward): the mean of every recorded
    population over time with its arrival in each input segment marked |, and the input
    switches dotted."""
    axes = _axes(ax)
    with _opened(run) as plot_file:
        activities = _recorded(plot_file, kind)
        segments = plot_file.segments
        draw_means(axes, activities, segments, WAVE_KINDS[kind][0])
        mark_switches([axes], segments)
    return axes


def heatmap(run, ax=None, kind="x", cax=None):
    """The space-time heatmap of the wave of kind "x" or "lambda": one row per recorded neuron,
    populations in network order; the colour bar on cax (default: beside ax)."""
    axes = _axes(ax)
    with _opened(run) as plot_file:
        activities = _recorded(plot_file, kind)
        if len(plot_file.time) < 2:
            raise PlotError(f"{plot_file.path}: fewer than 2 samples recorded")
        draw_heatmap(axes, cax, activities, plot_file.time, WAVE_KINDS[kind][0])
        mark_switches([axes], plot_file.segments)
    return axes


# -- metrics -------------------------------------------------------------------------------------

class Panel(NamedTuple):
    path: str  # under /metrics: a dataset, or a group drawn as one line per member
    title: str
    ylabel: str
    log: bool = False  # log scale where the values allow it (see log_scale)
    limits: Optional[Tuple[float, float]] = None
    reference: Optional[float] = None  # y of a dashed reference line
    drawstyle: str = "default"


PANELS = (
    Panel("loss", "loss (gaps: no target)", "V", log=True),
    Panel("alignment/cosine", "alignment of the weight flow with the exact gradient −∂V/∂W",
          "cosine", limits=(-1.05, 1.05), reference=1.0),
    Panel("alignment/norm_ratio", "norm ratio, 1 at the fixed point", "‖γ Ẇ‖ / ‖∂V/∂W‖",
          log=True, reference=1.0),
    Panel("accuracy", "accuracy of the settled network", "fraction right",
          limits=(-0.05, 1.05), drawstyle="steps-post"),
    Panel("residual", "relaxation residuals", "‖d(kind)/dt‖₂", log=True),
)

# Training runs: the per-sample metrics describe the current minibatch at the end of its window.
TRAINING_TITLES = {
    "loss": "loss of the current minibatch (its mean over the examples)",
    "accuracy": "accuracy of the current minibatch, outputs as they are",
}
CURVE_PANELS = (
    Panel("accuracy", "learning curve: accuracy of the settled network after each epoch",
          "fraction right", limits=(-0.05, 1.05)),
    Panel("loss", "learning curve: mean loss of the settled network after each epoch", "V",
          log=True),
)


def curve_series(run, quantity):
    """{label: (times, values)} of train_<quantity> and test_<quantity> (finite ones only)."""
    curve = run.evaluations()
    if not curve:
        return {}
    series = {}
    for split, label in (("train", "training set"), ("test", "held-out set")):
        values = curve.get(f"{split}_{quantity}")
        if values is not None:
            series[label] = (curve["time"], values)
    return finite_series(series)


def draw_panel(axes, panel, series, curve=False):
    """The series {name: (times, values)} of one panel (a curve panel: with markers when few)."""
    for name, (times, values) in series.items():
        marker = "o" if curve and len(times) <= 60 else None
        axes.plot(times, values, linewidth=1.2, drawstyle=panel.drawstyle, label=name,
                  marker=marker, markersize=3)
    if panel.log:
        log_scale(axes, [values for _, values in series.values()])
    if panel.limits:
        axes.set_ylim(*panel.limits)
    if panel.reference is not None:
        reference_line(axes, panel.reference)
    axes.margins(x=0)
    axes.set_title(panel.title, fontsize="medium")
    axes.set_ylabel(panel.ylabel)
    if list(series) != [panel.path]:  # a group: name its members
        axes.legend(loc="best", fontsize="small")


def metric_panel(run, path):
    """(panel, series) of /metrics/<path> with its title, scale and limits (those of PANELS for
    the known ones); None when it has no finite value."""
    series = finite_series(run.metrics(path))
    if not series:
        return None
    panel = next((p for p in PANELS if p.path == path), None) or \
        Panel(path, path, path.rsplit("/", 1)[-1])
    if run.is_training and path in TRAINING_TITLES:
        panel = panel._replace(title=TRAINING_TITLES[path])
    return panel, series


def metrics(run, name="loss", ax=None):
    """/metrics/<name> over time: a series ("loss"), or a group with one line per member
    ("residual", "alignment/cosine"); the input switches dotted (not for a training run, which
    switches at every minibatch)."""
    axes = _axes(ax)
    with _opened(run) as plot_file:
        shown = metric_panel(plot_file, name)
        if shown is None:
            raise PlotError(f"{plot_file.path}: no finite values in /metrics/{name}")
        draw_panel(axes, *shown)
        if not plot_file.is_training:
            mark_switches([axes], plot_file.segments)
    return axes


def learning_curve(run, quantity="accuracy", ax=None):
    """A training run's learning curve: train_ and test_<quantity> ("accuracy" or "loss") of
    the settled network after each evaluation, the initial network's at t0."""
    axes = _axes(ax)
    with _opened(run) as plot_file:
        series = curve_series(plot_file, quantity)
        if not series:
            raise PlotError(f"{plot_file.path}: no learning curve of {quantity} "
                            "(/metrics/epoch: a training run)")
        panel = next(p for p in CURVE_PANELS if p.path == quantity)
        draw_panel(axes, panel, series, curve=True)
    return axes


# -- relaxation (dtp) ----------------------------------------------------------------------------

def decay_segments(times, values, intervals, rates):
    """[[(t, r)] * FIT_POINTS] per interval with a finite rate: the exponential decay at that
    rate over the later half of the interval, anchored at the last positive finite sample in
    the interval, r(t) = r(t_a) e^{−rate (t − t_a)}."""
    segments = []
    for (start, end), rate in zip(intervals, rates):
        inside = np.flatnonzero((times >= start) & (times <= end) & np.isfinite(values)
                                & (values > 0))
        middle = 0.5 * (start + end)
        if not np.isfinite(rate) or inside.size == 0 or times[inside[-1]] <= middle:
            continue
        anchor_t, anchor_r = times[inside[-1]], values[inside[-1]]
        t = np.linspace(middle, anchor_t, FIT_POINTS)
        segments.append(np.column_stack((t, anchor_r * np.exp(-rate * (t - anchor_t)))))
    return segments


def relaxation_rates(run):
    """{layer: {attribute: rate per target phase}} of the RATE_STYLES attributes of the layers
    with a finite rate, all arrays of one length (NaN-padded)."""
    found = {attribute: run.metric_attribute("relaxation/residual", attribute)
             for attribute in RATE_STYLES}
    count = max((len(values) for by_layer in found.values() for values in by_layer.values()),
                default=0)

    def padded(values):
        return np.pad(values, (0, count - len(values)), constant_values=np.nan)

    layers = sorted({name for by_layer in found.values() for name in by_layer}, key=natural_key)
    rates = {name: {attribute: padded(by_layer.get(name, np.array([])))
                    for attribute, by_layer in found.items()} for name in layers}
    return {name: by_attribute for name, by_attribute in rates.items()
            if any(np.isfinite(values).any() for values in by_attribute.values())}


def draw_residuals(axes, residuals, rates, phases, shown, colors):
    """The residual of every layer, light, with the decays at its fitted (dashed) and predicted
    (dotted) rate over the later half of each of the first `shown` target phases."""
    count = len(phases) or max((len(values) for by_attribute in rates.values()
                                for values in by_attribute.values()), default=0)
    handles = []
    for name, (times, values) in residuals.items():
        # Light, so that the decays drawn over it stand out.
        (line,) = axes.plot(times, values, color=colors.get(name), linewidth=1.2, alpha=0.5,
                            label=name)
        handles.append(line)
        for attribute, style in RATE_STYLES.items():
            segments = decay_segments(times, values, phases[:shown],
                                      rates.get(name, {}).get(attribute, []))
            decays = LineCollection(segments, colors=line.get_color(), linestyles=style,
                                    linewidths=2.0)
            decays.set_gid(f"{attribute} {name}")
            axes.add_collection(decays, autolim=False)  # the data alone set the y limits
    log_scale(axes, [values for _, values in residuals.values()])
    if phases:
        note = f"shaded: the {count} target phases"
        if shown > 0:
            fits = f"the first {shown}" if shown < len(phases) else "each"
            note += (f"; in {fits}, the decay at the rate fitted (dashed) and predicted (dotted) "
                     "over its later half")
    else:
        note = "target phases unknown (no [input] phases in the config)"
    axes.set_title(r"relaxation residuals $\Vert f_l(\tau_{l-1}) - \tau_l\Vert$ per target "
                   rf"$\tau_{{l-1}}$" f"\n{note}", fontsize="medium")
    axes.set_ylabel("residual")
    legend(axes, handles + style_handles((("--", "fitted rate"), (":", "predicted rate"))))


def relaxation(run, ax=None, phases=DEFAULT_PHASES):
    """The target relaxation of model dtp: the residual of every layer on a log scale, the
    target phases shaded, and in the first `phases` of them the decay at the rate fitted to the
    residual (dashed) and the rate the linearisation predicts (dotted)."""
    axes = _axes(ax)
    with _opened(run) as plot_file:
        residuals = finite_series(plot_file.metrics("relaxation/residual"))
        if not residuals:
            raise PlotError(f"{plot_file.path}: no relaxation residuals "
                            "(/metrics/relaxation/residual/...; written by model dtp)")
        intervals = plot_file.phase_intervals("target")
        draw_residuals(axes, residuals, relaxation_rates(plot_file), intervals, phases,
                       name_colors(plot_file.population_names))
        shade_intervals([axes], intervals)
        axes.margins(x=0)
    return axes
