"""The learnflow Python module (python/, built into build/python): run() gives the CLI's datasets
bit for bit on every example (a dict config the TOML one's, one thread two threads'), errors
name the key as the CLI does, open() reads a file being written (SWMR) and one of a killed run
as prefixes of the complete run, SIGINT stops a run cleanly, and learnflow.plot draws on any
axes exactly the data of the file.

Run: PYTHONPATH=build/python LEARNFLOW_BIN=build/learnflow \\
     /usr/bin/python3 tests/python/test_python_module.py -v
"""

import contextlib
import importlib.util
import os
import signal
import subprocess
import tempfile
import textwrap
import time
import tomllib
import unittest
from pathlib import Path

import h5py
import numpy as np
from matplotlib.figure import Figure

import learnflow

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
PYTHON = "/usr/bin/python3"

# Every example, shortened (a few input switches; training runs: one epoch on a small part of
# the data), as --set overrides.
SHORT = {
    "forward_wave.toml": {"integrator.t_end": 6.0},
    "backward_wave.toml": {"integrator.t_end": 20.0},
    "dtp_relaxation.toml": {"integrator.t_end": 60.0},
    "xor_costate.toml": {"integrator.t_end": 100.0},
    "inertia_xor.toml": {"integrator.t_end": 100.0},
    "gaitprop_patterns.toml": {"integrator.t_end": 30.0},
    "digits_costate.toml": {"train.epochs": 1, "data.test_fraction": 0.9},
    "digits_backprop.toml": {"train.epochs": 1, "data.test_fraction": 0.9},
    "digits_gaitprop.toml": {"train.epochs": 1, "data.test_fraction": 0.9},
    "digits_dtp.toml": {"train.epochs": 1, "data.test_fraction": 0.9},
    "fashion_mnist_costate.toml": {"train.epochs": 1, "data.limit": 128},
    "convergence_until.toml": {},
    "eqprop_xor.toml": {"integrator.t_end": 120.0},
    "eqprop_digits.toml": {"train.epochs": 1, "data.test_fraction": 0.9},
    "holonomic_chain.toml": {"integrator.t_end": 10.0},
    "holonomic_xor.toml": {"integrator.t_end": 20.0},
    "gnn_karate.toml": {"integrator.t_end": 20.0},
    "gnn_planted_clique.toml": {"integrator.t_end": 20.0},
    "gnn_sbm.toml": {"integrator.t_end": 10.0},
}

# A leaky network driven by a sine: it never settles, so it keeps stepping for a few seconds
# (the live and killed file tests); only norms are recorded, flushed every 0.05 s.
SLOW = """\
[network]
layers = [3, 48, 48, 3]
seed = 5
[input]
kind = "sine"
amplitude = [1.0, 0.5, -0.7]
frequency = 2.0
[integrator]
rtol = 1e-12
atol = 1e-12
t_end = 600.0
[output]
sample_dt = 0.01
record = { x = "norm" }
residual = true
flush_every = 10
flush_seconds = 0.05
"""


def cli(*args, cwd=None):
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def opened(source):
    """An HDF5 file to read: a path (opened here), or a learnflow.Run's open file."""
    if isinstance(source, learnflow.Run):
        return contextlib.nullcontext(source.file)
    return h5py.File(source, "r")


def datasets(source):
    """{name: array} of every dataset of an HDF5 file (a path or a learnflow.Run)."""
    found = {}
    with opened(source) as f:
        f.visititems(lambda name, node: found.__setitem__(name, node[()])
                     if isinstance(node, h5py.Dataset) else None)
    return found


