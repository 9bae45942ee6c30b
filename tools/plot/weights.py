"""Weight trajectories: every recorded weight W/<projection> (and bias b/<population>) over time,
with the velocities Wdot, bdot of massive weights (model costate with m_w > 0) in a panel of their
own, and optionally a second run's weights dashed on the same axes: the weights with and without
inertia (examples/inertia_xor.toml against examples/xor_costate.toml).

Subcommand: `weights RUN.h5 [--compare OTHER.h5] [--t-max T]`.
"""

import numpy as np
from matplotlib.figure import Figure

from errors import PlotError
from figures import add_figure_command, run_title
from runfile import RunFile

WIDTH = 10.0  # inches
PANEL_HEIGHT = 2.6  # inches per panel
TITLE_HEIGHT = 0.7  # inches
DPI = 100
MAX_LINES = 64  # entries drawn per block; larger blocks show their first MAX_LINES entries

PANELS = (
    ("W", "weights W", "w"),
    ("b", "biases b", "b"),
    ("Wdot", "weight velocities Ẇ (m_W > 0)", "ẇ"),
    ("bdot", "bias velocities ḃ (m_W > 0)", "ḃ"),
)


def _series(block, t_max):
    """(times, [k, m] values) of a recorded block up to t_max (None: all)."""
    stop = block.length if t_max is None else int(np.searchsorted(block.times, t_max, side="right"))
    return block.times[:stop], block.rows(0, stop)[:, :MAX_LINES]


def draw_weights(run, args):
    """Figure: one panel per kind of parameter block the run recorded (not as norms)."""
    other = RunFile(args.compare) if args.compare else None
    try:
        shown = []
        for kind, title, ylabel in PANELS:
            blocks = [b for b in run.blocks(kind) if not b.is_norm]
            if blocks:
                compared = {b.name: b for b in other.blocks(kind)} if other else {}
                shown.append((kind, title, ylabel, blocks, compared))
        if not shown:
            raise PlotError(f"{run.path}: no weights recorded in full (/state/W/..., /state/b/...; "
                            "record them with output.record = { W = \"all\", b = \"all\" })")
        figure = Figure(figsize=(WIDTH, TITLE_HEIGHT + PANEL_HEIGHT * len(shown)), dpi=DPI,
                        layout="constrained")
        axes_list = figure.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
        colors = [f"C{i}" for i in range(10)]
        for axes, (kind, title, ylabel, blocks, compared) in zip(axes_list, shown):
            line = 0
            for block in blocks:
                times, values = _series(block, args.t_max)
                twin = compared.get(block.name)
                twin_series = _series(twin, args.t_max) if twin is not None and not twin.is_norm else None
                for j in range(values.shape[1]):
                    color = colors[line % len(colors)]
                    axes.plot(times, values[:, j], color=color, linewidth=1.1,
                              label=f"{block.name}[{j}]" if line < 12 else None)
                    if twin_series is not None and j < twin_series[1].shape[1]:
                        axes.plot(twin_series[0], twin_series[1][:, j], color=color,
                                  linewidth=1.0, linestyle="--")
                    line += 1
            axes.set_title(title + (f" (dashed: {other.path})" if compared else ""),
                           fontsize="medium")
            axes.set_ylabel(ylabel)
            axes.margins(x=0)
            axes.legend(loc="best", fontsize="x-small", ncol=4)
        axes_list[-1].set_xlabel("time")
        figure.suptitle(run_title(run))
        return figure
    finally:
        if other is not None:
            other.close()


def register(subcommands):
    parser = add_figure_command(subcommands, "weights", draw_weights,
                                "weights, biases and their velocities over time, optionally "
                                "against a second run's (dashed)")
    parser.add_argument("--compare", metavar="OTHER.h5",
                        help="a second run file whose weights are drawn dashed (e.g. without inertia)")
    parser.add_argument("--t-max", type=float, default=None, metavar="T",
                        help="draw up to time T (default: the whole run)")
