"""learnflow from Python: run an experiment, read any run file, plot it.

    import learnflow
    run = learnflow.run("examples/forward_wave.toml", set={"integrator.t_end": 10.0})
    run.time, run.state("x", "layer3"), run.metrics["loss"], run.waves["x"]
    run = learnflow.open("out/forward_wave.h5")     # any run file, also one being written
    learnflow.plot.waves(run, ax=axes)
    table = learnflow.open_sweep("out/sweep")       # a sweep's index (pandas when installed)

run() and validate() need the compiled part (_learnflow, built with learnflow); open(), the Run
reader and learnflow.plot are pure Python (h5py, numpy, matplotlib).
"""

import json
import os
import warnings

from .errors import ConfigError, DataFileError, InputError, RunError
from .reader import Run, Window
from .sweep import open_sweep, read_index

__all__ = ["run", "open", "validate", "open_sweep", "read_index", "Run", "Window", "ConfigError",
           "DataFileError", "InputError", "RunError", "plot"]


def _core():
    try:
        from . import _learnflow
    except ImportError as error:
        raise ImportError("learnflow.run and learnflow.validate need the compiled module "
                          "_learnflow: build learnflow (make build) and put build/python on "
                          "PYTHONPATH") from error
    return _learnflow


def __getattr__(name):
    # learnflow.plot is imported on first use: matplotlib is not needed to run or read.
    if name == "plot":
        # import_module, not `from . import plot`: that looks the name up on this module first,
        # which would call this function again.
        import importlib
        return importlib.import_module(__name__ + ".plot")
    raise AttributeError(f"module 'learnflow' has no attribute '{name}'")


def _toml_value(value, key):
    """A Python value as TOML text, as --set takes it: bool, int, float, str, list or tuple,
    dict (an inline table), numpy scalars and arrays."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same double; inf, nan
    if isinstance(value, str):
        # A TOML basic string: JSON's escapes are TOML's; DEL must be escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item, key) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_value(str(k), key)} = {_toml_value(v, key)}"
                                for k, v in value.items()) + " }"
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy
        return _toml_value(value.tolist(), key)
    raise ConfigError(f"--set: {key}: a {type(value).__name__} is not a config value (bool, int, "
                      "float, str, list, dict)", key=key, where="--set")


def _overrides(assignments):
    """set={"model.gamma": 8.0} as the command line's --set model.gamma=8.0."""
    if assignments is None:
        return []
    if not isinstance(assignments, dict):
        raise TypeError("set must be a dict {\"key.path\": value}")
    return [f"{key}={_toml_value(value, key)}" for key, value in assignments.items()]


def _config(config):
    if isinstance(config, dict):
        return config
    if isinstance(config, (str, os.PathLike)):
        return os.fspath(config)
    raise TypeError(f"config must be a path to a TOML file or a dict, not {type(config).__name__}")


def validate(config, set=None):
    """Checks a config completely (data files, network against model) without running it, as
    `learnflow validate`; returns its description. Raises ConfigError, DataFileError."""
    return _core().validate(_config(config), _overrides(set))


def run(config, set=None, output=None, threads=None, force=False, resume=False, progress=False,
        verbose=False):
    """Runs an experiment as `learnflow run` does and returns its Run.

    config: a path to a TOML file, or a dict of the same tree (its relative paths are taken
    from the working directory). set: {"key.path": value}, the command line's --set.
    output: the run file (output.file of the config is not used); None: the run is kept in
    memory (HDF5's core driver: nothing is written to disk; the Run reads the file's bytes, and
    cannot be resumed). threads: OpenMP threads for this run (default: OMP_NUM_THREADS or all
    cores). force, resume: as --force and --resume. progress: the progress line on stderr;
    verbose: a line per evaluation of a training run.

    The GIL is released while the run integrates. Ctrl-C (SIGINT) stops it at its next step:
    the file keeps every sample before it (and a checkpoint for resume=True), then
    KeyboardInterrupt is raised. Raises ConfigError, DataFileError or InputError for bad input
    (exit status 2 of the CLI, with its message), RunError when the run ended before t_end
    (exit status 3). A diverged phase is a RuntimeWarning, as the CLI's warning.
    """
    core = _core()
    config = _config(config)
    overrides = _overrides(set)
    if threads is not None and not 1 <= int(threads) <= 1024:
        raise ValueError(f"threads must be in 1..1024, got {threads}")
    in_memory = output is None
    report = core.run(config, overrides, "" if in_memory else os.fspath(output), int(threads or 0),
                      bool(force), bool(resume), bool(progress), bool(verbose), in_memory)
    result, adjoint = report["result"], report["adjoint"]
    stop = adjoint if adjoint is not None and result["outcome"] == "success" else result
    if stop["outcome"] == "interrupted":
        path = report["output"]
        kept = "discarded (the run was kept in memory)" if in_memory else \
            f"kept in {path}" + ("; continue with resume=True" if report["checkpoint"] else "")
        raise KeyboardInterrupt(f"learnflow: {stop['message']}; the {report['samples']} "
                                f"sample(s) before it are {kept}")
    if in_memory:
        image = report.pop("image")
        opened = Run(None, image=image, report=report)
    else:
        report.pop("image", None)
        opened = Run(report["output"], report=report)
    if stop["outcome"] != "success":
        sweep = "the adjoint (backward) sweep: " if stop is adjoint else ""
        raise RunError(f"{sweep}{stop['outcome']}: {stop['message']}; the {report['samples']} "
                       f"sample(s) before it are in the run", stop["outcome"], opened)
    if report["diverged_phases"]:
        warnings.warn(f"{report['diverged_phases']} phase(s) diverged (their residual grew); "
                      f"the first: {report['first_divergence']}. See run.phases['diverged']",
                      RuntimeWarning, stacklevel=2)
    return opened


def open(path):  # noqa: A001 (learnflow.open, as the issue names it)
    """Opens any learnflow run file: finished, being written (call .refresh() for the samples
    flushed since) or killed."""
    return Run(path)
