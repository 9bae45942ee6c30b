"""A metric of a parameter sweep against its swept keys, from the sweep's index
(DIR/index.h5, written by `learnflow sweep`; read by python/learnflow/sweep.py).

Subcommand: `sweep DIR --metric M --x KEY [--y KEY2 | --lines KEY2]`:
- with --x alone: the metric against KEY, its mean over the points that share a value of KEY
  (the other keys, e.g. network.seed: the spread) drawn as a line, with a band from the lowest
  to the highest value and the points themselves; with --lines KEY2 one such line per value of
  KEY2;
- with --y KEY2: a heatmap of the metric's mean over the points at each (KEY, KEY2).
Points that failed (status ≠ 0) are left out, and counted in the title.
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from errors import PlotError
from figures import output_path

# python/learnflow/sweep.py by its path: no install or PYTHONPATH needed.
_SPEC = importlib.util.spec_from_file_location(
    "learnflow_sweep", Path(__file__).resolve().parents[2] / "python" / "learnflow" / "sweep.py")
sweep_index = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(sweep_index)


def numeric_column(index, key, role):
    if key not in index:
        names = ", ".join(k for k in index if k not in ("point", "outcome", "message", "host"))
        raise PlotError(f"{role} '{key}': not a column of the sweep index (columns: {names})")
    values = index[key]
    if values.dtype == object:
        raise PlotError(f"{role} '{key}': its values are not numbers")
    return values.astype(float)


def draw_sweep(index, args):
    metric = numeric_column(index, args.metric, "--metric")
    x = numeric_column(index, args.x, "--x")
    ok = index["status"] == 0
    failed = int(np.count_nonzero(~ok))
    note = f" ({failed} failed point(s) left out)" if failed else ""
    figure = Figure(figsize=(7.0, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    if args.y:
        y = numeric_column(index, args.y, "--y")
        xs, ys = np.unique(x[ok]), np.unique(y[ok])
        grid = np.full((len(ys), len(xs)), np.nan)
        for j, yv in enumerate(ys):
            for i, xv in enumerate(xs):
                values = metric[ok & (x == xv) & (y == yv)]
                values = values[np.isfinite(values)]
                if values.size:
                    grid[j, i] = values.mean()
        image = axes.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        axes.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
        axes.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
        for j in range(len(ys)):
            for i in range(len(xs)):
                if np.isfinite(grid[j, i]):
                    axes.text(i, j, f"{grid[j, i]:.3g}", ha="center", va="center", color="w",
                              fontsize=8)
        figure.colorbar(image, ax=axes, label=f"{args.metric} (mean over the other keys)")
        axes.set_xlabel(args.x)
        axes.set_ylabel(args.y)
        axes.set_title(f"{args.metric}{note}", fontsize=10)
        return figure
    groups = [(None, ok)]
    if args.lines:
        line_key = numeric_column(index, args.lines, "--lines")
        groups = [(v, ok & (line_key == v)) for v in np.unique(line_key[ok])]
    for value, rows in groups:
        xs = np.unique(x[rows])
        mean, low, high = [], [], []
        for xv in xs:
            values = metric[rows & (x == xv)]
            values = values[np.isfinite(values)]
            mean.append(values.mean() if values.size else np.nan)
            low.append(values.min() if values.size else np.nan)
            high.append(values.max() if values.size else np.nan)
        label = "mean" if value is None else f"{args.lines} = {value:g}"
        (line,) = axes.plot(xs, mean, marker="o", label=label)
        axes.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        axes.plot(x[rows], metric[rows], linestyle="none", marker=".", color=line.get_color(),
                  alpha=0.5)
    if args.log_x:
        axes.set_xscale("log")
    axes.set_xlabel(args.x)
    axes.set_ylabel(args.metric)
    axes.set_title(f"{args.metric}: mean and range over the other swept keys{note}", fontsize=10)
    axes.legend(fontsize=8)
    return figure


def register(subcommands):
    description = ("a metric of a sweep against one swept key (mean and range over the others) "
                   "or two (heatmap), from DIR/index.h5")
    parser = subcommands.add_parser("sweep", help=description, description=description)
    parser.add_argument("dir", metavar="DIR", help="sweep directory (learnflow sweep -o DIR)")
    parser.add_argument("--metric", required=True, help="a column of the index, e.g. final.accuracy")
    parser.add_argument("--x", required=True, metavar="KEY", help="swept key on the x axis")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--y", metavar="KEY2", help="second swept key: a heatmap")
    group.add_argument("--lines", metavar="KEY2", help="one line per value of this swept key")
    parser.add_argument("--log-x", action="store_true", help="logarithmic x axis")
    parser.add_argument("-o", "--output", type=output_path, metavar="OUT.png",
                        help="figure file, .png or .pdf (default: DIR/sweep_METRIC.png)")

    def save(args):
        try:
            index = sweep_index.read_index(args.dir)
        except sweep_index.SweepError as error:
            raise PlotError(str(error)) from error
        output = args.output or os.path.join(args.dir, f"sweep_{args.metric}.png")
        draw_sweep(index, args).savefig(output)
        print(output)

    parser.set_defaults(func=save)