def attributes(source):
    """{object path: {name: value}} of every attribute but the creation time."""
    found = {}
    with opened(source) as f:
        def visit(name, node):
            found[name] = {key: value for key, value in node.attrs.items()}
        visit("/", f)
        f.visititems(visit)
    found["/"].pop("created")
    for values in found.values():  # how long the run took: /solver and the adjoint's
        values.pop("wall_seconds", None)
    return found


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class PythonModuleTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def assertSameFiles(self, a, b, ignore_attributes=()):
        left, right = datasets(a), datasets(b)
        self.assertEqual(sorted(left), sorted(right))
        for name in left:
            self.assertTrue(same_bits(left[name], right[name]), name)
        left, right = attributes(a), attributes(b)
        for name in ignore_attributes:
            left["/"].pop(name), right["/"].pop(name)
        self.assertEqual(sorted(left), sorted(right))
        for name in left:
            self.assertEqual(sorted(left[name]), sorted(right[name]), name)
            for key in left[name]:
                self.assertTrue(same_bits(left[name][key], right[name][key]), f"{name} {key}")

    def test_every_example_equals_the_cli_bit_for_bit(self):
        examples = sorted((ROOT / "examples").glob("*.toml"))
        self.assertTrue(examples)
        for config in examples:
            with self.subTest(example=config.name):
                self.assertIn(config.name, SHORT, "new example: shorten it here")
                short = SHORT[config.name]
                by_cli = self.dir / f"{config.stem}_cli.h5"
                args = ["run", config, "-o", by_cli, "--threads", 1, "--quiet"]
                for key, value in short.items():
                    args += ["--set", f"{key}={value}"]
                result = cli(*args, cwd=self.dir)
                self.assertEqual(result.returncode, 0, result.stderr)
                by_python = self.dir / f"{config.stem}_python.h5"
                run = learnflow.run(config, set=short, output=by_python, threads=1)
                self.assertEqual(run.solver["outcome"], "success")
                self.assertEqual(run.report["samples"], len(run.time))
                run.close()
                self.assertSameFiles(by_cli, by_python)

    def test_a_run_in_memory_writes_nothing_and_equals_one_written(self):
        # A wave run, a training run (tables, evaluations) and the exact adjoint (its file is
        # closed during the backward sweep when it is on disk): each kept in memory equals the
        # run written to a file, dataset for dataset and attribute for attribute, and no file
        # appears anywhere: not output.file in the working directory, not in a temporary
        # directory of its own (TMPDIR, tempfile's), not a checkpoint.
        cases = (("backward_wave.toml", {"integrator.t_end": 8.0}),
                 ("digits_costate.toml", SHORT["digits_costate.toml"]),
                 ("xor_costate.toml", {"integrator.t_end": 20.0, "model.mode": "adjoint"}))
        work = self.dir / "work"
        work.mkdir()
        temporary = self.dir / "tmp"  # this process's alone: other tests use /tmp meanwhile
        temporary.mkdir()
        for name, short in cases:
            with self.subTest(example=name):
                config = ROOT / "examples" / name
                written = self.dir / f"{config.stem}.h5"
                learnflow.run(config, set=short, output=written, threads=1).close()
                cwd, saved = os.getcwd(), (os.environ.get("TMPDIR"), tempfile.tempdir)
                os.chdir(work)
                os.environ["TMPDIR"], tempfile.tempdir = str(temporary), str(temporary)
                try:
                    kept = learnflow.run(config, set=short, threads=1)
                finally:
                    os.chdir(cwd)
                    if saved[0] is None:
                        del os.environ["TMPDIR"]
                    else:
                        os.environ["TMPDIR"] = saved[0]
                    tempfile.tempdir = saved[1]
                self.assertEqual(list(work.iterdir()), [])
                self.assertEqual(list(temporary.iterdir()), [])
                with kept:
                    self.assertIsNone(kept.path)
                    self.assertEqual(kept.name, "<in memory>")
                    self.assertEqual(kept.report["output"], "")
                    self.assertEqual(kept.report["samples"], len(kept.time))
                    self.assertSameFiles(written, kept)
                    self.assertIn("<in memory>", repr(kept))

    def test_a_run_in_memory_cannot_be_resumed(self):
        with self.assertRaises(learnflow.InputError) as raised:
            learnflow.run(ROOT / "examples" / "forward_wave.toml", resume=True)
        self.assertIn("cannot be resumed", str(raised.exception))

    def test_a_dict_config_equals_the_toml_file(self):
        for name, short in (("xor_costate.toml", {"integrator.t_end": 60.0}),
                            ("forward_wave.toml", {})):
            with self.subTest(example=name):
                path = ROOT / "examples" / name
                with open(path, "rb") as f:
                    tree = tomllib.load(f)
                a = learnflow.run(path, set=short, output=self.dir / "file.h5", threads=1)
                b = learnflow.run(tree, set=short, output=self.dir / "dict.h5", threads=1)
                self.assertEqual(a.config, b.config)
                a.close(), b.close()
                # The stored text differs only in how tables are written (inline or not).
                self.assertSameFiles(self.dir / "file.h5", self.dir / "dict.h5",
                                     ignore_attributes=("config",))
                (self.dir / "file.h5").unlink(), (self.dir / "dict.h5").unlink()

    def test_one_and_two_threads_give_the_same_bits(self):
        # Wide enough for the parallel paths (rows in chunks, the parallel vector algebra).
        config = {"network": {"layers": [16, 256, 256, 4], "seed": 2},
                  "model": {"type": "costate", "gamma": 10.0},
                  "input": {"kind": "step", "t0": 0.5, "value": [0.3] * 16,
                            "target": [0.1, -0.2, 0.3, 0.0]},
                  "integrator": {"t_end": 3.0},
                  "output": {"sample_dt": 0.1, "record": {"x": "all", "W": "norm"}}}
        one = learnflow.run(config, output=self.dir / "one.h5", threads=1)
        two = learnflow.run(config, output=self.dir / "two.h5", threads=2)
        self.assertEqual((one.attrs["threads"], two.attrs["threads"]), (1, 2))
        self.assertEqual((one.report["threads"], two.report["threads"]), (1, 2))
        one.close(), two.close()
        self.assertSameFiles(self.dir / "one.h5", self.dir / "two.h5", ignore_attributes=("threads",))

    def test_config_errors_name_the_key_as_the_cli(self):
        config = ROOT / "examples" / "xor_costate.toml"
        result = cli("run", config, "-o", self.dir / "x.h5", "--set", "model.gamam=8")
        self.assertEqual(result.returncode, 2)
        with self.assertRaises(learnflow.ConfigError) as caught:
            learnflow.run(config, set={"model.gamam": 8}, output=self.dir / "x.h5")
        self.assertEqual(caught.exception.key, "model.gamam")
        self.assertEqual(result.stderr, f"learnflow: error: {caught.exception}\n")
        self.assertIn("did you mean 'model.gamma'", str(caught.exception))
        self.assertFalse((self.dir / "x.h5").exists())
        # A bad value in a dict: the dotted key, and <dict> for where it was written.
        with self.assertRaises(learnflow.ConfigError) as caught:
            learnflow.validate({"network": {"layers": [2, 3, 1]}, "input": {"value": [1.0, 0.0]},
                                "integrator": {"t_end": 1.0, "rtol": -1.0}})
        self.assertEqual((caught.exception.key, caught.exception.where),
                         ("integrator.rtol", "<dict>"))
        self.assertEqual(str(caught.exception), "<dict>: integrator.rtol: must be > 0, got -1")
        with self.assertRaises(learnflow.ConfigError) as caught:
            learnflow.run({"network": {"layers": [2, 1]}, "integrator": {"t_end": {1}}})
        self.assertEqual(caught.exception.key, "integrator.t_end")
        # A file that does not exist: the CLI's message, as a DataFileError.
        with self.assertRaises(learnflow.DataFileError) as caught:
            learnflow.run(self.dir / "missing.toml")
        self.assertIn("cannot open the config file", str(caught.exception))

    def test_open_reads_a_live_file_and_a_killed_one_as_prefixes_of_the_run(self):
        config = self.dir / "slow.toml"
        config.write_text(SLOW)
        live = self.dir / "live.h5"
        writer = subprocess.Popen([str(BIN), "run", config, "-o", live, "--quiet", "--threads", "1"])
        seen = []
        try:
            run = self.wait_for_samples(live)
            self.assertTrue(run.live)
            self.assertFalse(run.finished)
            while writer.poll() is None and len(seen) < 4:
                run.refresh()
                norms = run.state("x", "layer1")
                self.assertEqual(len(norms), len(run.time))  # cut to the samples of /time
                seen.append((run.time.copy(), norms.copy(), run.metrics["residual/x"].copy()))
                time.sleep(0.2)
            run.close()
        finally:
            self.assertEqual(writer.wait(timeout=300), 0)
        self.assertGreaterEqual(len(seen), 2, "the run ended before it was read twice")
        self.assertGreater(len(seen[-1][0]), len(seen[0][0]), "no samples came in")
        with learnflow.open(live) as complete:
            self.assertFalse(complete.live)
            self.assertEqual(complete.solver["outcome"], "success")
            full = complete.time, complete.state("x", "layer1"), complete.metrics["residual/x"]
            for times, norms, residual in seen:
                for part, whole in zip((times, norms, residual), full):
                    self.assertTrue(same_bits(part, whole[:len(part)]))
        # The same run killed: its file opens (marked open by its writer) up to its last flush.
        killed = self.dir / "killed.h5"
        writer = subprocess.Popen([str(BIN), "run", config, "-o", killed, "--quiet", "--threads", "1"])
        try:
            self.wait_for_samples(killed, 200).close()
        finally:
            writer.kill()
            writer.wait()
        with learnflow.open(killed) as run:
            self.assertTrue(run.live)
            self.assertEqual(run.solver, {})
            self.assertGreaterEqual(len(run.time), 200)
            self.assertLess(len(run.time), len(full[0]))
            for part, whole in zip((run.time, run.state("x", "layer1"), run.metrics["residual/x"]),
                                   full):
                self.assertTrue(same_bits(part, whole[:len(part)]))

    def wait_for_samples(self, path, count=1):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                run = learnflow.open(path)
                if len(run.time) >= count:
                    return run
                run.close()
            except (OSError, KeyError):
                pass  # not created yet, or its first objects not flushed
            time.sleep(0.05)
        self.fail(f"{path}: no {count} samples within 120 s")

    def test_sigint_stops_a_python_run_cleanly(self):
        config = self.dir / "slow.toml"
        config.write_text(SLOW)
        out = self.dir / "interrupted.h5"
        child = subprocess.Popen([PYTHON, "-c", textwrap.dedent(f"""
            import learnflow
            try:
                learnflow.run({str(config)!r}, output={str(out)!r}, threads=1)
            except KeyboardInterrupt as error:
                print("KeyboardInterrupt:", error)
            """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ))
        try:
            self.wait_for_samples(out, 50).close()
            child.send_signal(signal.SIGINT)
            stdout, stderr = child.communicate(timeout=120)
        finally:
            child.kill()
        self.assertEqual(child.returncode, 0, stderr)
        self.assertIn("KeyboardInterrupt: learnflow: interrupted by signal 2", stdout)
        self.assertIn(f"kept in {out}; continue with resume=True", stdout)
        with learnflow.open(out) as run:
            self.assertFalse(run.live)  # closed normally
            self.assertEqual(run.solver["outcome"], "interrupted")
            self.assertGreaterEqual(len(run.time), 50)
        # resume=True continues it to the end, as --resume.
        resumed = learnflow.run(config, output=out, threads=1, resume=True)
        self.assertEqual(resumed.solver["outcome"], "success")
        self.assertIsNotNone(resumed.report["resumed_at"])

    def test_reader(self):
        # t_end past the target's switch at 40: two input segments.
        costate = learnflow.run(ROOT / "examples" / "backward_wave.toml",
                                set={"integrator.t_end": 50.0}, output=self.dir / "bw.h5")
        with costate, h5py.File(self.dir / "bw.h5", "r") as f:
            self.assertTrue(same_bits(costate.time, f["time"][()]))
            for kind, name in costate.blocks:
                self.assertTrue(same_bits(costate.state(kind, name), f[f"state/{kind}/{name}"][()]))
            self.assertEqual(costate.state("x", "layer1").shape[1], f["state/x/layer1"].shape[1])
            self.assertEqual(costate.config, tomllib.loads(f.attrs["config"]))
            self.assertEqual(costate.solver["steps"], f["solver"].attrs["steps"])
            initial = costate.parameters()
            self.assertTrue(same_bits(initial["W/layer1"], f["parameters/W/layer1"][()]))
            self.assertNotIn("final/W/layer1", initial)
            final = costate.parameters(final=True)
            self.assertTrue(same_bits(final["W/layer1"], f["parameters/final/W/layer1"][()]))
            for kind, arrivals in costate.waves.items():
                for population, values in arrivals.items():
                    self.assertTrue(same_bits(values, f[f"waves/{kind}/{population}"][()]))
            segments = costate.segments
            self.assertGreater(len(segments), 1)
            part = costate.segment(1)
            start, end = segments[1]
            self.assertTrue(np.all((part.time >= start) & (part.time <= end)))
            inside = costate.time[(costate.time >= start) & (costate.time <= end)]
            self.assertTrue(same_bits(part.time, inside))
            first = np.searchsorted(costate.time, start)
            self.assertTrue(same_bits(part.state("lambda", "layer2"),
                                      costate.state("lambda", "layer2")[first:first + len(inside)]))
            self.assertTrue(same_bits(part.metrics["loss"],
                                      costate.metrics["loss"][first:first + len(inside)]))
            with self.assertRaises(LookupError):
                costate.epoch(1)
            if importlib.util.find_spec("xarray"):
                data = costate.to_xarray()
                self.assertTrue(same_bits(data["time"].values, costate.time))
                self.assertTrue(same_bits(data["state/x/layer1"].values, costate.state("x", "layer1")))
        # A training run: batches [T, B, n], epochs.
        training = learnflow.run(ROOT / "examples" / "digits_costate.toml",
                                 set={"train.epochs": 2, "data.test_fraction": 0.9,
                                      "output.record": {"x": "all"}, "output.examples": [0, 1, 2]},
                                 output=self.dir / "digits.h5")
        with training:
            x = training.state("x", "layer1")
            self.assertEqual(x.ndim, 3)
            self.assertEqual(x.shape[1:], (3, 64))
            self.assertEqual(len(training.epochs["test_accuracy"]), 2)
            self.assertIn("test_accuracy", training.initial_scores)
            second = training.epoch(2)
            self.assertGreater(len(second.time), 0)
            self.assertGreaterEqual(second.time[0], training.epochs["time"][0])
            self.assertEqual(second.time[-1], training.time[-1])
            with self.assertRaises(IndexError):
                training.epoch(3)

    def test_plot_functions_draw_the_data_of_the_file(self):
        run = learnflow.run(ROOT / "examples" / "forward_wave.toml", set={"output.residual": True},
                            output=self.dir / "fw.h5")
        with run:
            figure = Figure()
            axes = figure.add_subplot()
            self.assertIs(learnflow.plot.waves(run, ax=axes), axes)
            means = [line for line in axes.get_lines() if line.get_linestyle() != "None"]
            marks = [line for line in axes.get_lines() if line.get_marker() == "|"]
            names = [name for name in run.populations if ("x", name) in run.blocks]
            self.assertEqual([line.get_label() for line in means], names)
            for line, name in zip(means, names):
                self.assertTrue(same_bits(line.get_xdata(), run.time))
                self.assertTrue(np.array_equal(line.get_ydata(), run.state("x", name).mean(axis=1)))
            # The arrivals marked are the ones the run measured (README: they agree where every
            # sample is recorded), up to the rounding of the two computations.
            for mark, name in zip(marks, names):
                stored = run.waves["x"][name]
                np.testing.assert_allclose(mark.get_xdata(), stored[np.isfinite(stored)],
                                           rtol=1e-9, atol=0)
            heat = Figure().add_subplot()
            learnflow.plot.heatmap(run, ax=heat)
            self.assertEqual(heat.get_images()[0].get_array().shape[0],
                             sum(run.state("x", name).shape[1] for name in names))
            loss_axes = Figure().add_subplot()
            learnflow.plot.metrics(run, "residual", ax=loss_axes)
            (line,) = loss_axes.get_lines()
            self.assertTrue(np.array_equal(line.get_ydata(), run.metrics["residual/x"]))
            with self.assertRaises(learnflow.errors.PlotError):
                learnflow.plot.metrics(run, "alignment/cosine", ax=Figure().add_subplot())
        dtp = learnflow.run(ROOT / "examples" / "dtp_relaxation.toml",
                            set={"integrator.t_end": 60.0}, output=self.dir / "dtp.h5")
        with dtp:
            axes = Figure().add_subplot()
            learnflow.plot.relaxation(dtp, ax=axes)
            residuals = {line.get_label(): line.get_ydata() for line in axes.get_lines()}
            expected = {name[len("relaxation/residual/"):]: values
                        for name, values in dtp.metrics.items()
                        if name.startswith("relaxation/residual/")}
            self.assertEqual(residuals.keys(), expected.keys())
            for name, values in expected.items():
                self.assertTrue(np.array_equal(residuals[name], values))


if __name__ == "__main__":
    unittest.main()
