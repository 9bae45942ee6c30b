"""Graph neural network runs (model gnn): node states drawn on the graph, and the backward wave.

Subcommands:
  `graph RUN.h5 [--times N]`: the graph (/graph/edges) on a spectral layout (the Laplacian's
      second and third eigenvectors, deterministic), at N sample times spread over the run; each
      node coloured by the first component of its state x_v(t) (/state/x/nodes), supervised nodes
      ringed, and in the last panel the labels.
  `graphwave RUN.h5`: the arrival time of the costate at each node against the node's hop
      distance from the supervised nodes along the costate's direction (λ_u is fed by λ_v for
      every edge u → v), with the least-squares front (delay = a + hops / speed). Both are read
      from /waves/graph/lambda_arrival and /waves/graph/hop_distance, which the run measures at
      every sample (sim/waves.hpp: the first time ‖λ_v(t) − λ_v(t0)‖ reaches half of its value at
      the end of the first input segment, linearly interpolated between samples); files written
      before those datasets existed are measured here from /state/lambda/nodes by the same
      definition. A wave moving one hop per τ_λ shows as a rising staircase.
"""

from collections import deque

import numpy as np
from matplotlib.figure import Figure

from errors import PlotError
from figures import add_figure_command, run_title

DPI = 100


def _graph(run):
    f = run._file
    for name in ("graph/edges", "graph/labels", "graph/train_mask"):
        if name not in f:
            raise PlotError(f"{run.path}: no /{name} (a gnn run writes /graph)")
    return f["graph/edges"][()], f["graph/labels"][()], f["graph/train_mask"][()].astype(bool)


def _states(run, kind):
    f = run._file
    name = f"state/{kind}/nodes"
    if name not in f:
        raise PlotError(f"{run.path}: no /{name} (record {kind} = \"all\")")
    data = f[name]
    if data.ndim != 3:
        raise PlotError(f"{run.path}: /{name} is recorded as norms; record {kind} = \"all\"")
    return data[()]


def hop_distance(edges, n, sources):
    """Hops from every node to the nearest node of `sources` along edges u → v (BFS backwards
    from the sources); -1 where none is reachable."""
    into = [[] for _ in range(n)]
    for u, v in edges:
        into[v].append(u)
    hops = np.full(n, -1)
    queue = deque()
    for v in np.flatnonzero(sources):
        hops[v] = 0
        queue.append(v)
    while queue:
        v = queue.popleft()
        for u in into[v]:
            if hops[u] < 0:
                hops[u] = hops[v] + 1
                queue.append(u)
    return hops


def arrival_times(times, changes):
    """Per node (columns of changes [T, N], d_v(t) = ‖λ_v(t) − λ_v(t0)‖): the first time d_v
    reaches half its last value, linearly interpolated between samples (sim/waves.hpp); NaN when
    the change is flat (d_end <= 1e-9)."""
    arrivals = np.full(changes.shape[1], np.nan)
    for v in range(changes.shape[1]):
        half = 0.5 * changes[-1, v]
        if len(times) < 2 or not np.all(np.isfinite(changes[:, v])) or 2 * half <= 1e-9:
            continue
        i = int(np.argmax(changes[:, v] >= half))
        if i == 0:
            arrivals[v] = times[0]
            continue
        a, b = changes[i - 1, v], changes[i, v]
        frac = 1.0 if b == a else min(max((half - a) / (b - a), 0.0), 1.0)
        arrivals[v] = times[i - 1] + frac * (times[i] - times[i - 1])
    return arrivals


def spectral_layout(edges, n):
    adjacency = np.zeros((n, n))
    adjacency[edges[:, 0], edges[:, 1]] = 1.0
    adjacency = np.maximum(adjacency, adjacency.T)
    laplacian = np.diag(adjacency.sum(axis=1)) - adjacency
    _, vectors = np.linalg.eigh(laplacian)
    xy = vectors[:, 1:3] if n > 2 else np.column_stack([np.arange(n), np.zeros(n)])
    return xy * np.sign(xy[np.argmax(np.abs(xy), axis=0), [0, 1]])  # fix the eigenvectors' signs


