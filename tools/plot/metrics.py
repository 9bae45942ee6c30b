"""Learning and relaxation metrics over time (/metrics): loss, alignment of the weight flow with
the exact gradient, accuracy, relaxation residuals, and for training runs the learning curve
(/metrics/epoch: training and held-out accuracy and loss after every epoch, the initial
network's at t0).

Subcommand: `metrics` (one panel per kind of metric the run file holds). The target relaxation
of model dtp (/metrics/relaxation, /metrics/alignment/backprop, ...) is drawn by `relaxation`. The panels are learnflow.plot's (python/learnflow/plot.py).
"""

from matplotlib.figure import Figure

import learnflow_path  # noqa: F401 (python/ on sys.path)
from errors import PlotError
from figures import add_figure_command, mark_switches, run_title
from learnflow.plot import (CURVE_PANELS, PANELS, TRAINING_TITLES, Panel,  # noqa: F401
                            curve_series, draw_panel, metric_panel)

WIDTH = 10.0  # inches
PANEL_HEIGHT = 2.2  # inches per panel
TITLE_HEIGHT = 0.6  # inches
DPI = 100

# The learning curve's series of a quantity (learnflow.plot.curve_series).
learning_curve = curve_series


def draw_metrics(run, args):
    """Figure: one panel per entry of PANELS with data, over time; PlotError if there are none."""
    shown = []
    for panel in CURVE_PANELS:
        series = curve_series(run, panel.path)
        if series:
            shown.append((panel, series, True))
    for panel in PANELS:
        # Series without a single finite value (e.g. no target in the whole run) are left out.
        found = metric_panel(run, panel.path)
        if found:
            shown.append((*found, False))
    if not shown:
        raise PlotError(f"{run.path}: no metrics to plot (/metrics/loss, /metrics/alignment/..., "
                        "/metrics/accuracy, /metrics/residual/...)")
    figure = Figure(figsize=(WIDTH, TITLE_HEIGHT + PANEL_HEIGHT * len(shown)), dpi=DPI,
                    layout="constrained")
    axes_list = figure.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (panel, series, curve) in zip(axes_list, shown):
        draw_panel(axes, panel, series, curve)
    if not run.is_training:  # a training run switches at every minibatch
        mark_switches(axes_list, run.segments)
    axes_list[-1].set_xlabel("time")
    figure.suptitle(run_title(run))
    return figure


def register(subcommands):
    add_figure_command(subcommands, "metrics", draw_metrics,
                       "loss, gradient alignment, accuracy and relaxation residuals over time")
