"""Energies of an energy-based model (eqprop) over time: E (the network's energy) and
F = E + βC (the total energy the state relaxes on), the cost C, and the alignment of the EP
update with the exact gradient, with the nudged phases shaded. Both E and F fall during a free
phase (F = E there); at the start of a nudged phase F jumps by βC and then falls, while E rises
as the outputs move toward the target.

Subcommand: `energy RUN.h5 [--from T0] [--to T1]` (a time window: the relaxations of the first
presentations are invisible over a whole run).
"""

import numpy as np
from matplotlib.figure import Figure

from errors import PlotError
from figures import add_figure_command, finite_series, mark_switches, reference_line, run_title, shade_intervals

WIDTH = 10.0  # inches
PANEL_HEIGHT = 2.4  # inches per panel
TITLE_HEIGHT = 0.6  # inches
DPI = 100


def _window(series, start, stop):
    """The part of {name: (times, values)} with start <= t <= stop."""
    cut = {}
    for name, (times, values) in series.items():
        keep = (times >= start) & (times <= stop)
        cut[name] = (times[keep], values[keep])
    return finite_series(cut)


def draw_energy(run, args):
    if not run.has_metrics("energy") or not run.has_metrics("total_energy"):
        raise PlotError(f"{run.path}: no /metrics/energy and /metrics/total_energy (an eqprop run "
                        "writes them)")
    times = run.time
    start = args.start if args.start is not None else float(times[0])
    stop = args.stop if args.stop is not None else float(times[-1])
    if not stop > start:
        raise PlotError(f"--from {start} --to {stop}: an empty time window")
    energies = _window({"E (energy)": run.metrics("energy")["energy"],
                        "F = E + βC (total energy)": run.metrics("total_energy")["total_energy"]},
                       start, stop)
    panels = [("energy E and total energy F (shaded: nudged phases)", "energy", energies, None)]
    cost = _window(run.metrics("loss"), start, stop)
    if cost:
        panels.append(("cost C = ½‖y − u_out‖²", "C", cost, None))
    alignment = _window(run.metrics("alignment/cosine"), start, stop)
    if alignment:
        panels.append(("cosine of the EP update (if the nudged phase ended now) with −dC/dW at the "
                       "free fixed point (recurrent backprop)", "cosine", alignment, 1.0))
    figure = Figure(figsize=(WIDTH, TITLE_HEIGHT + PANEL_HEIGHT * len(panels)), dpi=DPI,
                    layout="constrained")
    axes_list = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (title, ylabel, series, reference) in zip(axes_list, panels):
        for name, (t, values) in series.items():
            axes.plot(t, values, linewidth=1.2, label=name)
        if reference is not None:
            reference_line(axes, reference)
            axes.set_ylim(-1.05, 1.05)
        axes.set_title(title, fontsize="medium")
        axes.set_ylabel(ylabel)
        axes.margins(x=0)
        if len(series) > 1 or ylabel == "energy":
            axes.legend(loc="best", fontsize="small")
    axes_list[-1].set_xlim(start, stop)
    nudged = [(max(a, start), min(b, stop)) for a, b in run.phase_intervals("nudged")
              if b > start and a < stop]
    shade_intervals(axes_list, nudged)
    mark_switches(axes_list, [(start, start)] + [s for s in run.segments if start < s[0] < stop])
    axes_list[-1].set_xlabel("time")
    figure.suptitle(run_title(run))
    return figure


def register(subcommands):
    parser = add_figure_command(subcommands, "energy", draw_energy,
                                "eqprop: energy E and total energy F = E + βC during free and "
                                "nudged phases, cost, alignment")
    parser.add_argument("--from", dest="start", type=float, metavar="T0", help="window start")
    parser.add_argument("--to", dest="stop", type=float, metavar="T1", help="window end")