def draw_graph(run, args):
    edges, labels, train = _graph(run)
    n = len(labels)
    if n > 2000:
        raise PlotError(f"{run.path}: {n} nodes: too many to draw (at most 2000)")
    x = _states(run, "x")
    times = run.time
    picks = np.unique(np.linspace(0, len(times) - 1, max(args.times, 1)).round().astype(int))
    xy = spectral_layout(edges, n)
    panels = len(picks) + 1
    figure = Figure(figsize=(3.2 * panels, 3.6), dpi=DPI, layout="constrained")
    axes_list = figure.subplots(1, panels, squeeze=False)[0]
    limit = max(np.max(np.abs(x[:, :, 0])), 1e-12)
    for axes, k in zip(axes_list, picks):
        for u, v in edges:
            axes.plot(xy[[u, v], 0], xy[[u, v], 1], color="0.8", linewidth=0.5, zorder=1)
        dots = axes.scatter(xy[:, 0], xy[:, 1], c=x[k, :, 0], cmap="coolwarm", vmin=-limit,
                            vmax=limit, s=30, zorder=2, edgecolors=np.where(train, "k", "none"))
        axes.set_title(f"x_v[0] at t = {times[k]:.3g}", fontsize="medium")
        axes.set_xticks([])
        axes.set_yticks([])
    figure.colorbar(dots, ax=axes_list[:-1], shrink=0.8)
    axes = axes_list[-1]
    for u, v in edges:
        axes.plot(xy[[u, v], 0], xy[[u, v], 1], color="0.8", linewidth=0.5, zorder=1)
    axes.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=30, zorder=2,
                 edgecolors=np.where(train, "k", "none"))
    axes.set_title("labels (ringed: supervised)", fontsize="medium")
    axes.set_xticks([])
    axes.set_yticks([])
    figure.suptitle(run_title(run))
    return figure


def _node_waves(run, edges, labels, train):
    """The arrival of λ per node, the hop distances, the segment start and the fitted speed (NaN
    when measured here)."""
    f = run._file
    if "waves/graph/lambda_arrival" in f and "waves/graph/hop_distance" in f:
        arrival = f["waves/graph/lambda_arrival"]
        return (arrival[()], f["waves/graph/hop_distance"][()],
                float(arrival.attrs["segment_start"][0]), float(arrival.attrs["front_speed"][0]))
    lam = _states(run, "lambda")
    times = run.time
    segments = run.segments
    end = segments[0][1] if segments else times[-1]
    keep = times <= end
    changes = np.linalg.norm(lam[keep] - lam[0], axis=2)
    return (arrival_times(times[keep], changes), hop_distance(edges, len(labels), train),
            float(times[0]), np.nan)


def draw_graphwave(run, args):
    edges, labels, train = _graph(run)
    arrivals, hops, start, speed = _node_waves(run, edges, labels, train)
    figure = Figure(figsize=(6.0, 4.2), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    reached = (hops >= 0) & np.isfinite(arrivals)
    jitter = (np.random.default_rng(0).random(reached.sum()) - 0.5) * 0.2
    axes.scatter(hops[reached] + jitter, arrivals[reached], s=14, alpha=0.7)
    for h in np.unique(hops[reached]):
        axes.plot(h, np.median(arrivals[reached & (hops == h)]), "k_", markersize=18)
    if reached.sum() >= 2 and np.ptp(hops[reached]) > 0:
        slope, intercept = np.polyfit(hops[reached], arrivals[reached] - start, 1)
        if not np.isfinite(speed):
            speed = 1.0 / slope if slope != 0 else np.nan
        span = np.array([hops[reached].min(), hops[reached].max()])
        axes.plot(span, start + intercept + slope * span, "r-", linewidth=1,
                  label=f"front: {speed:.3g} hops per unit time")
        axes.legend(loc="upper left", fontsize="small")
    axes.set_xlabel("hops to the nearest supervised node")
    axes.set_ylabel("arrival time of λ (half of its final change)")
    axes.set_title("the backward wave on the graph (bars: medians)", fontsize="medium")
    figure.suptitle(run_title(run))
    return figure


def register(subcommands):
    parser = add_figure_command(subcommands, "graph", draw_graph,
                                "gnn: node states over time on a spectral layout of the graph")
    parser.add_argument("--times", type=int, default=4, metavar="N", help="panels (sample times)")
    add_figure_command(subcommands, "graphwave", draw_graphwave,
                       "gnn: arrival time of the costate λ at each node against its hop distance "
                       "from the supervised nodes")
