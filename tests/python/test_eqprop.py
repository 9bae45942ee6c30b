"""An eqprop run file read back by h5py (independently of learnflow): the metrics of issue 13
(energy E, total energy F, cost, alignment with recurrent backprop, accuracy) are there; F never
increases within a phase; hard-sigmoid states stay in [0, 1]; the reverse of a symmetric pair is
written as the transpose; `tools/plot energy` draws the run.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_eqprop.py
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


class EqpropRunFileTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def run_learnflow(self, *args):
        result = subprocess.run([str(BIN), *map(str, args)], cwd=self.dir, capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def test_xor_run_file(self):
        out = self.dir / "xor.h5"
        self.run_learnflow("run", ROOT / "examples" / "eqprop_xor.toml", "-o", out, "--quiet",
                           "--set", "integrator.t_end=240", "--set", "output.sample_dt=0.25")
        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["model"], "eqprop")
            metrics = f["metrics"]
            for name in ("energy", "total_energy", "loss", "alignment/cosine/layer1",
                         "alignment/cosine/layer2", "alignment/norm_ratio/layer1", "accuracy",
                         "dataset_loss"):
                self.assertIn(name, metrics)
            t = f["time"][()]
            energy = metrics["energy"][()]
            total = metrics["total_energy"][()]
            bounds = np.concatenate([[f["schedule"].attrs["t0"]], f["schedule/breakpoints"][()],
                                     [f["schedule"].attrs["t_end"]]])
            # Samples strictly inside one segment (a phase of one pattern): F may rise only by the
            # solver's error (rtol 1e-6, atol 1e-8 on u; |∂F/∂u| <= 2, nine neurons).
            segment = np.searchsorted(bounds, t, side="right")
            inside = ~np.isin(t, bounds)
            pairs = inside[:-1] & inside[1:] & (segment[:-1] == segment[1:])
            self.assertGreater(pairs.sum(), 500)
            self.assertLessEqual(np.max(np.diff(total)[pairs]), 1e-5)
            # In the free phase F = E; in the nudged phase F = E + βC with β = 0.5.
            free = self.phase_mask(f, t, bounds, "free")
            np.testing.assert_array_equal(total[free], energy[free])
            nudged = ~free & inside
            np.testing.assert_allclose(total[nudged], energy[nudged] + 0.5 * metrics["loss"][()][nudged],
                                       rtol=1e-12, atol=1e-12)
            # The alignment is defined only while nudged with a non-zero error.
            cosine = metrics["alignment/cosine/layer2"][()]
            self.assertTrue(np.all(np.isnan(cosine[free])))
            self.assertGreater(np.nanmin(cosine[nudged]), 0.9)
            # Hard-sigmoid states live in [0, 1] (the projected relaxation).
            for kind in ("u", "u_minus"):
                for block in f["state"][kind].values():
                    self.assertGreaterEqual(block[()].min(), 0.0)
                    self.assertLessEqual(block[()].max(), 1.0)
            initial = f["parameters/W/layer2"][()]
            final = f["parameters/final/W/layer2"][()]
            self.assertEqual(initial.shape, (1, 8))
            self.assertFalse(np.array_equal(initial, final))  # it learnt something
        plot = subprocess.run([PYTHON, str(ROOT / "tools" / "plot"), "energy", str(out), "--to", "120",
                               "-o", str(self.dir / "energy.png")], capture_output=True, text=True)
        self.assertEqual(plot.returncode, 0, plot.stderr)
        self.assertGreater((self.dir / "energy.png").stat().st_size, 10000)

    def phase_mask(self, f, t, bounds, name):
        """Samples strictly inside a segment of phase `name` (/metrics/phase: one row per
        segment, its phase an index into the attribute phase_names)."""
        table = f["metrics/phase"]
        names = table.attrs["phase_names"].split(",")
        phases = table["phase"][()]
        segment = np.searchsorted(bounds, t, side="right") - 1
        inside = ~np.isin(t, bounds)
        return inside & (phases[np.clip(segment, 0, len(phases) - 1)] == names.index(name))

    def test_reverse_projection_is_the_transpose(self):
        config = self.dir / "graph.toml"
        config.write_text("""
[network]
activation = "logistic"
seed = 2
[[network.population]]
name = "in"
size = 2
role = "input"
[[network.population]]
name = "h"
size = 3
[[network.population]]
name = "out"
size = 2
role = "output"
[[network.projection]]
from = "in"
to = "h"
[[network.projection]]
from = "h"
to = "out"
symmetric = true
[[network.projection]]
from = "out"
to = "h"
symmetric = true
[[network.projection]]
from = "h"
to = "h"
symmetric = true
[model]
type = "eqprop"
beta = 0.3
eta = 0.5
[input]
value = [0.5, 1.0]
target = [1.0, 0.0]
phases = [{ name = "free", duration = 10.0 }, { name = "nudged", duration = 5.0 }]
[integrator]
t_end = 30.0
""")
        out = self.dir / "graph.h5"
        self.run_learnflow("run", config, "-o", out, "--quiet")
        with h5py.File(out, "r") as f:
            for group in ("parameters", "parameters/final"):
                w = f[f"{group}/W/h_out"][()]
                np.testing.assert_array_equal(f[f"{group}/W/out_h"][()], w.T)
                lateral = f[f"{group}/W/h_h"][()]
                np.testing.assert_array_equal(lateral, lateral.T)
                np.testing.assert_array_equal(np.diag(lateral), 0.0)
            self.assertNotIn("out_h", f["state/W"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
