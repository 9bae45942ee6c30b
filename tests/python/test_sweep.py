"""Parameter sweeps (issue 10): `learnflow sweep`, its index, restarts, MPI, and the plot.

Oracles: every row of the index is checked against the run file it names, read independently
with h5py (the final value of each metric, the solver's statistics and outcome, the swept values
in the file's own config text); a restarted sweep against an uninterrupted one (the same index
but for wall times) and against the modification times and inodes of the files finished before
the kill (not rewritten); the sweep under `mpirun -n 2` against the serial one.
Run with /usr/bin/python3 (h5py, numpy, tomllib); LEARNFLOW_BIN names the binary.
"""
import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
XOR = ROOT / "examples" / "xor_costate.toml"
# python/learnflow/sweep.py by its path: it needs h5py only, not the compiled module.
_SPEC = importlib.util.spec_from_file_location("learnflow_sweep",
                                               ROOT / "python" / "learnflow" / "sweep.py")
sweep_module = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(sweep_module)
read_index = sweep_module.read_index

# Columns that say how and where a sweep ran, not what it computed.
EXECUTION = {"wall_seconds", "rank", "host"}


def sweep_file(directory, sweep_table, base=XOR, name="sweep.toml"):
    path = Path(directory) / name
    path.write_text(f'base = "{base}"\n\n[sweep]\n{sweep_table}\n')
    return path


def learnflow(*args, **kwargs):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kwargs)


def same(a, b):
    """Equal column values, NaN equal to NaN."""
    if a.dtype == object or b.dtype == object:
        return list(a) == list(b)
    return np.array_equal(a, b, equal_nan=True)


GRID = '''set = { "integrator.t_end" = 2000.0, "output.sample_dt" = 80.0 }
grid = { "model.gamma" = [4.0, 8.0, 16.0], "network.seed" = [1, 2] }'''


class SweepTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def assert_same_index(self, a, b, ignore=EXECUTION):
        self.assertEqual(list(a), list(b))
        for name in a:
            if name not in ignore:
                self.assertTrue(same(a[name], b[name]), f"column {name}: {a[name]} != {b[name]}")

    def check_rows_against_files(self, out, index):
        """Every row's values are those of its run file, read with h5py."""
        for i, point in enumerate(index["point"]):
            with h5py.File(out / f"{point}.h5", "r") as f:
                config = tomllib.loads(f.attrs["config"])
                self.assertEqual(index["model.gamma"][i], config["model"]["gamma"])
                self.assertEqual(index["network.seed"][i], config["network"]["seed"])
                self.assertEqual(index["outcome"][i], f["solver"].attrs["outcome"])
                for attr in ("steps", "rejected", "rhs_evals"):
                    self.assertEqual(index[f"solver.{attr}"][i], f["solver"].attrs[attr], attr)
                samples = len(f["time"])
                self.assertEqual(index["samples"][i], samples)
                checked = 0

                def visit(name, node):
                    nonlocal checked
                    if (isinstance(node, h5py.Dataset) and node.ndim == 1 and len(node) == samples
                            and not name.startswith(("epoch", "phase"))):
                        column = "final." + name.replace("/", ".")
                        expected = node[-1]
                        value = index[column][i]
                        self.assertTrue(value == expected or (math.isnan(value) and math.isnan(expected)),
                                        f"{point} {column}: {value} != {expected}")
                        checked += 1

                f["metrics"].visititems(visit)
                self.assertGreaterEqual(checked, 2)  # loss, accuracy, ...

    def test_grid_with_two_jobs_index_matches_the_files(self):
        spec = sweep_file(self.dir, GRID)
        out = self.dir / "out"
        result = learnflow("sweep", spec, "-o", out, "--jobs", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        files = sorted(p.name for p in out.glob("*.h5") if p.name != "index.h5")
        self.assertEqual(files, [f"point-{i:04d}.h5" for i in range(6)])
        index = read_index(out)
        self.assertEqual(len(index["point"]), 6)
        # Grid order: keys alphabetically, the last varying fastest.
        self.assertEqual(list(index["model.gamma"]), [4.0, 4.0, 8.0, 8.0, 16.0, 16.0])
        self.assertEqual(list(index["network.seed"]), [1, 2, 1, 2, 1, 2])
        self.assertTrue(np.all(index["status"] == 0))
        self.assertTrue(np.all(index["wall_seconds"] > 0))
        self.check_rows_against_files(out, index)
        # index.csv holds the same table.
        lines = (out / "index.csv").read_text().splitlines()
        self.assertEqual(lines[0].split(","), list(index))
        self.assertEqual(len(lines), 7)
        row = dict(zip(lines[0].split(","), lines[3].split(",")))
        self.assertEqual(float(row["model.gamma"]), index["model.gamma"][2])
        self.assertEqual(float(row["final.loss"]), index["final.loss"][2])
        # The same index as a pandas DataFrame, when pandas is installed.
        table = sweep_module.open_sweep(out)
        if not isinstance(table, dict):
            self.assertEqual(list(table.columns), list(index))
            self.assertEqual(list(table["point"]), list(index["point"]))
        # The plot tool draws a line with its spread, and a heatmap, from the index.
        for extra in (["--x", "model.gamma"], ["--x", "model.gamma", "--y", "network.seed"]):
            figure = self.dir / "figure.png"
            plot = subprocess.run([sys.executable, str(ROOT / "tools" / "plot"), "sweep", str(out),
                                   "--metric", "final.loss", *extra, "-o", str(figure)],
                                  capture_output=True, text=True, timeout=120)
            self.assertEqual(plot.returncode, 0, plot.stderr)
            self.assertGreater(figure.stat().st_size, 1000)
        plot = subprocess.run([sys.executable, str(ROOT / "tools" / "plot"), "sweep", str(out),
                               "--metric", "final.los", "--x", "model.gamma"],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(plot.returncode, 2)
        self.assertIn("final.los", plot.stderr)
        # Run again: everything is recorded, nothing runs, the index is the same.
        before = {p.name: p.stat().st_mtime_ns for p in out.glob("point-*.h5")}
        again = learnflow("sweep", spec, "-o", out, "--jobs", "2")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("(0 run now)", again.stderr)
        self.assertEqual(before, {p.name: p.stat().st_mtime_ns for p in out.glob("point-*.h5")})
        self.assert_same_index(read_index(out), index, ignore=set())

    def wait_for_records(self, out, count, process):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(list(out.glob("*.done"))) >= count:
                return True
            if process.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def test_fitted_rates_and_wave_speeds_in_the_index(self):
        # dtp: rate.<layer>.fitted and .predicted are the medians over the target phases of the
        # rates the run stored (attributes of /metrics/relaxation/residual/<layer>); a wave run:
        # wave.<kind>.speed is the median over the measured segments of the least-squares front
        # speed, computed here again from /waves and the schedule with numpy. Medians of an even
        # count interpolate (numpy and learnflow may round that last step differently): 1e-14.
        dtp = sweep_file(self.dir, '''set = { "integrator.t_end" = 180.0, "output.sample_dt" = 1.0 }
grid = { "model.decoder_noise" = [0.0, 0.3] }''', base=ROOT / "examples" / "dtp_relaxation.toml",
                         name="dtp.toml")
        wave = sweep_file(self.dir, '''grid = { "model.tau_lambda" = [0.5, 1.0] }''',
                          base=ROOT / "examples" / "backward_wave.toml", name="wave.toml")
        checked = {"rate": 0, "wave": 0}
        for spec in (dtp, wave):
            out = self.dir / spec.stem
            result = learnflow("sweep", spec, "-o", out, "--jobs", "2")
            self.assertEqual(result.returncode, 0, result.stderr)
            index = read_index(out)
            for i, point in enumerate(index["point"]):
                with h5py.File(out / f"{point}.h5", "r") as f:
                    residuals = f.get("metrics/relaxation/residual")
                    for layer in (residuals or {}):
                        for name, column in (("fitted_rate", "fitted"), ("predicted_rate", "predicted")):
                            rates = np.asarray(residuals[layer].attrs[name])
                            expected = np.median(rates[np.isfinite(rates)])
                            value = index[f"rate.{layer}.{column}"][i]
                            self.assertTrue(np.isfinite(value))
                            self.assertAlmostEqual(value, expected, delta=1e-14 * abs(expected))
                            checked["rate"] += 1
                    if "waves" not in f:
                        continue
                    populations = f["network"].attrs["populations"].split(",")
                    schedule = f["schedule"]
                    starts = [float(schedule.attrs["t0"]), *schedule["breakpoints"][()]]
                    for kind in ("x", "h", "lambda"):
                        if kind not in f["waves"]:
                            continue
                        speeds = []
                        for k in range(len(f["waves"][kind][populations[-1]])):
                            depth, delay = [], []
                            for d, population in enumerate(populations):
                                if population in f["waves"][kind]:
                                    arrival = f["waves"][kind][population][k]
                                    if np.isfinite(arrival):
                                        depth.append(d)
                                        delay.append(arrival - starts[k])
                            if len(depth) >= 2:
                                speeds.append(1.0 / np.polyfit(depth, delay, 1)[0])
                        expected = np.median(speeds) if speeds else np.nan
                        value = index[f"wave.{kind}.speed"][i]
                        self.assertTrue(np.isfinite(value), f"{point} wave.{kind}.speed")
                        self.assertAlmostEqual(value, expected, delta=1e-9 * abs(expected))
                        checked["wave"] += 1
        self.assertGreaterEqual(checked["rate"], 2 * 2 * 3)  # 2 points, 2 rates, ≥ 3 hidden layers
        self.assertGreaterEqual(checked["wave"], 2 * 2)      # 2 points, x and λ

    def test_killed_sweep_restarts_where_it_stopped(self):
        # Points of about a second each; six of them, two at a time.
        table = '''set = { "integrator.t_end" = 150000.0 }
grid = { "model.gamma" = [4.0, 8.0, 16.0], "network.seed" = [1, 2] }'''
        spec = sweep_file(self.dir, table)
        reference = self.dir / "reference"
        result = learnflow("sweep", spec, "-o", reference, "--jobs", "2")
        self.assertEqual(result.returncode, 0, result.stderr)

        out = self.dir / "out"
        args = [str(BIN), "sweep", str(spec), "-o", str(out), "--jobs", "2"]
        # SIGKILL to the sweep's whole process group (the sweep and its points), midway.
        process = subprocess.Popen(args, stderr=subprocess.DEVNULL, start_new_session=True)
        self.assertTrue(self.wait_for_records(out, 1, process), "no point finished")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        done = sorted(p.stem for p in out.glob("*.done"))
        self.assertLess(len(done), 6, "the sweep ended before the kill")
        self.assertFalse((out / "index.h5").exists())
        finished = {name: (out / f"{name}.h5").stat() for name in done}

        # SIGTERM to the sweep alone: it passes it on, and records no stopped point.
        process = subprocess.Popen(args, stderr=subprocess.PIPE, start_new_session=True)
        self.assertTrue(self.wait_for_records(out, len(done) + 1, process))
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
        if process.returncode == 0:
            self.skipTest("the sweep finished before SIGTERM reached it")
        self.assertEqual(process.returncode, 128 + signal.SIGTERM, err)
        self.assertIn("run the same command again", err.decode())
        for name in (p.stem for p in out.glob("*.done")):
            record = (out / f"{name}.done").read_text()
            self.assertIn("status 0", record)

        result = learnflow("sweep", *args[2:])
        self.assertEqual(result.returncode, 0, result.stderr)
        for name, stat in finished.items():
            now = (out / f"{name}.h5").stat()
            self.assertEqual((now.st_ino, now.st_mtime_ns), (stat.st_ino, stat.st_mtime_ns),
                             f"{name} was run again")
        self.assert_same_index(read_index(out), read_index(reference))

        # A changed sweep file is refused in that directory, which is left as it was.
        spec.write_text(spec.read_text().replace("16.0", "32.0"))
        changed = learnflow("sweep", spec, "-o", out)
        self.assertEqual(changed.returncode, 2)
        self.assertIn("sweep.manifest", changed.stderr)
        self.assertIn("model.gamma=32.0", changed.stderr)

    def test_mpi_gives_the_serial_index(self):
        # CI sets LEARNFLOW_REQUIRE_MPI=1: there a missing mpirun or an MPI-less build fails.
        required = os.environ.get("LEARNFLOW_REQUIRE_MPI") == "1"
        mpirun = shutil.which("mpirun")
        if mpirun is None:
            self.assertFalse(required, "mpirun not found, and LEARNFLOW_REQUIRE_MPI=1")
            self.skipTest("mpirun not found (apt-get install openmpi-bin)")
        spec = sweep_file(self.dir, GRID)
        serial = self.dir / "serial"
        result = learnflow("sweep", spec, "-o", serial, "--jobs", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        parallel = self.dir / "mpi"
        result = subprocess.run([mpirun, "-n", "2", "--oversubscribe", "--allow-run-as-root",
                                 str(BIN), "sweep", str(spec), "-o", str(parallel)],
                                capture_output=True, text=True, timeout=600)
        if "built without MPI" in result.stderr:
            self.assertFalse(required, "learnflow was built without MPI, and LEARNFLOW_REQUIRE_MPI=1")
            self.skipTest("learnflow was built without MPI (LEARNFLOW_MPI=OFF)")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("on each of 2 MPI ranks", result.stderr)
        index = read_index(parallel)
        self.assert_same_index(index, read_index(serial))
        # Both ranks took points (each asks for its first point as soon as MPI is up).
        self.assertEqual(sorted(set(index["rank"])), [0, 1])
        self.check_rows_against_files(parallel, index)

    def test_failing_point_is_recorded_and_the_others_finish(self):
        # 20 steps cannot reach t_end: that point stops with exit status 3 (step limit).
        spec = sweep_file(self.dir, '''set = { "integrator.t_end" = 2000.0 }
grid = { "integrator.max_steps" = [1000000, 20, 1000000] }''')
        out = self.dir / "out"
        result = learnflow("sweep", spec, "-o", out, "--jobs", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("1 of 3 points failed", result.stderr)
        index = read_index(out)
        self.assertEqual(list(index["status"]), [0, 3, 0])
        self.assertEqual(list(index["outcome"])[0], "success")
        self.assertNotEqual(index["outcome"][1], "success")
        self.assertIn("numerical failure", index["message"][1])
        self.assertIn(" point-0001.h5", index["message"][1])  # named without its directory
        with h5py.File(out / "point-0001.h5", "r") as f:
            self.assertEqual(index["outcome"][1], f["solver"].attrs["outcome"])
            self.assertEqual(index["solver.steps"][1], f["solver"].attrs["steps"])
        self.assertTrue(np.isfinite(index["final.loss"][2]))

    def test_bad_key_exits_2_before_any_run(self):
        spec = sweep_file(self.dir, 'grid = { "model.gama" = [4.0, 8.0], "network.seed" = [1, 2] }')
        out = self.dir / "out"
        result = learnflow("sweep", spec, "-o", out)
        self.assertEqual(result.returncode, 2)
        self.assertIn("model.gama", result.stderr)
        self.assertIn(f"{spec}:4", result.stderr)  # where the sweep file writes it
        self.assertIn("gamma", result.stderr)      # the suggestion
        self.assertFalse(out.exists())
        # A bad value in the last point only: still nothing runs.
        spec = sweep_file(self.dir, 'grid = { "model.gamma" = [8.0, -1.0] }')
        result = learnflow("sweep", spec, "-o", out)
        self.assertEqual(result.returncode, 2)
        self.assertIn("model.gamma", result.stderr)
        self.assertIn("point-0001", result.stderr)
        self.assertFalse(out.exists())
        # The sweep table itself.
        for table, words in (('zip = { "model.gamma" = [1.0, 2.0], "network.seed" = [1] }',
                              ["equal length", "network.seed"]),
                             ('random = { n = 3, "model.gamma" = { normal = [0, 1] } }',
                              ["unknown distribution", "normal"]),
                             ('grid = { "model.gamma" = [1.0] }\nzip = { "model.gamma" = [2.0] }',
                              ["swept twice"]),
                             ('gird = { "model.gamma" = [1.0] }', ["gird", "grid"])):
            spec = sweep_file(self.dir, table)
            result = learnflow("sweep", spec, "-o", out)
            self.assertEqual(result.returncode, 2, table)
            for word in words:
                self.assertIn(word, result.stderr, table)
            self.assertFalse(out.exists())

    def listing(self, spec):
        result = learnflow("sweep", spec, "-o", self.dir / "unused", "--list")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertFalse((self.dir / "unused").exists())
        return [dict(word.split("=", 1) for word in line.split()[1:])
                for line in result.stdout.splitlines() if line.startswith("point-")]

    def test_zip_and_random_are_deterministic(self):
        table = '''zip = { "model.gamma" = [2.0, 4.0, 8.0], "network.seed" = [7, 8, 9] }
random = { n = 4, seed = 11, "model.tau_x" = { log_uniform = [0.5, 2.0] }, "model.c" = { uniform = [0.9, 1.1] }, "network.activation" = { choice = ["tanh", "logistic"] }, "integrator.max_steps" = { int_uniform = [100000, 100009] } }'''
        spec = sweep_file(self.dir, table)
        points = self.listing(spec)
        self.assertEqual(len(points), 12)
        self.assertEqual(points, self.listing(spec))  # the same on every call
        for p in points:  # zipped values stay together
            self.assertEqual({"2.0": "7", "4.0": "8", "8.0": "9"}[p["model.gamma"]], p["network.seed"])
            self.assertTrue(0.5 <= float(p["model.tau_x"]) <= 2.0)
            self.assertTrue(0.9 <= float(p["model.c"]) <= 1.1)
            self.assertIn(p["network.activation"].strip("'\""), ("tanh", "logistic"))
            self.assertTrue(100000 <= int(p["integrator.max_steps"]) <= 100009)
        samples = {p["model.tau_x"] for p in points}
        self.assertEqual(len(samples), 4)  # four samples, repeated for each zip row
        other = sweep_file(self.dir, table.replace("seed = 11", "seed = 12"))
        self.assertNotEqual({p["model.tau_x"] for p in self.listing(other)}, samples)
        # The sampled values reach the runs exactly (a short run of each point).
        spec = sweep_file(self.dir, table.replace("zip = {", 'set = { "integrator.t_end" = 200.0 }\nzip = {'))
        out = self.dir / "out"
        result = learnflow("sweep", spec, "-o", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        index = read_index(out)
        for i, point in enumerate(index["point"]):
            with h5py.File(out / f"{point}.h5", "r") as f:
                config = tomllib.loads(f.attrs["config"])
            self.assertEqual(index["model.tau_x"][i], config["model"]["tau_x"])
            self.assertEqual(index["model.c"][i], config["model"]["c"])
            self.assertEqual(index["network.activation"][i], config["network"]["activation"])

    def test_example_sweep_validates(self):
        # examples/sweeps/xor_window_gamma.toml (README: Sweeps): its 120 points, every one valid,
        # 600 epochs each (t_end = 600·4P zipped with P).
        points = self.listing(ROOT / "examples" / "sweeps" / "xor_window_gamma.toml")
        self.assertEqual(len(points), 120)
        for p in points:
            self.assertEqual(float(p["integrator.t_end"]), 600 * 4 * float(p["input.present"]))
            self.assertEqual(float(p["output.sample_dt"]), 4 * float(p["input.present"]))

    def test_size_limits_need_force(self):
        spec = sweep_file(self.dir, 'grid = { "network.seed" = [%s] }' % ", ".join(map(str, range(1001))))
        out = self.dir / "out"
        result = learnflow("sweep", spec, "-o", out)
        self.assertEqual(result.returncode, 2)
        self.assertIn("1001 points", result.stderr)
        self.assertIn("--force", result.stderr)
        self.assertFalse(out.exists())
        # Three points of about 4 GB each (4.8e7 samples of the recorded states).
        spec = sweep_file(self.dir, '''set = { "output.sample_dt" = 0.001 }
grid = { "network.seed" = [1, 2, 3] }''')
        result = learnflow("sweep", spec, "-o", out)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("estimated at", result.stderr)
        self.assertIn("--force", result.stderr)
        self.assertFalse(out.exists())


if __name__ == "__main__":
    unittest.main()
