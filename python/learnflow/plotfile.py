"""Reading a learnflow run file for plots (HDF5; layout in DESIGN.md §6): per-population
activities with their means and held values, metric series by group, stored waves, the
learning curve. learnflow.plot and tools/plot draw from it; learnflow.Run is the reader for
users, and a RunFile is made from one (also from a run kept in memory) or from a path.

Tolerates files of killed runs: /solver attributes may be missing and datasets may hold fewer
samples than planned, or fewer than /time.
"""

import re
import tomllib

import h5py
import numpy as np

from .errors import PlotError
from .reader import open_run_file

# Rows read at once when averaging a [T, n] dataset, to bound memory on long runs.
BLOCK_ROWS = 4096


def natural_key(name):
    """Sort key that puts "layer2" before "layer10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def text(value):
    """An attribute value as str: h5py returns bytes for fixed-length strings."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("ascii", errors="replace")
    return str(value)


def phase_intervals(config, name, t0, t_end):
    """[(start, end)] of every phase called `name` of the input schedule in config (the parsed
    run config), as learnflow runs it over [t0, t_end]: the phases of [input] phases follow
    each other from t0 and repeat with period `present` (kind "sequence") or the sum of their
    durations; the last interval is cut at t_end. Empty without phases."""
    section = config.get("input", {})
    phases = section.get("phases", [])
    try:
        durations = [float(phase["duration"]) for phase in phases]
        names = [phase["name"] for phase in phases]
        period = float(section["present"]) if section.get("kind") == "sequence" and \
            "present" in section else sum(durations)
    except (TypeError, KeyError, ValueError) as error:
        raise PlotError(f"config: [input] phases: expected [{{ name = ..., duration = ... }}, ...] "
                        f"({type(error).__name__}: {error})") from None
    if not phases or not period > 0.0:
        return []
    intervals = []
    cycle = 0
    # The same arithmetic as learnflow's schedule, so that the bounds equal its breakpoints.
    while t0 + cycle * period < t_end:
        offset = 0.0
        for phase_name, duration in zip(names, durations):
            start = t0 + cycle * period + offset
            if phase_name == name and start < t_end:
                intervals.append((start, min(start + duration, t_end)))
            offset += duration
        cycle += 1
    return intervals


class Activity:
    """A recorded per-population block /state/<kind>/<population>: the activity x or the
    costate lambda of one population."""

    def __init__(self, name, dataset, time):
        self.name = name
        self._dataset = dataset
        # "every:K" records keep the samples /time[::K]; "all" and "norm" have stride 1.
        times = time[::int(dataset.attrs.get("stride", 1))]
        self.length = min(len(times), dataset.shape[0])
        self.times = times[:self.length]

    @property
    def is_norm(self):
        """True for a "norm" record: one value per sample, the L2 norm of the block."""
        return self._dataset.ndim == 1

    @property
    def size(self):
        """Number of neurons (rows this population takes in a heatmap); 0 for a norm record."""
        return 0 if self.is_norm else self._dataset.shape[1]

    def mean(self):
        """m(t) at self.times: the mean over neurons, or the norm itself for a norm record."""
        if self.is_norm:
            return self._dataset[:self.length].astype(float)
        result = np.empty(self.length)
        for start in range(0, self.length, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, self.length)
            result[start:stop] = self._dataset[start:stop].mean(axis=1, dtype=float)
        return result

    def rows(self, first, stop):
        """Samples first..stop-1 as [k, m]: the neurons (of every recorded example) per sample,
        or, for a norm record, the norm as one column."""
        data = np.asarray(self._dataset[first:stop], dtype=float)
        return data.reshape(len(data), -1)

    def held(self, grid):
        """The block at each time of grid, [len(grid), n]: the latest sample at or before it
        (the first sample before that; NaN if there is no sample)."""
        if self.length == 0:
            return np.full((len(grid), self.size), np.nan)
        index = np.clip(np.searchsorted(self.times, grid, side="right") - 1, 0, self.length - 1)
        rows, where = np.unique(index, return_inverse=True)
        return self._dataset[rows][where]


