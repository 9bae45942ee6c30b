"""Regression tests of issue 8's input validation, end to end through the `learnflow` binary:
each input below used to crash, to be accepted silently, or to fail only after the output file
had been created. Each must now exit with status 2 before any file is written, naming the config
key (or the file and line), and `learnflow validate` must refuse it too.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_input_validation.py -v
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))

LAYERED = """\
[network]
layers = [2, 3, 1]
seed = 1

[input]
value = [0.5, -0.25]

[integrator]
t_end = 1.0

[output]
sample_dt = 0.1
"""

# u (input) -> NAME -> y (output); the hidden population's and the projection's names vary.
GRAPH = """\
[[network.population]]
name = "u"
size = 2
role = "input"

[[network.population]]
name = "HIDDEN"
size = 3

[[network.population]]
name = "y"
size = 1
role = "output"

[[network.projection]]
from = "u"
to = "HIDDEN"
name = "PROJECTION"

[[network.projection]]
from = "HIDDEN"
to = "y"
EDGES

[input]
kind = "sequence"
file = "seq.csv"
present = 1.0

[integrator]
t_end = 3.0

[output]
sample_dt = 0.1
"""


def graph(hidden="h", projection="p", edges=""):
    return (GRAPH.replace("HIDDEN", hidden).replace("PROJECTION", projection)
            .replace("EDGES", edges))


class InputValidationTest(unittest.TestCase):

    def setUp(self):
        if not BIN.is_file():
            self.skipTest(f"no learnflow binary at {BIN} (set LEARNFLOW_BIN)")
        self.dir = Path(tempfile.mkdtemp(prefix="learnflow_validation_"))
        (self.dir / "seq.csv").write_text("a,b\n0.5,-0.5\n1,0\n0,1\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def learnflow(self, *args, timeout=60):
        return subprocess.run([str(BIN), *map(str, args)], cwd=self.dir, capture_output=True,
                              text=True, timeout=timeout)

    def h5_files(self):
        return sorted(p.name for p in self.dir.rglob("*.h5"))

    def refused(self, text, *fragments, overrides=(), h5_before=()):
        """`run` and `validate` of `text` both exit 2 with every fragment in the message; no file."""
        config = self.dir / "experiment.toml"
        config.write_text(text)
        sets = [a for o in overrides for a in ("--set", o)]
        for command in (["run", config, "-o", "new.h5"], ["validate", config]):
            with self.subTest(command=command[0]):
                result = self.learnflow(*command, *sets)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertTrue(result.stderr.startswith("learnflow: error: "), result.stderr)
                for fragment in fragments:
                    self.assertIn(fragment.replace("CONFIG", str(config)), result.stderr)
                self.assertEqual(self.h5_files(), sorted(h5_before), "an output file was written")
        return result

    def accepted(self, text, *overrides):
        config = self.dir / "experiment.toml"
        config.write_text(text)
        sets = [a for o in overrides for a in ("--set", o)]
        result = self.learnflow("validate", config, *sets)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    # ---- (4) names that become HDF5 paths

    def test_invalid_names_are_config_errors(self):
        # "." made a group named "."; "a/b" nested groups: exit 2 after the file was created,
        # and validate accepted "." (issue 8).
        rule = "(1 to 255 of the characters A-Z a-z 0-9 _ - . and not only dots)"
        self.refused(graph(hidden="."), "CONFIG:7: network.population[1].name: '.' is not a "
                                        f"valid population name {rule}")
        self.refused(graph(projection="a/b"), "CONFIG:18: network.projection[0].name: 'a/b' is "
                                              f"not a valid projection name {rule}")
        self.refused(graph(projection=".."), "network.projection[0].name: '..' is not a valid")
        self.accepted(graph(hidden="h.1", projection="u-h_1"))

    # ---- (7) nesting that overflowed the parser's stack

    def test_deep_table_header_is_refused(self):
        header = "[" + ".".join(["t"] * 50000) + "]"
        self.refused(LAYERED + "\n" + header + "\nx = 1\n",
                     "CONFIG:14: TOML nested deeper than 64 levels (dotted keys, arrays, inline "
                     "tables)")
        self.refused(LAYERED, "--set: integrator.t_end: nested deeper than 64 levels",
                     overrides=["integrator.t_end=" + "[" * 10000 + "]" * 10000])

    # ---- (10) a malformed first CSV row is no header

    def test_first_csv_row_mixing_numbers_and_text_is_an_error(self):
        # It used to be dropped as a header: the sequence lost its first pattern.
        seq = self.dir / "seq.csv"
        seq.write_text("0.5,x\n1,0\n0,1\n")
        self.refused(graph(), f"{seq}:1: field 2 is not a finite number: 'x' (not a header: a "
                              "header has no numeric field)")
        seq.write_text("nan,1\n1,0\n")
        self.refused(graph(), f"{seq}:1: field 1 is not a finite number: 'nan'")
        # A header of text alone is skipped; every numeric row is a pattern (3 → 3 segments).
        seq.write_text("a,b\n0.5,-0.5\n1,0\n0,1\n")
        self.assertIn("3 input segment(s)", self.accepted(graph()))
        seq.write_text("0.5,-0.5\n1,0\n0,1\n")
        self.assertIn("3 input segment(s)", self.accepted(graph()))

    def test_edges_file_first_row_is_not_dropped(self):
        edges = self.dir / "edges.csv"
        edges.write_text("0,1,x\n1,0,0.5\n")
        self.refused(graph(edges='edges = "edges.csv"'), f"{edges}:1: field 3 is not a finite "
                                                         "number: 'x'")
        edges.write_text("0,0,inf\n")
        self.refused(graph(edges='edges = "edges.csv"'), f"{edges}:1: field 3 is not a finite "
                                                         "number: 'inf'")

    # ---- (11) NaN and inf

    def test_non_finite_inline_values_are_refused(self):
        self.refused(graph(edges="edges = [[0, 0, 0.5], [1, 0, nan]]"),
                     "CONFIG:23: network.projection[1].edges: edge 1: weight nan is not finite")
        text = LAYERED.replace("value = [0.5, -0.25]",
                               'kind = "sequence"\nvalues = [[0.5, -0.25], [inf, 1]]\npresent = 0.5')
        self.refused(text, "CONFIG:7: input.values: element [1][0] is not finite (inf)")
        self.refused(LAYERED, "--set: input.value: expected a finite number, got nan",
                     overrides=["input.value=nan"])

    def test_non_finite_parameters_in_the_init_file_are_refused(self):
        source = self.dir / "source.toml"
        source.write_text(LAYERED.replace("seed = 1", 'seed = 1\ninit = { bias = "normal" }'))
        result = self.learnflow("run", source, "-o", "init.h5", "--quiet")
        self.assertEqual(result.returncode, 0, result.stderr)
        init = self.dir / "init.h5"
        text = LAYERED.replace("seed = 1", 'init = { weights = "file", bias = "file", file = "init.h5" }')
        self.accepted(text)
        with h5py.File(init, "r+") as f:
            w = f["parameters/W/layer2"]
            values = w[()]
            values[0, 2] = np.nan
            w[...] = values
        self.refused(text, f"{init}: /parameters/W/layer2[0, 2] is nan (parameters must be finite)",
                     h5_before=["init.h5"])
        with h5py.File(init, "r+") as f:
            f["parameters/W/layer2"][0, 2] = 0.5
            f["parameters/b/layer1"][1] = -np.inf
        self.refused(text, f"{init}: /parameters/b/layer1[1] is -inf (parameters must be finite)",
                     h5_before=["init.h5"])

    # ---- (13) lists built before the run

    def test_huge_schedules_are_refused_at_once(self):
        for override, fragment in [
                ("output.sample_dt=1e-12", "--set: output.sample_dt: 1e-12 over [0, 1] gives 1e+12 "
                                           "sample times, more than 1e+08"),
                ("integrator.t_end=1e15", "CONFIG:12: output.sample_dt: 0.1 over [0, 1e+15] "
                                          "gives 1e+16 sample times, more than 1e+08 (the sample "
                                          "times are listed before the run): raise "
                                          "output.sample_dt or shorten the run (integrator.t_end)"),
                ("input.phases=[{ name = \"a\", duration = 1e-12 }]",
                 "--set: input.phases: the input switches 1e+12 times")]:
            with self.subTest(override=override):
                start = time.monotonic()
                self.refused(LAYERED, fragment, overrides=[override])
                self.assertLess(time.monotonic() - start, 10.0)

    # ---- (14) memory and file size

    def test_validate_prints_the_estimates(self):
        out = self.accepted(LAYERED)
        self.assertRegex(out, r"\nestimated memory: [0-9.]+ (bytes|KiB|MiB), output file: [0-9.]+ KiB\n")

    def test_output_max_bytes_refuses_a_large_file_before_it_exists(self):
        self.refused(LAYERED, "CONFIG: output.max_bytes: the output file would take an estimated ",
                     "more than output.max_bytes = 1000 bytes (1000 bytes): record less "
                     "(output.record, output.sample_dt), shorten the run, or raise the limit (e.g. "
                     "--set output.max_bytes=1e+05)", overrides=["output.max_bytes=1000"])
        self.refused(LAYERED + "max_bytes = 0\n", "CONFIG:13: output.max_bytes: must be > 0, got 0")
        (self.dir / "experiment.toml").write_text(LAYERED + "max_bytes = 1e6\n")
        result = self.learnflow("run", self.dir / "experiment.toml", "-o", "ok.h5", "--quiet")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_memory_beyond_the_machine_names_the_key(self):
        # 1.6e11 weights: std::bad_alloc without a key (or the OOM killer) before.
        text = LAYERED.replace("layers = [2, 3, 1]", "layers = [2, 400000, 400000]")
        self.refused(text, "CONFIG:2: network.layers: the run would need at least 1.16 TiB of "
                           "memory, more than this machine's ")

    def test_training_slots_are_bounded(self):
        (self.dir / "x.csv").write_text("".join(f"{i},{i % 3}\n" for i in range(50)))
        (self.dir / "y.csv").write_text("".join(f"{i % 2}\n" for i in range(50)))
        text = """\
