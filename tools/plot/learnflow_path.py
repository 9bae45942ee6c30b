"""Puts the learnflow package of this source tree (python/learnflow) first on sys.path: the
plots are drawn by learnflow.plot and read by learnflow.plotfile (pure Python; the compiled
part of the package is not needed). Imported first by the modules of tools/plot that use it."""

import os
import sys

SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "python")
if SOURCE not in sys.path:
    sys.path.insert(0, SOURCE)
