"""Reading a learnflow run file (layout: README, "The HDF5 file") as numpy arrays.

Any run file opens: a finished one, one still being written (single-writer/multiple-reader: call
refresh() to see the samples flushed since), and one of a killed run (still marked as open by
its writer). Arrays are cut to the samples whose time is in /time, which the writer extends
last at every flush, so every array read is complete and consistent with .time.
"""

import math
import os
import re
import tomllib

import h5py
import numpy as np


def _text(value):
    """An attribute value as str (h5py gives bytes for fixed-length strings)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _attribute(value):
    """An attribute value as Python: strings decoded, one-element arrays as scalars."""
    if isinstance(value, (str, bytes, np.bytes_)):
        return _text(value)
    if isinstance(value, np.ndarray) and value.shape == (1,):
        return value[0].item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _natural_key(name):
    """Sort key that puts "layer2" before "layer10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def open_run_file(path, error=OSError):
    """(h5py.File, live) for a run file on disk: read-only, or in SWMR mode when a run is still
    writing it or was killed (then live is True). Raises `error` (FileNotFoundError when the
    file does not exist) for a path that is not an HDF5 file."""
    if not os.path.isfile(path):
        raise (FileNotFoundError if error is OSError else error)(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise error(f"{path}: not an HDF5 file")
    try:
        return h5py.File(path, "r"), False
    except OSError:
        # A run still going, or killed, leaves its file marked as open by an SWMR writer.
        return h5py.File(path, "r", swmr=True), True


class Run:
    """A learnflow run file, read with h5py. Use as a context manager, or call close().

    path: the file; None for a run kept in memory (learnflow.run(output=None)), whose file is
    `image`, the bytes of an HDF5 file; report: what learnflow.run() reported (outcome,
    statistics, samples), None for open().
    """

    def __init__(self, path, *, image=None, report=None):
        self.path = None if path is None else os.fspath(path)
        self.report = report
        self.live = False
        if image is not None:
            # HDF5's file-image driver: the file is read from these bytes, nothing touches a disk.
            self._file = h5py.File(h5py.h5f.open_file_image(image), "r")
        else:
            self._file, self.live = open_run_file(self.path)
        if "learnflow_version" not in self._file.attrs or "time" not in self._file:
            self._file.close()
            raise OSError(f"{self.name}: not a learnflow run file (no learnflow_version "
                          "attribute or /time)")
        self._time = None

    # -- the file ------------------------------------------------------------------------------

    @property
    def name(self):
        """The file's path, or "<in memory>" for a run kept in memory."""
        return self.path if self.path is not None else "<in memory>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._file.close()

    @property
    def file(self):
        """The open h5py.File, for what this class does not cover."""
        return self._file

    def refresh(self):
        """Sees the samples a live run flushed since the file was opened (or last refreshed)."""
        if self.live:
            # /time first: the writer flushes it last, so every dataset refreshed after it holds
            # at least as many rows (refreshed in name order, /state would lag behind /time).
            self._file["time"].refresh()
            def refresh(name, node):
                if isinstance(node, h5py.Dataset) and name != "time":
                    node.refresh()
            self._file.visititems(refresh)
        self._time = None
        return self

    def __repr__(self):
        return (f"<learnflow.Run {self.name}: model {self.attrs.get('model', '?')}, "
                f"{len(self.time)} samples, outcome {self.solver.get('outcome', 'none')}>")

    # -- metadata ------------------------------------------------------------------------------

    @property
    def attrs(self):
        """The root attributes (learnflow_version, model, integrator, seed, threads, kernels,
        created, config), strings decoded."""
        return {name: _attribute(value) for name, value in self._file.attrs.items()}

    @property
    def config(self):
        """The run's config (after overrides) as a dict."""
        return tomllib.loads(_text(self._file.attrs.get("config", "")))

    @property
    def solver(self):
        """/solver attributes: steps, rejected, rhs_evals, wall_seconds, outcome, message,
        t_final; empty for a run still going or killed."""
        group = self._file.get("solver")
        if group is None:
            return {}
        return {name: _attribute(value) for name, value in group.attrs.items()}

    @property
    def finished(self):
        """True when the run ended (its /solver is written), whatever the outcome."""
        return "outcome" in self.solver

    @property
    def populations(self):
        """Population names in network order (inputs included)."""
        names = _text(self._file["network"].attrs["populations"]).split(",")
        return [name.strip() for name in names if name.strip()]

    # -- time and state ------------------------------------------------------------------------

    @property
    def time(self):
        """The sample times [T]."""
        if self._time is None:
            self._time = self._file["time"][()]
        return self._time

    @property
    def blocks(self):
        """The recorded state blocks as (kind, name) pairs: ("x", "layer1"), ("W", "layer2")."""
        state = self._file.get("state", {})
        return [(kind, name) for kind in state for name in sorted(state[kind], key=_natural_key)]

    def _dataset(self, path):
        node = self._file.get(path)
        if not isinstance(node, h5py.Dataset):
            raise KeyError(f"{self.name}: no dataset /{path}")
        return node

    def _rows(self, dataset, stride=1):
        """How many rows of a time-major dataset have their time in /time."""
        return min(dataset.shape[0], math.ceil(len(self.time) / stride))

    def state(self, kind, population):
        """The recorded block /state/<kind>/<population> as an array with time first: [T, n]
        (a population), [T, B, n] (a batch of B recorded examples), [T, n_out, n_in] (weights),
        [T] (a "norm" record). An "every:K" record has the rows of state_time()."""
        dataset = self._dataset(f"state/{kind}/{population}")
        stride = int(dataset.attrs.get("stride", 1))
        return dataset[:self._rows(dataset, stride)]

    def state_time(self, kind, population):
        """The times of the rows state(kind, population) gives: time[::K] for "every:K"."""
        dataset = self._dataset(f"state/{kind}/{population}")
        stride = int(dataset.attrs.get("stride", 1))
        return self.time[::stride][:self._rows(dataset, stride)]

    # -- metrics, tables, waves, parameters ----------------------------------------------------

    @property
    def metrics(self):
        """{name: [T]} of every time series under /metrics ("loss", "residual/x",
        "relaxation/residual/layer1", ...), cut to the samples of .time. The per-evaluation and
        per-phase tables are .epochs and .phases."""
        series = {}

        def visit(name, node):
            if isinstance(node, h5py.Dataset) and not name.startswith(("epoch/", "phase/")) \
                    and node.ndim >= 1:
                series[name] = node[:self._rows(node)]
        group = self._file.get("metrics")
        if group is not None:
            group.visititems(visit)
        return dict(sorted(series.items(), key=lambda item: _natural_key(item[0])))

    def _table(self, path):
        group = self._file.get(path)
        if not isinstance(group, h5py.Group) or not len(group):
            return {}
        length = min(group[name].shape[0] for name in group)
        return {name: group[name][:length] for name in group}

    @property
    def epochs(self):
        """A training run's evaluations, {name: [E]} of /metrics/epoch (time, epoch, train_loss,
        train_accuracy, test_loss, test_accuracy); the initial network's are initial_scores."""
        return self._table("metrics/epoch")

    @property
    def initial_scores(self):
        """The scores of a training run's initial network: {"test_loss": ..., ...}."""
        group = self._file.get("metrics/epoch")
        if group is None:
            return {}
        return {name[len("initial_"):]: float(value) for name, value in group.attrs.items()
                if name.startswith("initial_")}

    @property
    def phases(self):
        """One row per input segment, {name: [P]} of /metrics/phase: start, duration, phase,
        converged, diverged, residual_start, residual_end."""
        return self._table("metrics/phase")

    @property
    def waves(self):
        """The wave arrival times the run measured: {kind: {population: [S]}} (kind "x" or "h"
        forward, "lambda" backward; NaN where undefined), populations in network order. A gnn
        run adds "graph": {"lambda_arrival": [N] per node, "hop_distance": [N] from the
        supervised nodes (-1: unreachable)}, the backward wave on its graph."""
        result = {}
        group = self._file.get("waves", {})
        order = {name: index for index, name in enumerate(self.populations)}
        for kind in group:
            if kind == "neurons":
                continue
            members = group[kind]
            result[kind] = {name: members[name][()]
                            for name in sorted(members, key=lambda n: order.get(n, len(order)))}
        return result

    def parameters(self, final=False):
        """The network's parameters {"W/<projection>": [n_out, n_in], "b/<population>": [n],
        ...}: the initial ones, or with final=True the learned ones at the end of a successful
        run of a learning model (LookupError when the file has none)."""
        root = "parameters/final" if final else "parameters"
        group = self._file.get(root)
        if group is None:
            raise LookupError(f"{self.name}: no /{root}" +
                              (" (only a successful run of a learning model has final "
                               "parameters)" if final else ""))
        result = {}

        def visit(name, node):
            if isinstance(node, h5py.Dataset) and (final or not name.startswith("final/")):
                result[name] = node[()]
        group.visititems(visit)
        return result

    # -- segments and epochs -------------------------------------------------------------------

    @property
    def segments(self):
        """Input segments [(start, end)]: [t0, b_1], [b_1, b_2], ..., [b_S, t_end]."""
        schedule = self._file["schedule"]
        breakpoints = schedule["breakpoints"][()] if "breakpoints" in schedule else []
        bounds = [float(schedule.attrs["t0"]), *map(float, breakpoints),
                  float(schedule.attrs["t_end"])]
        return list(zip(bounds[:-1], bounds[1:]))

    def segment(self, k):
        """The samples of input segment k (negative: from the end), start <= t <= end."""
        start, end = self.segments[k]
        return Window(self, start, end)

    def epoch(self, e):
        """The samples of epoch e (1-based) of a training run: its minibatches' segments."""
        epochs = int(self.config.get("train", {}).get("epochs", 0))
        if epochs < 1:
            raise LookupError(f"{self.name}: not a training run (no train.epochs)")
        if not 1 <= e <= epochs:
            raise IndexError(f"epoch {e} out of range 1..{epochs}")
        segments = self.segments
        per_epoch = len(segments) // epochs
        return Window(self, segments[(e - 1) * per_epoch][0], segments[e * per_epoch - 1][1])

    def between(self, start, end):
        """The samples with start <= t <= end."""
        return Window(self, start, end)

    # -- xarray --------------------------------------------------------------------------------

    def to_xarray(self):
        """The time series as an xarray.Dataset (python3-xarray): every recorded block with
        stride 1 and every metric, on the coordinate time; ImportError without xarray."""
        try:
            import xarray
        except ImportError as error:
            raise ImportError("Run.to_xarray needs xarray (Debian: python3-xarray)") from error
        time = self.time
        variables = {}
        for kind, name in self.blocks:
            values = self.state(kind, name)
            if len(values) != len(time):
                continue  # an "every:K" record is on another time axis
            dims = ["time"] + [f"{kind}/{name}/axis{axis}" for axis in range(1, values.ndim)]
            variables[f"state/{kind}/{name}"] = (dims, values)
        for name, values in self.metrics.items():
            if len(values) == len(time) and values.ndim == 1:
                variables[f"metrics/{name}"] = (["time"], values)
        attrs = {name: value for name, value in self.attrs.items()
                 if isinstance(value, (str, int, float))}
        return xarray.Dataset(variables, coords={"time": time}, attrs=attrs)


class Window:
    """The samples of a run within start <= t <= end (a segment, an epoch): the same readers
    as Run for time-major data."""

    def __init__(self, run, start, end):
        self.run = run
        self.start = start
        self.end = end

    def _rows(self, times):
        return slice(int(np.searchsorted(times, self.start, side="left")),
                     int(np.searchsorted(times, self.end, side="right")))

    @property
    def time(self):
        return self.run.time[self._rows(self.run.time)]

    def state(self, kind, population):
        return self.run.state(kind, population)[self._rows(self.run.state_time(kind, population))]

    def state_time(self, kind, population):
        times = self.run.state_time(kind, population)
        return times[self._rows(times)]

    @property
    def metrics(self):
        rows = self._rows(self.run.time)
        return {name: values[rows] for name, values in self.run.metrics.items()}

    def __repr__(self):
        return f"<learnflow.Window {self.run.path}: t in [{self.start}, {self.end}]>"
