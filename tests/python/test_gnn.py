"""A gnn run file read back by h5py and checked by an independent NumPy implementation of the
model (models/gnn.hpp): /graph holds the karate club as given; the settled /state/x/nodes is the
fixed point of the transition map computed here from /graph and /parameters; /gradient equals
central finite differences of V at that fixed point; a learning run has its metrics and learns
the factions; the backward wave on a path graph (/waves/graph); bad [graph] input exits with status 2 naming the file and row.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_gnn.py
"""
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
EXAMPLE = ROOT / "examples" / "gnn_karate.toml"
NAMES = ["W/A", "W/B", "W/C", "b/transition", "W/readout", "b/readout"]


class Gnn:
    """F, the fixed point and V of models/gnn.hpp (mean aggregation, tanh, linear readout,
    cross-entropy), written from the equations with dense NumPy arrays."""

    def __init__(self, f):
        self.edges = f["graph/edges"][()]
        self.features = f["graph/features"][()]          # N × p
        self.labels = f["graph/labels"][()]
        self.train = f["graph/train_mask"][()].astype(bool)
        self.n = len(self.labels)
        indegree = np.bincount(self.edges[:, 1], minlength=self.n)
        self.alpha = 1.0 / np.maximum(indegree, 1)

    def transition(self, p, x):                          # x: N × s
        src, dst = self.edges[:, 0], self.edges[:, 1]
        a = x[src] @ p["W/A"].T + self.features[dst] @ p["W/B"].T + self.features[src] @ p["W/C"].T \
            + p["b/transition"]
        out = np.zeros_like(x)
        np.add.at(out, dst, np.tanh(a))
        return out * self.alpha[:, None]

    def fixed_point(self, p, s):
        x = np.zeros((self.n, s))
        for _ in range(10000):
            nxt = self.transition(p, x)
            if np.max(np.abs(nxt - x)) < 1e-15:
                return nxt
            x = nxt
        raise AssertionError("no fixed point")

    def loss(self, p, x):
        o = x @ p["W/readout"].T + p["b/readout"]
        o = o[self.train]
        m = o.max(axis=1, keepdims=True)
        log_softmax = o - m - np.log(np.exp(o - m).sum(axis=1, keepdims=True))
        return -log_softmax[np.arange(len(o)), self.labels[self.train]].sum()


class GnnRunFileTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def learnflow(self, *args):
        return subprocess.run([str(BIN), *map(str, args)], cwd=self.dir, capture_output=True,
                              text=True, timeout=300)

    def run_tool(self, *args):
        result = subprocess.run(["/usr/bin/python3", str(ROOT / "tools" / "plot"), *map(str, args)],
                                cwd=self.dir, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)

    def run_ok(self, *args):
        result = self.learnflow(*args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def test_frozen_run_holds_graph_fixed_point_and_exact_gradient(self):
        out = self.dir / "frozen.h5"
        self.run_ok("run", EXAMPLE, "-o", out, "--quiet", "--set", "model.learn=false",
                    "--set", "model.contraction=0.0", "--set", "integrator.t_end=80",
                    "--set", "integrator.rtol=1e-10", "--set", "integrator.atol=1e-12")
        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["model"], "gnn")
            edges = f["graph/edges"][()]
            self.assertEqual(edges.dtype, np.int64)
            self.assertEqual(edges.shape, (156, 2))   # 78 undirected edges, both directions
            listed = {tuple(r) for r in np.loadtxt(ROOT / "examples/karate/edges.csv",
                                                    delimiter=",", skiprows=2, dtype=int)}
            self.assertEqual({(min(u, v), max(u, v)) for u, v in edges}, listed)
            self.assertTrue(np.array_equal(f["graph/features"][()], np.eye(34)))
            labels = f["graph/labels"][()]
            self.assertTrue(np.array_equal(labels, np.loadtxt(ROOT / "examples/karate/labels.csv",
                                                              skiprows=2, dtype=int)))
            train = f["graph/train_mask"][()]
            test = f["graph/test_mask"][()]
            for c in (0, 1):                            # train_per_class = 2
                self.assertEqual(int(train[labels == c].sum()), 2)
            self.assertTrue(np.array_equal(test, 1 - train))
            params = {n: f["parameters/" + n][()] for n in NAMES}
            self.assertEqual(params["W/A"].shape, (4, 4))
            self.assertEqual(params["W/B"].shape, (4, 34))
            self.assertEqual(params["W/readout"].shape, (2, 4))
            for n in NAMES:   # frozen: the final parameters are the initial ones
                self.assertTrue(np.array_equal(f["parameters/final/" + n][()], params[n]))
            # /waves/graph/hop_distance: multi-source BFS from the train mask, by networkx, along
            # the direction errors travel (λ_u is fed by λ_v for u → v: the reversed graph).
            import networkx as nx
            g = nx.DiGraph()
            g.add_nodes_from(range(34))
            g.add_edges_from((int(v), int(u)) for u, v in edges)
            lengths = nx.multi_source_dijkstra_path_length(g, set(np.flatnonzero(train).tolist()))
            self.assertTrue(np.array_equal(f["waves/graph/hop_distance"][()],
                                           [lengths.get(v, -1) for v in range(34)]))
            self.assertGreaterEqual(f["waves/graph/hop_distance"][()].max(), 2)
            x_end = f["state/x/nodes"][-1]               # [T, N, s]: nodes are the batch axis
            self.assertEqual(x_end.shape, (34, 4))
            model = Gnn(f)
            x_star = model.fixed_point(params, 4)
            # The ODE's distance to x* after 80 τ: e^{−80(1−q)} with q < 1 plus the solver error.
            self.assertLess(np.max(np.abs(x_end - x_star)), 1e-7)
            # /gradient against central differences of V(x*(θ)) here, h = 1e-5 (every entry of
            # the small arrays, 20 entries of B and C).
            rng = np.random.default_rng(0)
            for n in NAMES:
                g = f["gradient/" + n][()]
                self.assertEqual(g.shape, params[n].shape)
                flat = params[n].reshape(-1)
                picks = range(flat.size) if flat.size <= 16 else rng.choice(flat.size, 20, replace=False)
                fd = []
                for i in picks:
                    vals = []
                    for h in (1e-5, -1e-5):
                        q = dict(params)
                        q[n] = flat.copy()
                        q[n][i] += h
                        q[n] = q[n].reshape(params[n].shape)
                        vals.append(model.loss(q, model.fixed_point(q, 4)))
                    fd.append((vals[0] - vals[1]) / 2e-5)
                fd = np.array(fd)
                got = g.reshape(-1)[list(picks)]
                scale = max(np.max(np.abs(g)), 1e-12)
                self.assertLess(np.max(np.abs(got - fd)) / scale, 1e-6, n)

    def test_backward_wave_on_a_path_graph(self):
        """/waves/graph: on the path 0 - 1 - … - 7 with node 0 supervised, the arrival of λ (measured
        by the run at every sample) increases with the hop distance, equals its recomputation here
        from the recorded /state/lambda/nodes, and the hop distances are networkx's BFS."""
        n = 8
        (self.dir / "path.csv").write_text("".join(f"{v},{v + 1}\n" for v in range(n - 1)))
        (self.dir / "labels.csv").write_text("".join(f"{int(v >= n // 2)}\n" for v in range(n)))
        (self.dir / "train.csv").write_text("".join(f"{int(v == 0)}\n" for v in range(n)))
        (self.dir / "path.toml").write_text("""
[network]
seed = 3
init = { weights = "normal", scale = 1.0 }
[model]
type = "gnn"
state = 2
learn = false
[graph]
edges = "path.csv"
labels = "labels.csv"
train_mask = "train.csv"
undirected = true
[integrator]
rtol = 1e-10
atol = 1e-14
t_end = 40.0
[output]
sample_dt = 0.05
""")
        out = self.dir / "path.h5"
        self.run_ok("run", self.dir / "path.toml", "-o", out, "--quiet")
        with h5py.File(out, "r") as f:
            arrival = f["waves/graph/lambda_arrival"]
            hops = f["waves/graph/hop_distance"][()]
            self.assertEqual(hops.dtype, np.int64)
            self.assertTrue(np.array_equal(hops, np.arange(n)))       # node v is v hops from 0
            got = arrival[()]
            self.assertTrue(np.all(np.isfinite(got)))
            self.assertTrue(np.all(np.diff(got) > 0), got)           # the wave moves outwards
            # Independent recomputation (sim/waves.hpp's definition): per node, the first time
            # d_v(t) = ‖λ_v(t) − λ_v(t0)‖ reaches half its last value, linearly interpolated
            # between the recorded samples. The run measures the same samples (one segment,
            # starting at t0), so the two agree to rounding (1e-12 on times of order 10); against
            # the continuous λ(t) both are exact only to the interpolation error within one
            # sample_dt = 0.05, while neighbouring arrivals differ by more (checked above).
            t = f["time"][()]
            lam = f["state/lambda/nodes"][()]                         # [T, N, s]
            d = np.linalg.norm(lam - lam[0], axis=2)
            expected = []
            for v in range(n):
                half = 0.5 * d[-1, v]
                i = int(np.argmax(d[:, v] >= half))
                a, b = d[i - 1, v], d[i, v]
                expected.append(t[i - 1] + (half - a) / (b - a) * (t[i] - t[i - 1]))
            self.assertLess(np.max(np.abs(got - expected)), 1e-12)
            # front_speed: the least-squares line delay = a + hops / speed.
            slope = np.polyfit(hops, got - t[0], 1)[0]
            self.assertAlmostEqual(arrival.attrs["front_speed"][0], 1.0 / slope, places=9)
            self.assertEqual(arrival.attrs["front_points"][0], n)
            # tools/plot's measurement for files without /waves/graph: the same definition.
            sys.path.insert(0, str(ROOT / "tools" / "plot"))
            import graph as plot_graph
            self.assertLess(np.max(np.abs(plot_graph.arrival_times(t, d) - got)), 1e-12)
            edges = f["graph/edges"][()]
            self.assertTrue(np.array_equal(plot_graph.hop_distance(edges, n, f["graph/train_mask"][()]), hops))
        png = self.dir / "wave.png"
        self.run_tool("graphwave", out, "-o", png)
        self.assertGreater(png.stat().st_size, 1000)
        # Stopped early by the wall-time limit (mid-segment) and resumed: the arrivals measured
        # across the checkpoint are the uninterrupted run's, bit for bit (the observer's kept
        # samples travel in the checkpoint).
        cut = self.dir / "cut.h5"
        result = self.learnflow("run", self.dir / "path.toml", "-o", cut, "--quiet",
                                "--set", "integrator.max_wall_seconds=0.1")
        self.assertEqual(result.returncode, 3, result.stderr)
        self.run_ok("run", self.dir / "path.toml", "-o", cut, "--quiet", "--resume",
                    "--set", "integrator.max_wall_seconds=1e6")
        with h5py.File(out, "r") as f, h5py.File(cut, "r") as g:
            self.assertTrue(np.array_equal(f["waves/graph/lambda_arrival"][()],
                                           g["waves/graph/lambda_arrival"][()]))
            self.assertEqual(f["waves/graph/lambda_arrival"].attrs["front_speed"][0],
                             g["waves/graph/lambda_arrival"].attrs["front_speed"][0])

    def test_learning_run_metrics(self):
        out = self.dir / "learn.h5"
        self.run_ok("run", EXAMPLE, "-o", out, "--quiet", "--set", "model.contraction=0.9")
        with h5py.File(out, "r") as f:
            m = f["metrics"]
            for name in ["loss", "train_accuracy", "test_accuracy", "contraction_factor", "penalty"] + \
                    ["alignment/cosine/" + n for n in NAMES]:
                self.assertIn(name, m)
            loss = m["loss"][()]
            self.assertLess(loss[-1], 0.1 * loss[0])
            self.assertEqual(m["train_accuracy"][-1], 1.0)
            self.assertGreaterEqual(m["test_accuracy"][-1], 0.8)
            for n in NAMES:
                self.assertIn("gradient/" + n, f)
                self.assertFalse(np.array_equal(f["parameters/final/" + n][()], f["parameters/" + n][()]))

    def test_planted_clique_example_beats_the_majority_answer(self):
        """examples/gnn_planted_clique.toml as shipped: the flow learns clique membership from the
        graph alone (constant features) better than answering "not in the clique" everywhere,
        which scores 75/90 on its test nodes (5 of the 20 members are labelled)."""
        out = self.dir / "clique.h5"
        self.run_ok("run", ROOT / "examples" / "gnn_planted_clique.toml", "-o", out, "--quiet")
        with h5py.File(out, "r") as f:
            labels = f["graph/labels"][()]
            test = f["graph/test_mask"][()].astype(bool)
            self.assertEqual(int(labels.sum()), 20)
            majority = 1.0 - labels[test].mean()
            self.assertAlmostEqual(majority, 75 / 90)
            self.assertEqual(f["metrics/train_accuracy"][-1], 1.0)
            self.assertGreater(f["metrics/test_accuracy"][-1], majority + 0.05)

    def test_bad_graph_input_exits_2_naming_file_and_row(self):
        labels = self.dir / "labels.csv"
        labels.write_text("0\n1\n1\n")
        cases = [
            ("0,1\n1,7\n", "", ["e.csv:2", "node 7"]),
            ("0,1\n2,2\n", "", ["e.csv:2", "self-loop"]),
            ("0,1\n", 'features = "f.csv"', ["f.csv", "2 rows of features for 3 nodes"]),
            ("0,1\n", "classes = 1", ["labels.csv:2", "out of range"]),
            ("0,1\n", 'train_mask = "m.csv"', ["m.csv", "train mask is empty"]),
        ]
        (self.dir / "f.csv").write_text("1,2\n3,4\n")
        (self.dir / "m.csv").write_text("0\n0\n0\n")
        for edges, extra, expected in cases:
            (self.dir / "e.csv").write_text(edges)
            mask = "" if "train_mask" in extra else "train_per_class = 1"
            self.assert_graph_refused(f'edges = "e.csv"\nlabels = "labels.csv"\n{mask}\n{extra}',
                                      expected)

    def test_generators_refuse_graphs_too_large_to_make(self):
        # A planted clique draws every pair of nodes: a million nodes would draw 5e11 pairs. The
        # run exits 2 at once, naming the key, instead of hanging; so do too many SBM edges.
        cases = [('generator = "planted_clique"\nnodes = 1000000\nclique = 10\np = 0.01',
                  ["graph.nodes", "at most 63245 nodes"]),
                 ('generator = "planted_clique"\nnodes = 60000\nclique = 10\np = 0.5',
                  ["graph.p", "edges"]),
                 ('generator = "sbm"\nnodes = 50000000\ndegree = 10', ["graph.degree", "edges"])]
        for graph, expected in cases:
            with self.subTest(graph=graph):
                self.assert_graph_refused(graph + "\ntrain_per_class = 1", expected)

    def assert_graph_refused(self, graph, expected):
        """A gnn run with this [graph] table exits 2, its message holds every text of
        `expected`, and it leaves no output file."""
        (self.dir / "g.toml").write_text(f"""
[model]
type = "gnn"
[graph]
{graph}
[integrator]
t_end = 1.0
""")
        result = self.learnflow("run", "g.toml", "-o", "g.h5", "--quiet")
        self.assertEqual(result.returncode, 2, result.stderr)
        for text in expected:
            self.assertIn(text, result.stderr)
        self.assertFalse((self.dir / "g.h5").exists())


if __name__ == "__main__":
    unittest.main()
