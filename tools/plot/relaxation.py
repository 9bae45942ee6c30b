"""Target relaxation of differential target propagation (model dtp, DESIGN.md §4): how the
targets of each layer converge in each target phase, at which rate compared with the rate the
linearisation predicts, the Lipschitz constant ‖I − J_{g∘f}‖ of the iteration, and the alignment
of the DTP1 update with backprop and Gauss–Newton.

Subcommand: `relaxation` (one panel per kind of data the run file holds). The residual panel is
learnflow.plot.relaxation's (python/learnflow/plot.py).
"""

import argparse

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

import learnflow_path  # noqa: F401 (python/ on sys.path)
from errors import PlotError
from figures import (add_figure_command, finite_series, name_colors, reference_line, run_title,
                     shade_intervals)
from learnflow.plot import (DEFAULT_PHASES, FIT_POINTS, RATE_STYLES, decay_segments,  # noqa: F401
                            draw_residuals, legend, relaxation_rates, style_handles)

# Sizes in inches, binary fractions: any sum of them times DPI is a whole number of pixels.
WIDTH = 12.0
TITLE_HEIGHT = 0.5
RESIDUAL_HEIGHT = 3.5  # per panel
LIPSCHITZ_HEIGHT = 2.25
ALIGNMENT_HEIGHT = 2.25
RATES_HEIGHT = 3.0  # the row of the rate panels: per target phase, and fitted vs predicted
RATES_WIDTH_RATIOS = (3, 1)
DPI = 100
# /metrics/alignment/<kind>: (line style, what the DTP1 update is compared with).
ALIGNMENTS = {"backprop": ("-", "backprop gradient"),
              "gauss_newton": ("--", "Gauss–Newton direction")}


def draw_relaxation(run, args):
    """Figure, top to bottom, of the panels with data: residuals per layer with their decays
    per target phase, Lipschitz constants, cosines of the DTP1 update; then the rates fitted to
    the residuals against the predicted ones. PlotError without /metrics/relaxation."""
    if not run.has_metrics("relaxation"):
        raise PlotError(f"{run.path}: no relaxation metrics (/metrics/relaxation/...; written by "
                        "model dtp)")
    residuals = finite_series(run.metrics("relaxation/residual"))
    rates = relaxation_rates(run)
    lipschitz = finite_series(run.metrics("relaxation/lipschitz"))
    alignment = {kind: finite_series(run.metrics(f"alignment/{kind}")) for kind in ALIGNMENTS}
    phases = run.phase_intervals("target")
    colors = name_colors(run.population_names)

    # (height, draw(axes)) of the panels over time.
    panels = []
    if residuals:
        panels.append((RESIDUAL_HEIGHT, lambda axes: draw_residuals(
            axes, residuals, rates, phases, args.phases, colors)))
    if lipschitz:
        panels.append((LIPSCHITZ_HEIGHT, lambda axes: _draw_lipschitz(axes, lipschitz, colors)))
    if any(alignment.values()):
        panels.append((ALIGNMENT_HEIGHT, lambda axes: _draw_alignment(axes, alignment, colors)))
    heights = [height for height, _ in panels] + ([RATES_HEIGHT] if rates else [])
    if not heights:
        raise PlotError(f"{run.path}: no finite relaxation metrics to plot")

    figure = Figure(figsize=(WIDTH, TITLE_HEIGHT + sum(heights)), dpi=DPI, layout="constrained")
    grid = figure.add_gridspec(len(heights), 2, height_ratios=heights,
                               width_ratios=RATES_WIDTH_RATIOS)
    time_axes = []
    for row, (_, draw) in enumerate(panels):
        axes = figure.add_subplot(grid[row, :], sharex=time_axes[0] if time_axes else None)
        draw(axes)
        axes.margins(x=0)
        time_axes.append(axes)
    if time_axes:
        shade_intervals(time_axes, phases)
        time_axes[-1].set_xlabel("time")
    if rates:
        _draw_rates(figure.add_subplot(grid[-1, 0]), rates, colors)
        _draw_rate_agreement(figure.add_subplot(grid[-1, 1]), rates, colors)
    figure.suptitle(run_title(run))
    return figure


