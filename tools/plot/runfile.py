"""Reading a learnflow run file (HDF5; layout in DESIGN.md §6).

Tolerates files of killed runs: /solver attributes may be missing and datasets may hold fewer
samples than planned, or fewer than /time.
"""

import os
import re

import h5py
import numpy as np

from errors import PlotError

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

    def __init__(self, path):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise PlotError(f"{self.path}: no such file")
        if not h5py.is_hdf5(self.path):
            raise PlotError(f"{self.path}: not an HDF5 file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError:
            # A run still going, or killed, leaves its file marked as open by an SWMR writer.
            self._file = h5py.File(self.path, "r", swmr=True)
        try:
            self._check()
            self.time = self._file["time"][()]
        except BaseException:
            self._file.close()
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

    def stored_waves(self, kind):
        """{population: arrival per input segment (NaN: undefined)} from /waves/<kind>, in
        network order: the arrivals learnflow computed during the run (empty if none)."""
        stored = self._file.get(f"waves/{kind}", {})
        return {name: stored[name][()].astype(float)
                for name in self.population_names if name in stored}

    def metrics(self, path):
        """{name: (times, values)} of /metrics/<path>: the dataset itself, or the datasets of
        that group by name (natural order); empty if absent. A killed run may hold fewer values
        than /time (or the reverse): both are cut to the shorter."""
        node = self._file.get(f"metrics/{path}")
        if isinstance(node, h5py.Dataset):
            members = {path.rsplit("/", 1)[-1]: node}
        elif isinstance(node, h5py.Group):
            members = {name: node[name] for name in sorted(node, key=natural_key)
                       if isinstance(node[name], h5py.Dataset)}
        else:
            members = {}
        result = {}
        for name, dataset in members.items():
            if dataset.ndim != 1:
                continue
            length = min(len(self.time), dataset.shape[0])
            result[name] = (self.time[:length], dataset[:length].astype(float))
        return result
