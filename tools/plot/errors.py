"""The error type that the plot tool reports to the user: learnflow's (python/learnflow)."""

import learnflow_path  # noqa: F401 (python/ on sys.path)
from learnflow.errors import PlotError  # noqa: F401