def _draw_lipschitz(axes, lipschitz, colors):
    lines = [axes.plot(times, values, color=colors.get(name), linewidth=1.2, label=name)[0]
             for name, (times, values) in lipschitz.items()]
    reference_line(axes, 1.0)
    axes.set_ylim(0.0, max(1.1, axes.get_ylim()[1]))
    axes.set_title(r"Lipschitz constant $\Vert I - J_{g\circ f}\Vert_2$ per target (the "
                   "relaxation converges below the dashed line at 1)", fontsize="medium")
    axes.set_ylabel(r"$\Vert I - J_{g\circ f}\Vert_2$")
    legend(axes, lines)


def _draw_alignment(axes, alignment, colors):
    handles = {}
    styles = []
    for kind, series in alignment.items():
        style, compared = ALIGNMENTS[kind]
        if series:
            styles.append((style, compared))
        for name, (times, values) in series.items():
            (line,) = axes.plot(times, values, color=colors.get(name), linestyle=style,
                                linewidth=1.2)
            handles.setdefault(name, Line2D([], [], color=line.get_color(), label=name))
    axes.axhline(0.0, color="0.6", linewidth=0.6)
    axes.set_ylim(-1.05, 1.05)
    axes.set_title("cosine of the DTP1 update of each projection with the "
                   + " and ".join(f"{compared} ({'solid' if style == '-' else 'dashed'})"
                                  for style, compared in styles), fontsize="medium")
    axes.set_ylabel("cosine")
    legend(axes, list(handles.values()) + style_handles(styles))


def _draw_rates(axes, rates, colors):
    """Fitted (○) and predicted (×) rate per target phase, layers side by side, joined by a
    thin line: its length is the disagreement."""
    width = 0.6 / len(rates)  # of one layer's column within a phase
    handles = []
    for index, (name, by_attribute) in enumerate(rates.items()):
        fitted, predicted = by_attribute["fitted_rate"], by_attribute["predicted_rate"]
        x = np.arange(len(fitted)) + (index - 0.5 * (len(rates) - 1)) * width
        (line,) = axes.plot(x, fitted, linestyle="none", marker="o", markerfacecolor="none",
                            color=colors.get(name), label=name)
        handles.append(line)
        axes.plot(x, predicted, linestyle="none", marker="x", color=line.get_color())
        axes.vlines(x, fitted, predicted, colors=line.get_color(), linewidth=0.8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("target phase")
    axes.set_ylabel("decay rate")
    axes.set_title("decay rate of the residual per target phase: ○ fitted, × predicted by the "
                   "linearisation", fontsize="medium")
    marker_handles = [Line2D([], [], color="0.3", linestyle="none", marker=marker,
                             markerfacecolor="none", label=label)
                      for marker, label in (("o", "fitted"), ("x", "predicted"))]
    legend(axes, handles + marker_handles, columns=2)


def _draw_rate_agreement(axes, rates, colors):
    """Fitted against predicted rate, one point per layer and target phase, with y = x."""
    pairs = []
    for name, by_attribute in rates.items():
        fitted, predicted = by_attribute["fitted_rate"], by_attribute["predicted_rate"]
        axes.plot(predicted, fitted, linestyle="none", marker="o", markerfacecolor="none",
                  color=colors.get(name))
        pairs.append(np.concatenate((fitted, predicted)))
    values = np.concatenate(pairs)
    values = values[np.isfinite(values)]
    low, high = values.min(), values.max()
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
    axes.plot([low - pad, high + pad], [low - pad, high + pad], color="0.3", linestyle="--",
              linewidth=0.8)
    axes.set_xlim(low - pad, high + pad)
    axes.set_ylim(low - pad, high + pad)
    axes.set_box_aspect(1.0)
    axes.set_xlabel("predicted rate")
    axes.set_ylabel("fitted rate")
    axes.set_title("fitted vs predicted (dashed: equal)", fontsize="medium")


def non_negative_int(value):
    """argparse type of --phases: an integer >= 0."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be >= 0")
    return number


def register(subcommands):
    parser = add_figure_command(
        subcommands, "relaxation", draw_relaxation,
        "DTP target relaxation: residuals per layer with their exponential decay per target "
        "phase (fitted and predicted rate), the rates compared, the Lipschitz constant "
        "‖I − J_g∘f‖ and the cosines of the DTP1 update with backprop and Gauss–Newton")
    parser.add_argument("--phases", type=non_negative_int, default=DEFAULT_PHASES, metavar="N",
                        help="draw the fitted and predicted decays in the first N target phases "
                             f"(default {DEFAULT_PHASES})")
