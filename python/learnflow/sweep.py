"""The index of a parameter sweep (`learnflow sweep`, README: Sweeps) as a table.

    from learnflow.sweep import open_sweep        # or: learnflow.open_sweep
    table = open_sweep("out/xor_sweep")           # DIR/index.h5
    table[table["status"] == 0]["final.accuracy"]

Pure Python (h5py, numpy): it reads DIR/index.h5 only, so it works without the compiled module.
With pandas installed the table is a pandas.DataFrame, else a dict of numpy columns in the
index's column order. Columns: `point` (the run file's stem, DIR/<point>.h5), one per swept key
("model.gamma", "network.seed"; numbers as float64, other values as their TOML text), `status`
(the point's exit status: 0, 2 bad input, 3 numerical failure), `outcome`, `message` (why a
point failed), `wall_seconds`, `host`, then summary metrics of each run file: `final.<name>`
(/metrics/<name> at the last sample), `epoch.<name>` (the last row of /metrics/epoch: held-out
accuracy and loss of a training run), `solver.<name>` (steps, rejected, rhs_evals), `samples`,
`phases…`; NaN where a point has no value.
"""

import os

import h5py
import numpy as np

__all__ = ["open_sweep", "read_index"]


class SweepError(Exception):
    """DIR holds no readable sweep index."""


def _text(values):
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def read_index(directory):
    """The index of the sweep in `directory` (or the path of an index.h5) as a dict
    {column: numpy array} in the index's column order."""
    path = os.fspath(directory)
    if os.path.isdir(path):
        path = os.path.join(path, "index.h5")
    if not os.path.exists(path):
        raise SweepError(f"{path}: no sweep index (has the sweep finished? run it again to "
                         "finish it)")
    columns = {}
    with h5py.File(path, "r") as f:
        if "columns" not in f or "index" not in f:
            raise SweepError(f"{path}: not a learnflow sweep index (no /columns, /index)")
        for name in _text(f["columns"][()]):
            data = f["index"][name][()]
            columns[name] = _text(data) if data.dtype.kind in "OSU" else np.asarray(data)
    return columns


def open_sweep(directory):
    """The sweep's index: a pandas.DataFrame when pandas is importable, else the dict of numpy
    columns of read_index."""
    columns = read_index(directory)
    try:
        import pandas
    except ImportError:
        return columns
    return pandas.DataFrame(columns)
