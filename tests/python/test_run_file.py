"""End-to-end tests of the run file (DESIGN §6), read back completely by h5py, an independent
HDF5 reader: attributes, the stored config, time, state records, parameters, network, schedule
and solver statistics; bit-identical results for 1 and 2 threads and for any chunking of the
stream; `learnflow info` against the Python implementation of the wave arrival times
(tools/plot arrivals).

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_run_file.py -v
"""

import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
EPS = np.finfo(float).eps

# Layered: a step of input at t = 1 relaxes to the feedforward pass (c = 1) well before t = 40.
# One record mode of each kind: all, every:3, none and norm.
LAYERED = """\
description = "record modes on a layered network"

[network]
layers = [3, 8, 6, 5, 4]
activation = "tanh"
seed = 7
init = { weights = "normal", scale = 1.2 }

[model]
type = "leaky"
c = 1.0
tau = 1.0

[input]
kind = "step"
t0 = 1.0
value = [1.0, -0.5, 0.25]

[integrator]
stepper = "dopri5"
rtol = 1e-8
atol = 1e-10
t_end = 40.0

[output]
file = "layered.h5"
sample_dt = 0.05
record = { x = "all", "x/layer2" = "every:3", "x/layer3" = "none", "x/layer4" = "norm" }
residual = true
"""
# The overrides of the layered runs; they must show in the stored config.
LAYERED_OVERRIDES = ("integrator.rtol=1e-10", "integrator.atol=1e-12")
LAYERED_SIZES = [3, 8, 6, 5, 4]
LAYERED_T = 801  # samples 0, 0.05, ..., 40

# A digraph: u -> h (dense, named "in"), a sparse recurrent projection h -> h from a CSV file,
# h -> y (dense, default name "h_y") into a linear output.
GRAPH = """\
[network]
activation = "tanh"
seed = 5
init = { weights = "normal", scale = 0.8, bias = "normal", bias_scale = 0.1 }

[[network.population]]
name = "u"
size = 3
role = "input"

[[network.population]]
name = "h"
size = 5

[[network.population]]
name = "y"
size = 2
role = "output"
activation = "linear"

[[network.projection]]
name = "in"
from = "u"
to = "h"

[[network.projection]]
name = "hh"
from = "h"
to = "h"
edges = "recurrent.csv"

[[network.projection]]
from = "h"
to = "y"

[input]
kind = "step"
t0 = 0.5
value = [0.5, -1.0, 0.25]

[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 40.0

[output]
file = "graph.h5"
sample_dt = 0.1
"""
# Edges src,dst[,weight]: the edge 3 -> 4 has no weight and is drawn from the init scheme.
GRAPH_CSV = "src,dst,weight\n0,1,0.4\n1,2,-0.3\n2,0,0.25\n3,4\n4,3,-0.2\n# self-loop\n2,2,0.1\n"
GRAPH_EDGES = {(0, 1): 0.4, (1, 2): -0.3, (2, 0): 0.25, (3, 4): None, (4, 3): -0.2, (2, 2): 0.1}

# Big enough for the parallel RHS of the leaky model (64·256 + 2·256² + 256·10 ≥ 32768 weights).
PARALLEL = """\
[network]
layers = [64, 256, 256, 256, 10]
seed = 5

[input]
kind = "sine"
amplitude = 1.0
frequency = 0.3

[integrator]
t_end = 3.0

[output]
file = "parallel.h5"
sample_dt = 0.05
"""


def learnflow(*args, cwd):
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def feedforward(weights, biases, u):
    """The feedforward pass of tanh layers: the fixed point of the layered leaky model (c = 1)."""
    h = u
    out = []
    for w, b in zip(weights, biases):
        h = np.tanh(w @ h + b)
        out.append(h)
    return out


