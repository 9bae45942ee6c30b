"""Learning and relaxation metrics over time (/metrics): loss, alignment of the weight flow with
the exact gradient, accuracy, relaxation residuals.

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


def draw_metrics(run, args):
    """Figure: one panel per entry of PANELS with data, over time; PlotError if there are none."""
    shown = []
    for panel in PANELS:
        # Series without a single finite value (e.g. no target in the whole run) are left out.
        series = finite_series(run.metrics(panel.path))
        if series:
            shown.append((panel, series))
    if not shown:
        raise PlotError(f"{run.path}: no metrics to plot (/metrics/loss, /metrics/alignment/..., "
                        "/metrics/accuracy, /metrics/residual/...)")
    figure = Figure(figsize=(WIDTH, TITLE_HEIGHT + PANEL_HEIGHT * len(shown)), dpi=DPI,
                    layout="constrained")
    axes_list = figure.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (panel, series) in zip(axes_list, shown):
        _draw_panel(axes, panel, series)
    mark_switches(axes_list, run.segments)
    axes_list[-1].set_xlabel("time")
    figure.suptitle(run_title(run))
    return figure


def _draw_panel(axes, panel, series):
    for name, (times, values) in series.items():
        axes.plot(times, values, linewidth=1.2, drawstyle=panel.drawstyle, label=name)
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
