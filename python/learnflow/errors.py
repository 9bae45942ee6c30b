"""The errors of the learnflow module. User errors carry what the command line reports (the
same message, exit status 2 there) and, as attributes, the key or file it names."""


class InputError(ValueError):
    """Something wrong with what the run was given: config, data files, output path."""


class ConfigError(InputError):
    """A bad config value. key: the dotted key ("network.layers"); where: "file:line", the file
    alone, "<dict>" for a dict config, or "--set" for an override."""

    def __init__(self, message, key="", where=""):
        super().__init__(message)
        self.key = key
        self.where = where


class DataFileError(InputError):
    """A bad data file or output path: file, and the 1-based line (0 when not about one line)."""

    def __init__(self, message, file="", line=0):
        super().__init__(message)
        self.file = file
        self.line = line


class RunError(RuntimeError):
    """A run that ended without reaching t_end: a numerical failure (non-finite state, step size
    underflow, step limit, a diverged phase with on_divergence = "stop") or the wall-time
    limit; exit status 3 on the command line. outcome: its name (as /solver outcome); run: the
    Run holding every sample before it."""

    def __init__(self, message, outcome, run):
        super().__init__(message)
        self.outcome = outcome
        self.run = run


class PlotError(ValueError):
    """Nothing to plot, or not a learnflow run file (tools/plot prints it as `plot: error: ...`,
    exit status 2)."""
