"""The error type that the plot tool reports to the user."""


class PlotError(Exception):
    """A problem with the input (missing file, not a learnflow run, nothing to plot):
    printed as `plot: error: ...`, exit status 2."""
