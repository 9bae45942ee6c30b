"""End-to-end tests of the analytics of issue 9, read back with h5py: phases that end on
convergence (/metrics/phase, the rewritten /schedule), divergence flagged (warning, exit 3 with
on_divergence = "stop", the attribute on DTP's rate datasets), output.waves, the wave tables of
`learnflow info`, and `learnflow watch` following a run while it is written.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_analytics.py -v
"""

import math
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))

# One linear population: the residual ‖ẋ‖ = r0 e^{-(c/τ) t} after every input switch.
UNTIL = """\
[network]
layers = [2, 3]
activation = "linear"
seed = 3
init = { weights = "normal", scale = 1.0, bias = "normal", bias_scale = 0.2 }

[model]
type = "leaky"
c = 0.5
tau = 2.0

[input]
kind = "sequence"
values = [[0.7, -0.4], [-0.2, 0.9], [0.5, 0.5]]
phases = [{ name = "relax", until = { residual = 1e-5 }, max_duration = 80.0 }, { name = "hold", duration = 2.0 }]

[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 246.0

[output]
sample_dt = 0.25
"""

# DTP with exact pseudo-inverse decoders Ω (a state block, learning at a negligible rate).
DTP = """\
[network]
layers = [4, 4, 4]
activation = "tanh"
seed = 1
init = { weights = "orthogonal", scale = 1.0, bias = "normal", bias_scale = 0.1 }

[model]
type = "dtp"
beta = 0.1
update = "none"
decoders = "pinv"
decoder_noise = 0.0
decoder_rate = 1e-12

[input]
kind = "sequence"
values = [[0.4, -0.2, 0.3, 0.1]]
targets = [[0.3, 0.1, -0.2, 0.2]]
phases = [{ name = "forward", duration = 20.0 }, { name = "target", duration = 20.0 }]

[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 40.0

[output]
sample_dt = 0.5
"""


def learnflow(*args, cwd):
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


class AnalyticsTestCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not BIN.is_file():
            raise unittest.SkipTest(f"no learnflow binary at {BIN} (set LEARNFLOW_BIN)")
        cls.dir = Path(tempfile.mkdtemp(prefix="learnflow_analytics_test_"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_text(self, name, text, *args):
        config = self.dir / f"{name}.toml"
        config.write_text(text)
        output = self.dir / f"{name}.h5"
        if output.exists():
            output.unlink()
        return learnflow("run", config, "-o", output, "--quiet", *args, cwd=self.dir), output


class UntilTest(AnalyticsTestCase):

    def test_phases_end_on_convergence(self):
        result, path = self.run_text("until", UNTIL)
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(path, "r") as f:
            phase = {name: f["metrics/phase"][name][()] for name in f["metrics/phase"]}
            self.assertEqual(f["metrics/phase"].attrs["phase_names"], "relax,hold")
            self.assertEqual(list(phase["phase"]), [0, 1, 0, 1, 0, 1])
            self.assertEqual(list(phase["converged"]), [1, 0, 1, 0, 1, 0])
            self.assertFalse(phase["diverged"].any())
            # Every relaxation took log(r_start/ε)·τ/c (a linear system: ẍ = -(c/τ) ẋ).
            relax = phase["phase"] == 0
            expected = np.log(phase["residual_start"][relax] / 1e-5) * 2.0 / 0.5
            np.testing.assert_allclose(phase["duration"][relax], expected, rtol=1e-7)
            np.testing.assert_allclose(phase["residual_end"][relax], 1e-5, rtol=1e-6)
            np.testing.assert_allclose(phase["duration"][~relax], 2.0, rtol=1e-13)
            # Each phase starts where the previous one ended.
            np.testing.assert_allclose(phase["start"][1:], (phase["start"] + phase["duration"])[:-1],
                                       rtol=1e-14)
            # The schedule records the times reached, and the planned one beside it.
            schedule = f["schedule"]
            end = phase["start"][-1] + phase["duration"][-1]
            self.assertAlmostEqual(schedule.attrs["t_end"], end, delta=1e-9)
            self.assertEqual(schedule.attrs["planned_t_end"], 246.0)
            np.testing.assert_allclose(schedule["breakpoints"][()], phase["start"][1:], rtol=1e-14)
            self.assertEqual(len(schedule["planned_breakpoints"]), 5)
            self.assertLessEqual(f["time"][-1], end)
            self.assertEqual(f["solver"].attrs["outcome"], "success")
        info = learnflow("info", path, cwd=self.dir)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn("phases (6 input segments; /metrics/phase):", info.stdout)
        self.assertRegex(info.stdout, r"relax\s+3\s+\S+\s+3\s+\S+\s+0")

    def test_bad_until_keys(self):
        for phases, key in (
                ('[{ name = "a", until = { residual = 1e-5 }, duration = 3.0 }]', "duration"),
                ('[{ name = "a", until = { residual = -1.0 }, max_duration = 3.0 }]', "residual"),
                ('[{ name = "a", until = { residue = 1e-5 }, max_duration = 3.0 }]', "until.residual"),
                ('[{ name = "a", until = { residual = 1e-5 } }]', "max_duration"),
                ('[{ name = "a", max_duration = 3.0 }]', "max_duration")):
            with self.subTest(phases=phases):
                line = next(line for line in UNTIL.splitlines() if line.startswith("phases = "))
                text = UNTIL.replace(line, f"phases = {phases}")
                text = text.replace("values = [[0.7, -0.4], [-0.2, 0.9], [0.5, 0.5]]",
                                    "values = [[0.7, -0.4]]")
                result, path = self.run_text("bad_until", text)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("input.phases", result.stderr)
                self.assertIn(key, result.stderr)
                self.assertFalse(path.exists())


class DivergenceTest(AnalyticsTestCase):

    def test_contracting_dtp_is_not_flagged(self):
        result, path = self.run_text("dtp_ok", DTP)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("diverged", result.stderr)
        with h5py.File(path, "r") as f:
            self.assertEqual(list(f["metrics/phase/diverged"][()]), [0, 0])
            rate = f["metrics/relaxation/residual/layer1"]
            self.assertEqual(list(rate.attrs["segment"]), [1])
            self.assertEqual(list(rate.attrs["diverged"]), [0])

    def test_expansive_relaxation_is_flagged_and_can_stop_the_run(self):
        # decoder_noise large: the decoders are far from inverses and the targets run away.
        text = DTP.replace("decoder_noise = 0.0", "decoder_noise = 4.0").replace(
            "decoder_rate = 1e-12\n", "")
        result, path = self.run_text("dtp_bad", text)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: 1 phase(s) diverged", result.stderr)
        self.assertIn("phase 'target'", result.stderr)
        with h5py.File(path, "r") as f:
            self.assertEqual(list(f["metrics/phase/diverged"][()]), [0, 1])
            self.assertEqual(list(f["metrics/relaxation/residual/layer1"].attrs["diverged"]), [1])
        info = learnflow("info", path, cwd=self.dir)
        self.assertIn("warning: 1 phase(s) diverged", info.stdout)
        stopped, path = self.run_text("dtp_stop", text + '\n', "--set",
                                      'integrator.on_divergence="stop"', "--set",
                                      "integrator.t_end=80.0", "--set",
                                      "input.values=[[0.4, -0.2, 0.3, 0.1], [0.1, 0.2, -0.3, 0.0]]",
                                      "--set",
                                      "input.targets=[[0.3, 0.1, -0.2, 0.2], [0.0, 0.1, 0.2, -0.1]]")
        self.assertEqual(stopped.returncode, 3, stopped.stderr)
        self.assertIn("diverged", stopped.stderr)
        with h5py.File(path, "r", swmr=True) as f:
            self.assertEqual(f["solver"].attrs["outcome"], "diverged")
            self.assertLessEqual(f["time"][-1], 40.0)  # nothing after the diverged phase
            self.assertEqual(len(f["metrics/phase/diverged"]), 2)


class WavesOptionTest(AnalyticsTestCase):

    def test_first_k_and_none(self):
        text = UNTIL.replace('sample_dt = 0.25', 'sample_dt = 0.25\nwaves = "first:2"')
        result, path = self.run_text("waves_first", text)
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(path, "r") as f:
            self.assertEqual(f["waves/x/layer1"].shape, (2,))
            self.assertEqual(f["waves/neurons/x/layer1"].shape, (2, 3))
            self.assertTrue(np.all(np.isfinite(f["waves/x/layer1"][()])))
        result, path = self.run_text("waves_none", UNTIL.replace('sample_dt = 0.25',
                                                                 'sample_dt = 0.25\nwaves = "none"'))
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(path, "r") as f:
            self.assertNotIn("waves", f)
        result, _ = self.run_text("waves_bad", UNTIL.replace('sample_dt = 0.25',
                                                             'sample_dt = 0.25\nwaves = "first:0"'))
        self.assertEqual(result.returncode, 2)
        self.assertIn("output.waves", result.stderr)


class WatchTest(AnalyticsTestCase):

    def test_watch_follows_a_run_until_it_ends(self):
        # A run of some seconds that samples rarely: every sample must reach the file within
        # output.flush_latency, so that watch sees it while the run goes on, and the run must
        # still end cleanly although a reader opens its file again and again.
        text = """\
[network]
layers = [64, 256, 256, 256, 8]
activation = "tanh"
seed = 2
[model]
type = "leaky"
[input]
kind = "sine"
amplitude = [1.0]
frequency = [0.3]
phase = [0.0]
offset = [0.0]
[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 200.0
[output]
sample_dt = 10.0
flush_latency = 0.2
record = { x = "norm" }
residual = true
"""
        text = text.replace("amplitude = [1.0]", "amplitude = [" + ", ".join(["1.0"] * 64) + "]")
        for key in ("frequency", "phase", "offset"):
            value = {"frequency": "0.3", "phase": "0.0", "offset": "0.0"}[key]
            text = text.replace(f"{key} = [{value}]", f"{key} = [" + ", ".join([value] * 64) + "]")
        config = self.dir / "slow.toml"
        config.write_text(text)
        output = self.dir / "slow.h5"
        run = subprocess.Popen([str(BIN), "run", str(config), "-o", str(output), "--quiet",
                                "--threads", "1"], cwd=self.dir, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not output.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            watch = subprocess.run([str(BIN), "watch", str(output), "--interval", "0.1"],
                                   cwd=self.dir, capture_output=True, text=True, timeout=300)
        finally:
            _, stderr = run.communicate(timeout=300)
        self.assertEqual(run.returncode, 0, stderr)
        self.assertEqual(watch.returncode, 0, watch.stderr)
        lines = watch.stdout.splitlines()
        self.assertTrue(lines)
        self.assertRegex(lines[-1], r"^t = 200 / 200 \(100\.0 %\), 21 samples.*\[ended: success\]$")
        self.assertIn("residual/x", lines[-1])
        # Seen while running: lines with fewer samples than the end, counting up.
        counts = [int(line.split(", ")[1].split()[0]) for line in lines]
        self.assertEqual(counts, sorted(counts))
        self.assertLess(counts[0], 21)  # the run takes seconds; watch looks every 0.1 s
        once = learnflow("watch", output, "--once", cwd=self.dir)
        self.assertEqual(once.returncode, 0, once.stderr)
        self.assertIn("[ended: success]", once.stdout)

    def test_watch_of_a_missing_file(self):
        result = learnflow("watch", self.dir / "nothing.h5", "--once", cwd=self.dir)
        self.assertEqual(result.returncode, 2)
        self.assertIn("nothing.h5", result.stderr)


if __name__ == "__main__":
    unittest.main()