[network]
layers = [2, 3, 2]
plastic = true

[model]
type = "backprop"

[data]
train = "x.csv"
train_labels = "y.csv"

[train]
epochs = 100000000
batch = 5
present = 1.0
"""
        self.refused(text, "CONFIG:13: train.epochs: 100000000 epochs of 40 examples make 4e+09 "
                           "minibatch slots, more than 1e+08")
        self.accepted(text.replace("100000000", "3"))

    # ---- eqprop (issue 13): an energy needs symmetric weights, no self-connections, β > 0

    EQPROP = """\
[network]
activation = "hard_sigmoid"
[[network.population]]
name = "in"
size = 2
role = "input"
[[network.population]]
name = "h"
size = 3
[[network.population]]
name = "out"
size = 1
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

[model]
type = "eqprop"
beta = 0.5

[input]
value = [0.5, 0.5]
target = [1.0]
phases = [{ name = "free", duration = 5.0 }, { name = "nudged", duration = 2.0 }]

[integrator]
t_end = 7.0
"""

    def test_eqprop_bad_networks_and_parameters(self):
        text = self.EQPROP
        self.accepted(text)
        no_reverse = text.replace('to = "h"\nsymmetric = true', 'to = "h"')
        self.refused(no_reverse, "network.projection[1].symmetric: projection 'h_out' (h -> out) is "
                                 "symmetric, so it needs exactly one reverse projection")
        asymmetric = no_reverse.replace('to = "out"\nsymmetric = true', 'to = "out"')
        self.refused(asymmetric, "network.projection[1].symmetric: model 'eqprop' needs symmetric weights")
        (self.dir / "hh.csv").write_text("0.5,0.1,0.2\n0.1,0,0.3\n0.2,0.3,0\n")
        self_connected = text.replace("[model]", '[[network.projection]]\nfrom = "h"\nto = "h"\n'
                                                 'symmetric = true\nweights = "hh.csv"\n\n[model]')
        self.refused(self_connected, "network.projection[3]: model 'eqprop' needs W_ii = 0")
        for bad, key in (("beta = 0.0", "model.beta: "), ("beta = -0.5", "model.beta: "),
                         ("beta = 0.5\neta = -1.0", "model.eta: "),
                         ("beta = 0.5\nupdate = \"flows\"", "model.update: "),
                         ("beta = 1.5\nsymmetric = true", "model.beta: must be < 1 with symmetric")):
            self.refused(text.replace("beta = 0.5", bad), key)
        self.refused(text.replace('"nudged"', '"nudge"'), "input.phases: model 'eqprop' needs "
                                                            "exactly the phases \"free\" and \"nudged\"")
        self.refused(text.replace('phases = [{ name = "free", duration = 5.0 }, { name = "nudged", '
                                  'duration = 2.0 }]\n', ""), "input.phases: model 'eqprop'")
        self.refused(text.replace('"hard_sigmoid"', '"relu"'), "network.population[1].activation: "
                                                              "model 'eqprop' needs a bounded activation")

    # ---- issue 13: the masses of the costate model

    def test_masses_must_be_non_negative_and_diffusion_only(self):
        text = LAYERED + "\n[model]\ntype = \"costate\"\nm_w = 0.5\nm_x = 0.2\n"
        self.accepted(text)
        self.refused(text.replace("m_w = 0.5", "m_w = -0.5"),
                     "CONFIG:16: model.m_w: must be >= 0, got -0.5")
        self.refused(text.replace("m_x = 0.2", "m_x = -1"), "CONFIG:17: model.m_x: must be >= 0, got -1")
        self.refused(text, "model.m_w: the exact adjoint has no inertia: set m_w = 0 or mode = "
                           "\"diffusion\"", overrides=['model.mode="adjoint"'])
        self.refused(text.replace("m_w = 0.5", "m_w = 0"), "model.m_x: the exact adjoint has no "
                     "inertia", overrides=['model.mode="adjoint"'])
        self.accepted(text.replace("m_w = 0.5", "m_w = 0").replace("m_x = 0.2", "m_x = 0"),
                      'model.mode="adjoint"')

    def test_holonomic_needs_a_dag_smooth_units_and_positive_masses(self):
        text = LAYERED + "\n[model]\ntype = \"holonomic\"\nm_w = 0.5\nm_x = 0.2\n"
        self.accepted(text.replace("seed = 1", "seed = 1\nactivation = \"tanh\""))
        self.refused(text.replace("m_w = 0.5", "m_w = 0"), "CONFIG:16: model.m_w: must be > 0, got 0")
        self.refused(text.replace("m_x = 0.2", "m_x = -1"), "CONFIG:17: model.m_x: must be >= 0, got -1")
        self.refused(text.replace("seed = 1", "seed = 1\nactivation = \"relu\""),
                     "network.activation: model 'holonomic' needs σ'' in its reactions",
                     "population 'layer1' uses 'relu'")
        self.refused(text + "input_switch = \"jump\"\n", "model.input_switch: unknown input_switch 'jump'")
        ramped = (graph("h", "uh").replace("present = 1.0", "present = 0.5")
                  + "\n[model]\ntype = \"holonomic\"\ninput_switch = \"ramp\"\nramp_width = 0.4\n")
        self.accepted(ramped)
        self.refused(ramped.replace("ramp_width = 0.4", "ramp_width = 0.5"),
                     "model.ramp_width: the input ramps must end within their segment")
        cyclic = (graph("h", "uh") + "\n[[network.projection]]\nfrom = \"h\"\nto = \"h\"\nname = \"hh\"\n"
                  + "\n[model]\ntype = \"holonomic\"\n")
        self.refused(cyclic, "network: model 'holonomic' needs a directed acyclic graph",
                     "population 'h' lies on a cycle", "slack-variable formulation")
        self.refused(text + "patterns = \"batch\"\n", "model.patterns: \"batch\" shows every vector")


if __name__ == "__main__":
    unittest.main(verbosity=2)
