"""Every example in examples/ is validated and run (shortened) by the built binary, and the
README's quick-start commands (run, info, plot waves on the forward wave) work as written.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_examples.py
"""
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
PYTHON = "/usr/bin/python3"

# How each example is shortened: a simulated time (long enough to cross a few input switches),
# or for training runs (whose length follows from [train]) overrides that leave one epoch on a
# tenth of the data.
SHORT_T_END = {
    "forward_wave.toml": None,      # the demo runs in full
    "backward_wave.toml": None,
    "dtp_relaxation.toml": 130.0,
    "xor_costate.toml": 400.0,
    "inertia_xor.toml": 400.0,
    "gaitprop_patterns.toml": 60.0,
    "digits_costate.toml": ["train.epochs=1", "data.test_fraction=0.9"],
    "digits_backprop.toml": ["train.epochs=1", "data.test_fraction=0.9"],
    "digits_gaitprop.toml": ["train.epochs=1", "data.test_fraction=0.9"],
    "digits_dtp.toml": ["train.epochs=1", "data.test_fraction=0.9"],
    "fashion_mnist_costate.toml": ["train.epochs=1", "data.limit=640"],
    "convergence_until.toml": None,  # ends early by design
    "eqprop_xor.toml": 240.0,
    "eqprop_digits.toml": ["train.epochs=1", "data.test_fraction=0.9"],
    "holonomic_chain.toml": 20.0,
    "holonomic_xor.toml": 100.0,
    "gnn_karate.toml": 20.0,
    "gnn_planted_clique.toml": 20.0,
    "gnn_sbm.toml": 10.0,
}


def learnflow(*args, cwd):
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


class ExamplesTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_every_example_validates_and_runs(self):
        examples = sorted((ROOT / "examples").glob("*.toml"))
        self.assertTrue(examples)
        for config in examples:
            with self.subTest(example=config.name):
                self.assertIn(config.name, SHORT_T_END, "new example: give it a short t_end here")
                result = learnflow("validate", config, cwd=self.dir)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("valid", result.stdout)
                out = self.dir / (config.stem + ".h5")
                args = ["run", config, "-o", out, "--quiet"]
                short = SHORT_T_END[config.name]
                if isinstance(short, list):
                    for assignment in short:
                        args += ["--set", assignment]
                elif short is not None:
                    args += ["--set", f"integrator.t_end={short}"]
                result = learnflow(*args, cwd=self.dir)
                self.assertEqual(result.returncode, 0, result.stderr)
                with h5py.File(out, "r") as f:
                    self.assertEqual(f["solver"].attrs["outcome"], "success")
                    t = f["time"][()]
                    self.assertGreater(len(t), 1)
                    self.assertTrue(np.all(np.diff(t) > 0))
                    for name, dataset in f["state"].items():
                        for block in dataset.values():
                            self.assertTrue(np.all(np.isfinite(block[()])), f"{name}/{block.name}")

    def test_readme_quick_start(self):
        # The commands of the README's quick start, after `make demo` has built the binary.
        out = self.dir / "forward_wave.h5"
        result = learnflow("run", ROOT / "examples" / "forward_wave.toml", "-o", out, cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("wrote 601 samples", result.stderr)
        info = learnflow("info", out, cwd=self.dir)
        self.assertEqual(info.returncode, 0, info.stderr)
        # The forward wave: each layer arrives after the one below it, after the step at t = 1.
        arrivals = [float(line.split()[4]) for line in info.stdout.splitlines()
                    if line.startswith("  x ") and line.split()[2] == "1"]
        self.assertEqual(len(arrivals), 6)
        self.assertTrue(all(a > 1.0 for a in arrivals))
        self.assertLess(arrivals[0], arrivals[1])
        png = self.dir / "forward_wave.png"
        plot = subprocess.run([PYTHON, str(ROOT / "tools" / "plot"), "waves", str(out), "-o",
                               str(png)], capture_output=True, text=True, timeout=300)
        self.assertEqual(plot.returncode, 0, plot.stderr)
        self.assertGreater(png.stat().st_size, 10000)


if __name__ == "__main__":
    unittest.main()
