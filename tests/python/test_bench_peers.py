"""The work-precision benchmark's peers solve learnflow's equations (bench/wp_bench.py): SciPy's
DOP853 on the NumPy costate and leaky right-hand sides, and CVODE (Adams and BDF) on the model's
own RHS, each at a tight tolerance, end within a small distance of learnflow's rkf78 at 1e-12, on
every block of the final state (x, λ, W, b). Measured when this test was written: SciPy 4e-12
(costate) and 3e-13 (leaky), CVODE Adams 4e-11 and 5e-11, BDF 5e-10 and 3e-10. The bound, 1e-8,
is 20× the largest of these; a term wrong in a peer's equations moves the final state by far
more (test_bound_resolves_a_wrong_term: the weight decay 0.3 instead of 0.1). A schedule of two
segments checks that each peer restarts at the input switch with the new input.

Run: LEARNFLOW_BIN=build/learnflow LEARNFLOW_CVODE_BENCH=build/bench/learnflow_cvode_bench \
     /usr/bin/python3 tests/python/test_bench_peers.py -v
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
CVODE = os.environ.get("LEARNFLOW_CVODE_BENCH", "")
sys.path.insert(0, str(ROOT / "bench"))
import wp_bench  # noqa: E402

BOUND = 1e-8

COSTATE = """
[network]
layers = [5, 6, 4]
activation = "tanh"
seed = 7
plastic = true
init = { weights = "normal", scale = 1.5 }
[model]
type = "costate"
c = 1.0
tau_x = 1.0
tau_lambda = 0.5
gamma = 2.0
kappa = 0.1
[input]
kind = "constant"
value = [0.9, -0.4, 0.3, -0.8, 0.5]
target = [0.5, -0.5, 0.25, 0.0]
[integrator]
t_end = 3.0
[output]
sample_dt = 3.0
"""

LEAKY = """
[network]
layers = [3, 7, 7, 2]
activation = "tanh"
seed = 5
init = { weights = "normal", scale = 1.2 }
[model]
type = "leaky"
c = 1.0
tau = 0.7
[input]
kind = "sequence"
present = 1.5
values = [[1.0, -0.5, 0.25], [-0.75, 0.5, 1.0]]
repeat = false
[integrator]
t_end = 3.0
[output]
sample_dt = 3.0
"""


class PeersSolveLearnflowsEquations(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.tmp = Path(self.dir.name)

    def tearDown(self):
        self.dir.cleanup()

    def reference(self, name, text):
        config = self.tmp / f"{name}.toml"
        config.write_text(text)
        run_file = self.tmp / f"{name}-ref.h5"
        subprocess.run([str(BIN), "run", str(config), "-o", str(run_file), "--quiet",
                        "--set", 'integrator.stepper="rkf78"', "--set", "integrator.rtol=1e-12",
                        "--set", "integrator.atol=1e-12"], check=True, capture_output=True)
        return config, run_file, wp_bench.learnflow_final(run_file)

    def check_scipy(self, run_file, ref):
        job = {"run_file": str(run_file), "out": str(self.tmp), "cap": 1e9,
               "runs": [{"method": "DOP853", "rtol": 1e-11, "repeats": 1}]}
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "wp_bench.py"),
                               "--scipy-worker", json.dumps(job)], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run = json.loads(proc.stdout)["runs"][0]
        state = wp_bench.npz_final(run["state"])
        self.assertEqual(set(state), set(ref))
        error = wp_bench.max_error(state, ref)
        self.assertLess(error, BOUND)
        return error

    def check_cvode(self, config, ref):
        shapes = {k: v.shape for k, v in ref.items()}
        errors = {}
        for method, rtol in (("adams", 1e-11), ("bdf", 1e-11)):
            state = self.tmp / f"{method}.f64"
            out = subprocess.run([CVODE, str(config), "--method", method, "--rtol", str(rtol),
                                  "--atol", str(rtol), "--repeats", "1", "--state-out", str(state)],
                                 check=True, capture_output=True, text=True).stdout
            res = json.loads(out)
            self.assertGreater(res["steps"], 0)
            final = wp_bench.cvode_final(state, res["blocks"], shapes)
            self.assertEqual(set(final), set(ref))
            errors[method] = wp_bench.max_error(final, ref)
            self.assertLess(errors[method], BOUND, method)
        return errors

    def test_costate(self):
        _, run_file, ref = self.reference("costate", COSTATE)
        self.assertEqual({k.split("/")[0] for k in ref}, {"x", "lambda", "W", "b"})
        self.check_scipy(run_file, ref)

    def test_leaky_two_segments(self):
        _, run_file, ref = self.reference("leaky", LEAKY)
        self.check_scipy(run_file, ref)

    @unittest.skipUnless(CVODE, "LEARNFLOW_CVODE_BENCH not set (libsundials-dev missing at build)")
    def test_cvode_costate(self):
        config, _, ref = self.reference("costate", COSTATE)
        self.check_cvode(config, ref)

    @unittest.skipUnless(CVODE, "LEARNFLOW_CVODE_BENCH not set (libsundials-dev missing at build)")
    def test_cvode_leaky_two_segments(self):
        config, _, ref = self.reference("leaky", LEAKY)
        self.check_cvode(config, ref)

    def test_bound_resolves_a_wrong_term(self):
        # The peer solving the equations with another weight decay κ must fail the check.
        _, wrong_file, _ = self.reference("wrong", COSTATE.replace("kappa = 0.1", "kappa = 0.3"))
        _, _, ref = self.reference("costate", COSTATE)
        with self.assertRaises(AssertionError):
            self.check_scipy(wrong_file, ref)


if __name__ == "__main__":
    unittest.main()