class RunFile:
    """An open learnflow run file; use as a context manager."""

    def __init__(self, source):
        """source: a path, or an open learnflow.Run (or h5py.File), which stays open when this
        object is closed."""
        handle = getattr(source, "file", source)
        self._owned = not isinstance(handle, h5py.File)
        if self._owned:
            self.path = str(source)
            self._file, _ = open_run_file(self.path, error=PlotError)
        else:
            # A learnflow.Run names itself (its path, or "<in memory>"); an h5py.File by its file.
            self.path = handle.filename if source is handle else str(source.name)
            self._file = handle
        try:
            self._check()
            self.time = self._file["time"][()]
        except BaseException:
            self.close()
            raise

    def _check(self):
        network = self._file.get("network")
        required = {
            "learnflow_version attribute": "learnflow_version" in self._file.attrs,
            "/time": isinstance(self._file.get("time"), h5py.Dataset),
            "/network populations": network is not None and "populations" in network.attrs,
            "/schedule": "schedule" in self._file,
        }
        missing = [what for what, present in required.items() if not present]
        if missing:
            raise PlotError(f"{self.path}: not a learnflow run file (no {', '.join(missing)})")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._owned:
            self._file.close()

    def attr(self, name, default=None):
        """A root attribute (strings decoded), or default if absent."""
        value = self._file.attrs.get(name)
        return default if value is None else text(value)

    @property
    def population_names(self):
        """All population names, in network order (inputs included)."""
        names = text(self._file["network"].attrs["populations"]).split(",")
        return [name.strip() for name in names if name.strip()]

    @property
    def segments(self):
        """Input segments [(start, end)]: [t0, b_1], [b_1, b_2], ..., [b_S, t_end]."""
        schedule = self._file["schedule"]
        breakpoints = schedule["breakpoints"][()] if "breakpoints" in schedule else []
        bounds = [float(schedule.attrs["t0"]), *map(float, breakpoints),
                  float(schedule.attrs["t_end"])]
        return list(zip(bounds[:-1], bounds[1:]))

    @property
    def config(self):
        """The run config (root attribute config, TOML) parsed; empty if absent."""
        source = self.attr("config")
        if source is None:
            return {}
        try:
            return tomllib.loads(source)
        except tomllib.TOMLDecodeError as error:
            raise PlotError(f"{self.path}: attribute config is not valid TOML: {error}") from None

    def phase_intervals(self, name):
        """[(start, end)] of the input phases called name (see phase_intervals)."""
        schedule = self._file["schedule"].attrs
        return phase_intervals(self.config, name, float(schedule["t0"]), float(schedule["t_end"]))

    @property
    def solver(self):
        """/solver attributes (strings decoded); empty for a killed run."""
        group = self._file.get("solver")
        if group is None:
            return {}
        return {name: text(value) if isinstance(value, (str, bytes, np.bytes_)) else value
                for name, value in group.attrs.items()}

    def activities(self, kind="x"):
        """Recorded blocks /state/<kind>/<population> in network order (empty if none)."""
        recorded = self._file.get(f"state/{kind}", {})
        return [Activity(name, recorded[name], self.time)
                for name in self.population_names if name in recorded]

    def blocks(self, kind):
        """Every recorded block /state/<kind>/<member> (weights W, velocities Wdot, biases b, ...:
        members are projections or populations), in natural order of the member names."""
        recorded = self._file.get(f"state/{kind}", {})
        return [Activity(name, recorded[name], self.time)
                for name in sorted(recorded, key=natural_key)]

    def stored_waves(self, kind):
        """{population: arrival per input segment (NaN: undefined)} from /waves/<kind>, in
        network order: the arrivals learnflow computed during the run (empty if none)."""
        stored = self._file.get(f"waves/{kind}", {})
        return {name: stored[name][()].astype(float)
                for name in self.population_names if name in stored}

    def has_metrics(self, path):
        """True if /metrics/<path> exists (a dataset or a group)."""
        return f"metrics/{path}" in self._file

    def _metric_series(self, path):
        """{name: dataset} of the time series of /metrics/<path>: the dataset itself, or the
        one-dimensional datasets of that group by name (natural order); empty if absent."""
        node = self._file.get(f"metrics/{path}")
        if isinstance(node, h5py.Dataset):
            members = {path.rsplit("/", 1)[-1]: node}
        elif isinstance(node, h5py.Group):
            members = {name: node[name] for name in sorted(node, key=natural_key)
                       if isinstance(node[name], h5py.Dataset)}
        else:
            members = {}
        return {name: dataset for name, dataset in members.items() if dataset.ndim == 1}

    def metrics(self, path):
        """{name: (times, values)} of /metrics/<path> (see _metric_series). A killed run may
        hold fewer values than /time (or the reverse): both are cut to the shorter."""
        result = {}
        for name, dataset in self._metric_series(path).items():
            length = min(len(self.time), dataset.shape[0])
            result[name] = (self.time[:length], dataset[:length].astype(float))
        return result

    @property
    def is_training(self):
        """True for a training run ([data], [train]): it has /data and /metrics/epoch."""
        return "data" in self._file

    def evaluations(self):
        """The learning curve of a training run: {name: values} of /metrics/epoch/<name> (time,
        epoch, train_loss, train_accuracy, test_loss, test_accuracy), with the initial network's
        scores (attributes initial_<name>) prepended at t0, epoch 0; empty for other runs."""
        group = self._file.get("metrics/epoch")
        if not isinstance(group, h5py.Group) or "time" not in group:
            return {}
        length = min(group[name].shape[0] for name in group)
        curve = {}
        for name in group:
            values = group[name][:length].astype(float)
            if name == "time":
                start = float(self._file["schedule"].attrs["t0"])
            elif name == "epoch":
                start = 0.0
            else:
                start = float(group.attrs.get(f"initial_{name}", np.nan))
            curve[name] = np.concatenate([[start], values])
        return curve

    def metric_attribute(self, path, attribute):
        """{name: values as a float array} of the attribute of the series of /metrics/<path>
        (see _metric_series) that have it."""
        return {name: np.atleast_1d(np.asarray(dataset.attrs[attribute], dtype=float))
                for name, dataset in self._metric_series(path).items()
                if attribute in dataset.attrs}
