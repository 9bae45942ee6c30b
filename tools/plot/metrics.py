"""Learning and relaxation metrics over time (/metrics): loss, alignment of the weight flow with
the exact gradient, accuracy, relaxation residuals, and for training runs the learning curve
(/metrics/epoch: training and held-out accuracy and loss after every epoch, the initial
network's at t0).

Subcommand: `metrics` (one panel per kind of metric the run file holds). The target relaxation
of model dtp (/metrics/relaxation, /metrics/alignment/backprop, ...) is drawn by `relaxation`.
"""

from typing import NamedTuple, Optional, Tuple

from matplotlib.figure import Figure

from errors import PlotError
from figures import (add_figure_command, finite_series, log_scale, mark_switches, reference_line,
                     run_title)

WIDTH = 10.0  # inches
PANEL_HEIGHT = 2.2  # inches per panel
TITLE_HEIGHT = 0.6  # inches
DPI = 100


class Panel(NamedTuple):
    path: str  # under /metrics: a dataset, or a group drawn as one line per member
    title: str
    ylabel: str
    log: bool = False  # log scale where the values allow it (see figures.log_scale)
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


def learning_curve(run, quantity):
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


def draw_metrics(run, args):
    """Figure: one panel per entry of PANELS with data, over time; PlotError if there are none."""
    shown = []
    for panel in CURVE_PANELS:
        series = learning_curve(run, panel.path)
        if series:
            shown.append((panel._replace(drawstyle="default"), series))
    for panel in PANELS:
        # Series without a single finite value (e.g. no target in the whole run) are left out.
        series = finite_series(run.metrics(panel.path))
        if series:
            if run.is_training and panel.path in TRAINING_TITLES:
                panel = panel._replace(title=TRAINING_TITLES[panel.path])
            shown.append((panel, series))
    if not shown:
        raise PlotError(f"{run.path}: no metrics to plot (/metrics/loss, /metrics/alignment/..., "
                        "/metrics/accuracy, /metrics/residual/...)")
    figure = Figure(figsize=(WIDTH, TITLE_HEIGHT + PANEL_HEIGHT * len(shown)), dpi=DPI,
                    layout="constrained")
    axes_list = figure.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (panel, series) in zip(axes_list, shown):
        _draw_panel(axes, panel, series)
    if not run.is_training:  # a training run switches at every minibatch
        mark_switches(axes_list, run.segments)
    axes_list[-1].set_xlabel("time")
    figure.suptitle(run_title(run))
    return figure


def _draw_panel(axes, panel, series):
    for name, (times, values) in series.items():
        marker = "o" if panel in CURVE_PANELS and len(times) <= 60 else None
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


def register(subcommands):
    add_figure_command(subcommands, "metrics", draw_metrics,
                       "loss, gradient alignment, accuracy and relaxation residuals over time")
