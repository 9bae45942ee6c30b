"""The plots' reader of a run file lives in the learnflow package (python/learnflow/plotfile.py);
these names stay importable from here."""

import learnflow_path  # noqa: F401 (python/ on sys.path)
from learnflow.plotfile import Activity, RunFile, natural_key, phase_intervals, text  # noqa: F401