class RunFileTestCase(unittest.TestCase):
    """Runs are made once per class, in a temporary directory."""

    @classmethod
    def setUpClass(cls):
        if not BIN.is_file():
            raise unittest.SkipTest(f"no learnflow binary at {BIN} (set LEARNFLOW_BIN)")
        cls.dir = Path(tempfile.mkdtemp(prefix="learnflow_run_file_test_"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def run_config(cls, name, text, *args):
        """Writes the config `name`.toml and runs it; returns the output path."""
        config = cls.dir / f"{name}.toml"
        config.write_text(text)
        output = cls.dir / f"{name}.h5"
        result = learnflow("run", config, "-o", output, "--quiet", *args, cwd=cls.dir)
        if result.returncode != 0:
            raise AssertionError(f"learnflow run {name} failed ({result.returncode}): "
                                 f"{result.stderr}")
        return output


class LayeredRunFileTest(RunFileTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        sets = [arg for assignment in LAYERED_OVERRIDES for arg in ("--set", assignment)]
        cls.path = cls.run_config("layered", LAYERED, "--threads", "1", *sets)
        # The same run recording every block completely.
        cls.all_path = cls.run_config("layered_all", LAYERED, "--threads", "1", *sets,
                                      "--set", 'output.record={ x = "all" }')
        cls.file = h5py.File(cls.path, "r")
        cls.all_file = h5py.File(cls.all_path, "r")

    @classmethod
    def tearDownClass(cls):
        cls.file.close()
        cls.all_file.close()
        super().tearDownClass()

    def test_root_attributes(self):
        attrs = self.file.attrs
        for name in ("learnflow_version", "model", "integrator", "created", "config"):
            self.assertIsInstance(attrs[name], str, name)
        for name in ("seed", "threads"):
            self.assertIsInstance(attrs[name], np.int64, name)
        self.assertRegex(attrs["learnflow_version"], r"^\d+\.\d+\.\d+")
        version = learnflow("--version", cwd=self.dir).stdout.strip()
        self.assertEqual(attrs["learnflow_version"], version)
        self.assertEqual(attrs["model"], "leaky")
        self.assertEqual(attrs["integrator"], "dopri5")
        self.assertEqual(attrs["seed"], 7)
        self.assertEqual(attrs["threads"], 1)
        created = datetime.datetime.strptime(attrs["created"], "%Y-%m-%dT%H:%M:%SZ")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.assertLess(abs(now - created), datetime.timedelta(days=1))

    def test_config_round_trips_with_overrides(self):
        stored = tomllib.loads(self.file.attrs["config"])
        expected = tomllib.loads(LAYERED)
        self.assertEqual(expected["integrator"]["rtol"], 1e-8)
        expected["integrator"]["rtol"] = 1e-10  # the --set overrides
        expected["integrator"]["atol"] = 1e-12
        self.assertEqual(stored, expected)
        # The second run replaced the whole record table.
        stored_all = tomllib.loads(self.all_file.attrs["config"])
        expected["output"]["record"] = {"x": "all"}
        self.assertEqual(stored_all, expected)

    def test_time(self):
        t = self.file["time"]
        self.assertEqual(t.dtype, np.float64)
        self.assertEqual(t.shape, (LAYERED_T,))
        t = t[()]
        self.assertTrue(np.all(np.diff(t) > 0))
        # Exact multiples k·sample_dt (computed as a product, as learnflow does).
        np.testing.assert_array_equal(t, np.arange(LAYERED_T) * 0.05)
        np.testing.assert_array_equal(t, self.all_file["time"][()])

    def test_record_modes(self):
        x = self.file["state/x"]
        self.assertEqual(sorted(x), ["layer1", "layer2", "layer4"])  # layer3: "none"
        self.assertNotIn("layer0", x)  # the input is clamped: no state
        expectations = {"layer1": ("all", 1, (LAYERED_T, 8)),
                        "layer2": ("every:3", 3, (math.ceil(LAYERED_T / 3), 6)),
                        "layer4": ("norm", 1, (LAYERED_T,))}
        for name, (record, stride, shape) in expectations.items():
            with self.subTest(block=name):
                self.assertEqual(x[name].dtype, np.float64)
                self.assertEqual(x[name].shape, shape)
                self.assertEqual(x[name].attrs["record"], record)
                self.assertEqual(x[name].attrs["stride"], stride)
        full = {name: self.all_file["state/x"][name][()] for name in ("layer1", "layer2",
                                                                      "layer3", "layer4")}
        for name, data in full.items():
            self.assertEqual(data.shape, (LAYERED_T, LAYERED_SIZES[int(name[-1])]))
        # Recording does not change the trajectory: the same bits, subsampled or reduced.
        np.testing.assert_array_equal(x["layer1"][()], full["layer1"])
        np.testing.assert_array_equal(x["layer2"][()], full["layer2"][::3])
        # The L2 norm of each row; a sum of n squares is exact to about n·eps relative.
        n = full["layer4"].shape[1]
        np.testing.assert_allclose(x["layer4"][()], np.linalg.norm(full["layer4"], axis=1),
                                   rtol=4 * n * EPS, atol=0)

    def test_metrics(self):
        # output.residual = true: metrics datasets, one value per sample, finite and >= 0.
        found = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("phase/"):
                found.append(name)
                self.assertEqual(obj.shape, (LAYERED_T,), name)
                self.assertTrue(np.all(np.isfinite(obj[()]) & (obj[()] >= 0)), name)

        self.file["metrics"].visititems(visit)
        self.assertTrue(found, "no /metrics dataset although output.residual = true")

    def test_parameters(self):
        for l in range(1, len(LAYERED_SIZES)):
            w = self.file[f"parameters/W/layer{l}"]
            self.assertEqual(w.shape, (LAYERED_SIZES[l], LAYERED_SIZES[l - 1]))
            # normal init: N(0, scale²/fan_in); a loose check that it is not zero or unscaled.
            self.assertLess(np.abs(w[()]).max(), 6 * 1.2 / math.sqrt(LAYERED_SIZES[l - 1]))
            self.assertGreater(np.abs(w[()]).max(), 0)
        for l, size in enumerate(LAYERED_SIZES):
            b = self.file[f"parameters/b/layer{l}"]
            self.assertEqual(b.shape, (size,))
            np.testing.assert_array_equal(b[()], np.zeros(size))  # default bias init: zeros
        # Same seed, same weights in both runs.
        for l in range(1, len(LAYERED_SIZES)):
            np.testing.assert_array_equal(self.file[f"parameters/W/layer{l}"][()],
                                          self.all_file[f"parameters/W/layer{l}"][()])

    def test_network(self):
        network = self.file["network"]
        names = [f"layer{l}" for l in range(len(LAYERED_SIZES))]
        self.assertEqual(network.attrs["populations"], ",".join(names))
        for l, (name, size) in enumerate(zip(names, LAYERED_SIZES)):
            attrs = network[f"population/{name}"].attrs
            self.assertEqual(attrs["size"], size)
            self.assertEqual(attrs["role"], "input" if l == 0 else
                             "output" if l == len(names) - 1 else "hidden")
            self.assertEqual(attrs["activation"], "tanh")
        self.assertEqual(sorted(network["projection"]), names[1:])
        for l in range(1, len(names)):
            attrs = network[f"projection/layer{l}"].attrs
            self.assertEqual((attrs["from"], attrs["to"]), (f"layer{l - 1}", f"layer{l}"))
            self.assertEqual((attrs["plastic"], attrs["sparse"]), (0, 0))

    def test_schedule(self):
        schedule = self.file["schedule"]
        np.testing.assert_array_equal(schedule["breakpoints"][()], [1.0])  # the step
        self.assertEqual(schedule.attrs["t0"], 0.0)
        self.assertEqual(schedule.attrs["t_end"], 40.0)

    def test_solver(self):
        solver = self.file["solver"].attrs
        self.assertEqual(solver["outcome"], "success")
        self.assertEqual(solver["message"], "")
        self.assertEqual(solver["t_final"], 40.0)
        self.assertGreater(solver["steps"], 0)
        self.assertGreaterEqual(solver["rejected"], 0)
        # dopri5 evaluates the RHS 6 times per attempted step (FSAL saves the 7th).
        self.assertGreaterEqual(solver["rhs_evals"], 6 * (solver["steps"] + solver["rejected"]))
        self.assertIsInstance(solver["wall_seconds"], np.float64)
        self.assertGreaterEqual(solver["wall_seconds"], 0.0)

    def test_final_state_is_the_feedforward_pass(self):
        # Re-analysis from the file alone: /parameters give the feedforward pass of the input.
        f = self.all_file
        weights = [f[f"parameters/W/layer{l}"][()] for l in range(1, len(LAYERED_SIZES))]
        biases = [f[f"parameters/b/layer{l}"][()] for l in range(1, len(LAYERED_SIZES))]
        expected = feedforward(weights, biases, np.array([1.0, -0.5, 0.25]))
        # After 39 time units the relaxation is complete to ~(g t)^3/3! e^-t < 1e-11 (gain
        # g <= 3); the solver's tolerances (1e-10) bound the rest.
        for l, h in enumerate(expected, start=1):
            np.testing.assert_allclose(f[f"state/x/layer{l}"][-1], h, rtol=0, atol=1e-7,
                                       err_msg=f"layer{l}")
        # Before the step the input is zero, so is every x (zero biases).
        before = self.file["time"][()] <= 1.0
        np.testing.assert_array_equal(f["state/x/layer1"][()][before], 0.0)


class GraphRunFileTest(RunFileTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        (cls.dir / "recurrent.csv").write_text(GRAPH_CSV)
        cls.path = cls.run_config("graph", GRAPH)
        cls.file = h5py.File(cls.path, "r")

    @classmethod
    def tearDownClass(cls):
        cls.file.close()
        super().tearDownClass()

    def test_network(self):
        network = self.file["network"]
        self.assertEqual(network.attrs["populations"], "u,h,y")
        expected = {"u": (3, "input", "tanh"), "h": (5, "hidden", "tanh"),
                    "y": (2, "output", "linear")}
        for name, (size, role, activation) in expected.items():
            attrs = network[f"population/{name}"].attrs
            self.assertEqual((attrs["size"], attrs["role"], attrs["activation"]),
                             (size, role, activation))
        projections = {"in": ("u", "h", 0), "hh": ("h", "h", 1), "h_y": ("h", "y", 0)}
        self.assertEqual(sorted(network["projection"]), sorted(projections))
        for name, (source, target, sparse) in projections.items():
            attrs = network[f"projection/{name}"].attrs
            self.assertEqual((attrs["from"], attrs["to"], attrs["sparse"], attrs["plastic"]),
                             (source, target, sparse, 0))

    def test_parameters(self):
        p = self.file["parameters"]
        self.assertEqual(p["W/in"].shape, (5, 3))
        self.assertEqual(p["W/h_y"].shape, (2, 5))
        self.assertEqual(p["b/u"].shape, (3,))
        self.assertEqual(p["b/h"].shape, (5,))
        self.assertEqual(p["b/y"].shape, (2,))
        np.testing.assert_array_equal(p["b/u"][()], 0.0)  # inputs have no bias
        self.assertTrue(np.all(p["b/h"][()] != 0.0))  # bias = "normal"

        # The sparse projection, dense: rows = targets, columns = sources.
        w = p["W/hh"][()]
        self.assertEqual(w.shape, (5, 5))
        drawn = w[4, 3]
        self.assertNotEqual(drawn, 0.0)
        expected = np.zeros((5, 5))
        for (src, dst), weight in GRAPH_EDGES.items():
            expected[dst, src] = drawn if weight is None else weight
        np.testing.assert_array_equal(w, expected)
        # And as an edge list of (src, dst, weight) rows.
        edges = p["edges/hh"][()]
        self.assertEqual(edges.shape, (len(GRAPH_EDGES), 3))
        self.assertEqual({(int(s), int(d)): v for s, d, v in edges},
                         {edge: drawn if weight is None else weight
                          for edge, weight in GRAPH_EDGES.items()})

    def test_states_and_schedule(self):
        t = self.file["time"][()]
        np.testing.assert_array_equal(t, np.arange(401) * 0.1)
        self.assertEqual(sorted(self.file["state/x"]), ["h", "y"])
        self.assertEqual(self.file["state/x/h"].shape, (401, 5))
        self.assertEqual(self.file["state/x/y"].shape, (401, 2))
        np.testing.assert_array_equal(self.file["schedule/breakpoints"][()], [0.5])
        self.assertEqual(self.file["solver"].attrs["outcome"], "success")
        self.assertEqual(self.file.attrs["seed"], 5)
        stored = tomllib.loads(self.file.attrs["config"])
        self.assertEqual(stored, tomllib.loads(GRAPH))

    def test_final_state_is_the_fixed_point(self):
        # Re-analysis from the file alone: x_h = tanh(W_in u + W_hh x_h + b_h), y = W x_h + b_y.
        # The recurrent loops have gains below 1/2, so x converges like e^{-t/2}: 1e-8 at t = 40.
        p = self.file["parameters"]
        u = np.array([0.5, -1.0, 0.25])
        h = self.file["state/x/h"][-1]
        y = self.file["state/x/y"][-1]
        np.testing.assert_allclose(h, np.tanh(p["W/in"][()] @ u + p["W/hh"][()] @ h + p["b/h"][()]),
                                   rtol=0, atol=1e-7)
        np.testing.assert_allclose(y, p["W/h_y"][()] @ h + p["b/y"][()], rtol=0, atol=1e-7)


class ThreadsTest(RunFileTestCase):
    """DESIGN §8: results do not depend on the number of OpenMP threads, bit for bit."""

    def test_one_and_two_threads_are_bit_identical(self):
        one = self.run_config("threads1", PARALLEL, "--threads", "1")
        two = self.run_config("threads2", PARALLEL, "--threads", "2")
        with h5py.File(one, "r") as a, h5py.File(two, "r") as b:
            self.assertEqual((a.attrs["threads"], b.attrs["threads"]), (1, 2))
            names = []
            a.visititems(lambda name, obj: names.append(name)
                         if isinstance(obj, h5py.Dataset) and
                         (name == "time" or name.startswith("state/")) else None)
            self.assertEqual(sorted(names), ["state/x/layer1", "state/x/layer2", "state/x/layer3",
                                             "state/x/layer4", "time"])
            for name in names:
                with self.subTest(dataset=name):
                    x, y = a[name][()], b[name][()]
                    self.assertEqual(x.dtype, np.float64)
                    self.assertEqual(x.shape, (61,) + x.shape[1:])
                    # Bits, not closeness (array_equal would also accept -0.0 == 0.0).
                    self.assertEqual(x.shape, y.shape)
                    self.assertEqual(x.tobytes(), y.tobytes())
            for stat in ("steps", "rejected", "rhs_evals"):
                self.assertEqual(a["solver"].attrs[stat], b["solver"].attrs[stat], stat)


# Rows of 65 and 67 doubles (long enough for the writer's streaming copy, and starting at every
# alignment within its buffers), many samples, and a step input so that every row differs.
CHUNKING = """\
[network]
layers = [5, 65, 67, 3]
seed = 9

[input]
kind = "step"
t0 = 0.5
value = [1.0, -0.5, 0.25, 0.75, -1.0]

[integrator]
t_end = 30.0
rtol = 1e-10
atol = 1e-12

[output]
file = "chunking.h5"
sample_dt = 0.01
"""


class ChunkingTest(RunFileTestCase):
    """How samples are buffered (chunk size, when chunks are handed to the writer thread, the
    flush schedule) must not change what is written: the same run written in chunks of 7 rows,
    flushed as often as possible, and in chunks of 1000 rows gives the same bytes, and the last
    row is the feedforward pass computed from /parameters."""

    def test_chunking_does_not_change_the_data(self):
        small = self.run_config("chunks7", CHUNKING, "--set", "output.flush_every=7",
                                "--set", "output.flush_seconds=0",
                                "--set", 'output.record={ x = "all", "x/layer2" = "every:3" }')
        large = self.run_config("chunks1000", CHUNKING, "--set", "output.flush_every=1000")
        with h5py.File(small, "r") as a, h5py.File(large, "r") as b:
            self.assertEqual(a["state/x/layer1"].chunks, (7, 65))
            self.assertEqual(b["state/x/layer1"].chunks, (1000, 65))
            self.assertEqual(a["time"].shape, (3001,))
            self.assertEqual(a["time"][()].tobytes(), b["time"][()].tobytes())
            for name in ("state/x/layer1", "state/x/layer3"):
                with self.subTest(dataset=name):
                    self.assertEqual(a[name].shape, b[name].shape)
                    self.assertEqual(a[name][()].tobytes(), b[name][()].tobytes())
            # every:3 keeps samples 0, 3, 6, … of the full record.
            every = a["state/x/layer2"][()]
            self.assertEqual(every.shape, (1001, 67))
            self.assertEqual(every.tobytes(), b["state/x/layer2"][()][::3].tobytes())
            weights = [b[f"parameters/W/layer{l}"][()] for l in (1, 2, 3)]
            biases = [b[f"parameters/b/layer{l}"][()] for l in (1, 2, 3)]
            expected = feedforward(weights, biases, np.array([1.0, -0.5, 0.25, 0.75, -1.0]))
            for l, h in enumerate(expected, start=1):
                np.testing.assert_allclose(b[f"state/x/layer{l}"][-1], h, rtol=0, atol=1e-8,
                                           err_msg=f"layer{l}")


# Costate in adjoint mode, big enough for the parallel RHS of both sweeps (2·128² multiply-adds).
PARALLEL_ADJOINT = """\
[network]
layers = [128, 128, 128]
seed = 4
init = { weights = "normal", scale = 1.1, bias = "normal", bias_scale = 0.2 }

[model]
type = "costate"
mode = "adjoint"

[input]
kind = "sine"
amplitude = 1.0
frequency = 0.4
target = [%s]

[integrator]
t_end = 3.0

[output]
file = "parallel_adjoint.h5"
sample_dt = 0.5
""" % ", ".join(repr(0.5 * math.cos(0.3 * i)) for i in range(128))


class AdjointThreadsTest(RunFileTestCase):
    """The adjoint mode's forward run and backward sweep give the same bits with 1 and 2
    threads: states, costates and the gradients."""

    def test_one_and_two_threads_are_bit_identical(self):
        one = self.run_config("adjoint1", PARALLEL_ADJOINT, "--threads", "1")
        two = self.run_config("adjoint2", PARALLEL_ADJOINT, "--threads", "2")
        with h5py.File(one, "r") as a, h5py.File(two, "r") as b:
            names = []
            a.visititems(lambda name, obj: names.append(name)
                         if isinstance(obj, h5py.Dataset) and
                         name.startswith(("time", "state/", "adjoint/")) else None)
            for expected in ("adjoint/grad/W/layer1", "adjoint/grad/W/layer2",
                             "adjoint/grad/b/layer2", "adjoint/state/lambda/layer1"):
                self.assertIn(expected, names)
            for name in names:
                with self.subTest(dataset=name):
                    self.assertEqual(a[name].shape, b[name].shape)
                    self.assertEqual(a[name][()].tobytes(), b[name][()].tobytes())
            self.assertGreater(np.abs(a["adjoint/grad/W/layer1"][()]).max(), 0.0)


def info_arrivals(stdout):
    """{(kind, population, segment): arrival or None} from the table `learnflow info` prints."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("wave arrival times"))
    assert lines[start + 1].split()[:6] == ["kind", "population", "segment", "start", "arrival",
                                            "delay"]
    arrivals = {}
    for line in lines[start + 2:]:
        if not line.startswith("  "):
            break
        kind, population, segment, _, arrival, _ = line.split()[:6]
        arrivals[(kind, population, int(segment))] = None if arrival == "-" else float(arrival)
    return arrivals


class InfoTest(RunFileTestCase):
    """`learnflow info` prints the arrivals the run stored (/waves, from the full state at every
    sample); `tools/plot arrivals` (Python) computes them from the recorded samples with the same
    definition. They agree where every sample of a population is recorded, and to the sampling
    of an every:3 record; the run also has the populations that are not recorded."""

    def test_info_arrivals_match_the_plot_tool(self):
        path = self.run_config("info", LAYERED)  # records all, every:3, none and norm
        info = learnflow("info", path, cwd=self.dir)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn(f"samples: {LAYERED_T} (t = 0 .. 40)", info.stdout)
        self.assertRegex(info.stdout, r"/state/x/layer2\s+\[267, 6\]\s+record=every:3")
        self.assertIn("wave front speed", info.stdout)
        tool = subprocess.run([sys.executable, str(ROOT / "tools" / "plot"), "arrivals", str(path),
                               "--json"], capture_output=True, text=True, timeout=120)
        self.assertEqual(tool.returncode, 0, tool.stderr)
        python = {(r["kind"], r["population"], r["segment"]): r["arrival"]
                  for r in json.loads(tool.stdout)}
        cxx = info_arrivals(info.stdout)
        self.assertEqual(sorted({population for _, population, _ in cxx}),
                         ["layer1", "layer2", "layer3", "layer4"])
        self.assertEqual(sorted({population for _, population, _ in python}),
                         ["layer1", "layer2", "layer4"])
        for key, arrival in python.items():
            with self.subTest(kind=key[0], population=key[1], segment=key[2]):
                if key[2] == 0:  # before the step nothing moves: no arrival
                    self.assertIsNone(arrival)
                    self.assertIsNone(cxx[key])
                    continue
                self.assertIsNotNone(arrival)
                self.assertGreater(arrival, 1.0)
                if key[1] == "layer1":  # "all": the same samples, the same definition
                    self.assertLess(abs(cxx[key] - arrival), 1e-9 * abs(arrival))
                elif key[1] == "layer2":  # every:3: the same curve sampled 3 times coarser
                    self.assertLess(abs(cxx[key] - arrival), 3 * 0.05)
        # The front moves with depth, in both.
        self.assertLess(cxx[("x", "layer1", 1)], cxx[("x", "layer2", 1)])
        self.assertLess(cxx[("x", "layer2", 1)], cxx[("x", "layer3", 1)])
        self.assertLess(cxx[("x", "layer3", 1)], cxx[("x", "layer4", 1)])
        # Deeper layers respond later: the forward wave.
        self.assertLess(python[("x", "layer1", 1)], python[("x", "layer2", 1)])


if __name__ == "__main__":
    unittest.main()
