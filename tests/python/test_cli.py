"""End-to-end tests of the `learnflow` command line (DESIGN §7).

Every bad input (config, data file, argument) must exit with status 2, with a message that names
the config key (or the file and line), and must write no output file. A numerical failure must
exit with status 3, say what failed and at which time, and leave a readable file holding every
sample before it. A run killed with SIGKILL must leave a file readable up to its last flush.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_cli.py -v
"""

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

# The killed-run test reads the file while learnflow still has it open for writing; HDF5's file
# locks would refuse that. Must be set before h5py loads the library.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))

# A small layered network: input layer0 (2), layer1 (3), output layer2 (1); 11 samples.
LAYERED = """\
[network]
layers = [2, 3, 1]
activation = "tanh"
seed = 1

[model]
type = "leaky"

[input]
kind = "constant"
value = [0.5, -0.25]

[integrator]
stepper = "dopri5"
rtol = 1e-6
t_end = 1.0

[output]
file = "out.h5"
sample_dt = 0.1
"""

# A digraph: input u (2) -> h (4), a sparse self-projection hh from graph.csv, h -> output y (1).
GRAPH = """\
[network]
activation = "tanh"
seed = 3

[[network.population]]
name = "u"
size = 2
role = "input"

[[network.population]]
name = "h"
size = 4

[[network.population]]
name = "y"
size = 1
role = "output"

[[network.projection]]
from = "u"
to = "h"

[[network.projection]]
name = "hh"
from = "h"
to = "h"
edges = "graph.csv"

[[network.projection]]
from = "h"
to = "y"

[input]
kind = "step"
t0 = 0.5
value = [1.0, -1.0]

[integrator]
t_end = 2.0

[output]
file = "out.h5"
sample_dt = 0.1
"""

GRAPH_CSV = "src,dst,weight\n0,1,0.5\n1,2,-0.3\n2,3\n3,0,0.2\n"


def line_of(text, fragment):
    """1-based number of the first line of `text` containing `fragment`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in the config")


def edited(text, old, new):
    """`text` with its one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


class LearnflowTestCase(unittest.TestCase):
    """A fresh temporary directory per test; learnflow runs with it as working directory, so
    the default output.file ("out.h5") lands there."""

    def setUp(self):
        if not BIN.is_file():
            self.skipTest(f"no learnflow binary at {BIN} (set LEARNFLOW_BIN)")
        self.dir = Path(tempfile.mkdtemp(prefix="learnflow_cli_test_"))
        self.out = self.dir / "out.h5"

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = self.dir / name
        path.write_text(text)
        return path

    def learnflow(self, *args, timeout=120):
        return subprocess.run([str(BIN), *map(str, args)], cwd=self.dir, capture_output=True,
                              text=True, timeout=timeout)

    def h5_files(self):
        return sorted(p.relative_to(self.dir).as_posix() for p in self.dir.rglob("*.h5")
                      if not p.is_dir())

    def assert_bad_input(self, result, *fragments):
        """Exit status 2, learnflow's error line containing every fragment, no output file."""
        self.assertEqual(result.returncode, 2, f"stdout: {result.stdout}\nstderr: {result.stderr}")
        self.assertTrue(result.stderr.startswith("learnflow: error: "), result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)
        self.assertEqual(self.h5_files(), [], "bad input must not write an output file")

    def assert_usage_error(self, result, fragment):
        """Exit status 2 from the argument parser (its own message format)."""
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(fragment, result.stderr)
        self.assertEqual(self.h5_files(), [])


class BadConfigTest(LearnflowTestCase):
    """Config errors: exit 2, "CONFIG:LINE: key: message", no output file."""

    def run_config(self, text, *args, name="experiment.toml"):
        path = self.write(name, text)
        return path, self.learnflow("run", path, *args)

    def check_error(self, text, line_fragment, message, *args):
        """Runs `text`; the error must be "CONFIG:LINE: message" with the line of the fragment."""
        path, result = self.run_config(text, *args)
        self.assert_bad_input(result, f"{path}:{line_of(text, line_fragment)}: {message}")
        return result

    def test_unknown_key_with_suggestion(self):
        text = edited(LAYERED, "layers = [2, 3, 1]", "layres = [2, 3, 1]")
        self.check_error(text, "layres", "network.layres: unknown key (did you mean "
                                         "'network.layers'?)")

    def test_unknown_key_far_from_any_key_gets_no_suggestion(self):
        text = edited(LAYERED, "t_end = 1.0", "t_end = 1.0\nbanana = 3")
        result = self.check_error(text, "banana", "integrator.banana: unknown key")
        self.assertNotIn("did you mean", result.stderr)

    def test_unknown_top_level_table(self):
        text = LAYERED + "\n[outptu]\nfile = \"x.h5\"\n"
        self.check_error(text, "[outptu]", "outptu: unknown key (did you mean 'output'?)")

    def test_wrong_type(self):
        text = edited(LAYERED, "rtol = 1e-6", 'rtol = "small"')
        self.check_error(text, "rtol", "integrator.rtol: expected a number, got a string")

    def test_layer_size_zero(self):
        text = edited(LAYERED, "layers = [2, 3, 1]", "layers = [2, 0, 1]")
        self.check_error(text, "layers", "network.layers: element 1: size must be > 0, got 0")

    def test_layer_size_not_an_integer(self):
        text = edited(LAYERED, "layers = [2, 3, 1]", "layers = [2, 3.5, 1]")
        self.check_error(text, "layers", "network.layers: element 1 must be an integer size")

    def test_population_size_zero(self):
        self.write("graph.csv", GRAPH_CSV)
        text = edited(GRAPH, "size = 4", "size = 0")
        self.check_error(text, "size = 0", "network.population[1].size: must be > 0, got 0")

    def test_unknown_activation(self):
        text = edited(LAYERED, 'activation = "tanh"', 'activation = "tanhh"')
        self.check_error(text, "activation", "network.activation: unknown activation 'tanhh' "
                                             "(choose one of: tanh, logistic, relu, leaky_relu, "
                                             "softplus, linear, asinh, hard_sigmoid)")

    def test_unknown_stepper_with_suggestion(self):
        text = edited(LAYERED, 'stepper = "dopri5"', 'stepper = "dopri"')
        self.check_error(text, "stepper", "integrator.stepper: unknown stepper 'dopri' (did you "
                                          "mean 'dopri5'?)")

    def test_unknown_model(self):
        text = edited(LAYERED, 'type = "leaky"', 'type = "leakyy"')
        self.check_error(text, "type", "model.type: unknown model 'leakyy' (choose one of: ")

    def test_unknown_input_kind_with_suggestion(self):
        text = edited(LAYERED, 'kind = "constant"', 'kind = "constnt"')
        self.check_error(text, "kind", "input.kind: unknown input kind 'constnt' (did you mean "
                                       "'constant'?)")

    def test_inline_edge_to_missing_neuron(self):
        text = edited(GRAPH, 'edges = "graph.csv"', "edges = [[0, 1, 0.5], [1, 9]]")
        self.check_error(text, "edges =", "network.projection[1].edges[1]: edge 1 -> 9 of "
                                          "projection 'hh': population 'h' has no neuron 9 "
                                          "(size 4)")

    def test_csv_edge_to_missing_neuron(self):
        csv = self.write("graph.csv", "src,dst,weight\n0,1,0.5\n# a comment\n1,7,-0.3\n")
        _, result = self.run_config(GRAPH)
        self.assert_bad_input(result, f"{csv}:4: edge 1 -> 7 of projection 'hh': population 'h' "
                                      "has no neuron 7 (size 4)")

    def test_csv_edge_from_missing_neuron(self):
        csv = self.write("graph.csv", "5,1,0.5\n")
        _, result = self.run_config(GRAPH)
        self.assert_bad_input(result, f"{csv}:1: edge 5 -> 1 of projection 'hh': population 'h' "
                                      "has no neuron 5 (size 4)")

    def test_output_over_an_input_is_refused(self):
        # -o naming the config, the init file or an edges file used to overwrite it (issue 8).
        config = self.write("experiment.toml", LAYERED)
        before = config.read_bytes()
        result = self.learnflow("run", config, "-o", config)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(f"the output file {config} is an input of this run", result.stderr)
        self.assertEqual(config.read_bytes(), before)

        self.assertEqual(self.learnflow("run", config, "-o", "first.h5").returncode, 0)
        init = self.dir / "first.h5"
        before = init.read_bytes()
        text = edited(LAYERED, "seed = 1", 'seed = 1\ninit = { weights = "file", file = "first.h5" }')
        config = self.write("continue.toml", text)
        (self.dir / "sub").mkdir()
        result = self.learnflow("run", config, "-o", "./sub/../first.h5")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("is an input of this run", result.stderr)
        self.assertEqual(init.read_bytes(), before)

        csv = self.write("graph.csv", GRAPH_CSV)
        config = self.write("graph.toml", GRAPH)
        result = self.learnflow("run", config, "-o", csv)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(f"({csv})", result.stderr)
        self.assertEqual(csv.read_text(), GRAPH_CSV)

    def test_integers_beyond_2_to_53_in_number_keys(self):
        # They used to end in "cannot write the output: bad optional access" (issue 8).
        text = edited(LAYERED, "t_end = 1.0", "t_end = 9007199254740993")
        self.check_error(text, "t_end =", "integrator.t_end: integer 9007199254740993 lies beyond "
                                          "±2^53 and has no exact value as a number")
        text = edited(LAYERED, "value = [0.5, -0.25]", "value = [0.5, 12345678901234567]")
        self.check_error(text, "value =", "input.value: element 1: integer 12345678901234567 "
                                          "lies beyond ±2^53")

    def test_huge_edge_indices_are_errors(self):
        # 1e19 used to become neuron 0 and the run exited 0 (issue 8).
        csv = self.write("graph.csv", "src,dst,weight\n0,1,0.5\n1,1e19,-0.3\n")
        _, result = self.run_config(GRAPH)
        self.assert_bad_input(result, f"{csv}:3: neuron index 1e+19 is not a non-negative integer "
                                      "below 2^53")
        self.write("graph.csv", GRAPH_CSV)
        for edge in ("[1e19, 1]", "[1, 9007199254740992.0]", "[1, inf]", "[nan, 1]"):
            with self.subTest(edge=edge):
                text = edited(GRAPH, 'edges = "graph.csv"', f"edges = [[0, 1, 0.5], {edge}]")
                self.check_error(text, "edges =", "network.projection[1].edges: edge 1: neuron "
                                                  "indices must be non-negative integers below 2^53")

    def test_projection_to_missing_population_suggests_the_name(self):
        self.write("graph.csv", GRAPH_CSV)
        text = edited(GRAPH, 'from = "u"\nto = "h"', 'from = "u"\nto = "hx"')
        self.check_error(text, 'to = "hx"', "network.projection[0].to: no population named 'hx' "
                                            "(did you mean 'h'?)")

    def test_missing_csv_file(self):
        _, result = self.run_config(GRAPH)
        self.assert_bad_input(result, f"{self.dir / 'graph.csv'}: cannot open file")

    def test_malformed_csv_names_file_line_and_field(self):
        csv = self.write("graph.csv", "src,dst,weight\n0,1,0.5\n1,x,-0.3\n")
        _, result = self.run_config(GRAPH)
        self.assert_bad_input(result, f"{csv}:3: field 2 is not a finite number: 'x'")

    def test_csv_with_wrong_field_count(self):
        csv = self.write("graph.csv", "0,1,0.5,7\n")
        _, result = self.run_config(GRAPH)
        self.assert_bad_input(result, f"{csv}:1: expected src,dst[,weight], found 4 fields")

    def test_rtol_not_positive(self):
        for value in ("0.0", "-1e-3"):
            with self.subTest(rtol=value):
                text = edited(LAYERED, "rtol = 1e-6", f"rtol = {value}")
                self.check_error(text, "rtol",
                                 f"integrator.rtol: must be > 0, got {float(value):g}")

    def test_t_end_not_after_t0(self):
        text = edited(LAYERED, "t_end = 1.0", "t_end = 0.0")
        self.check_error(text, "t_end", "integrator.t_end: must be > t0 = 0, got 0")
        text = edited(LAYERED, "t_end = 1.0", "t0 = 5.0\nt_end = 1.0")
        self.check_error(text, "t_end", "integrator.t_end: must be > t0 = 5, got 1")

    def test_input_vector_of_wrong_length(self):
        text = edited(LAYERED, "value = [0.5, -0.25]", "value = [0.5, -0.25, 1.0]")
        self.check_error(text, "value", "input.value: has 3 values but the input populations "
                                        "have 2 neurons")

    def test_record_of_a_block_that_does_not_exist(self):
        text = LAYERED + 'record = { x = "all", "x/layer9" = "norm" }\n'
        _, result = self.run_config(text)
        self.assert_bad_input(result, "output.record.\"x/layer9\": the model has no state block "
                                      "'x/layer9' (did you mean 'x/layer1'?)")

    def test_bad_record_mode(self):
        text = LAYERED + 'record = { x = "every:0" }\n'
        self.check_error(text, "record", "output.record.x: unknown record mode 'every:0'")

    def test_toml_syntax_error_names_file_and_line(self):
        text = edited(LAYERED, "seed = 1", "seed = 1 2")
        self.check_error(text, "seed", "TOML syntax error: ")
        text = edited(LAYERED, "[model]", "[model")
        self.check_error(text, "[model", "TOML syntax error: ")

    def test_missing_config_file(self):
        result = self.learnflow("run", self.dir / "absent.toml")
        self.assert_bad_input(result, f"{self.dir / 'absent.toml'}: cannot open the config file")

    def test_bad_input_leaves_an_existing_output_file_alone(self):
        path = self.write("experiment.toml", LAYERED)
        self.assertEqual(self.learnflow("run", path, "--quiet").returncode, 0)
        before = self.out.read_bytes()
        result = self.learnflow("run", path, "--set", "integrator.rtol=-1")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(self.out.read_bytes(), before)


class OutputPathTest(LearnflowTestCase):

    def setUp(self):
        super().setUp()
        self.config = self.write("experiment.toml", LAYERED)

    def test_directory_that_does_not_exist(self):
        target = self.dir / "missing" / "run.h5"
        result = self.learnflow("run", self.config, "-o", target)
        self.assert_bad_input(result, f"{target}: cannot write the output file: directory "
                                      f"'{target.parent}' does not exist")
        self.assertFalse(target.parent.exists())

    def test_path_that_is_a_directory(self):
        # (Permission bits cannot be tested reliably: the tests may run as root.)
        target = self.dir / "a_directory.h5"
        target.mkdir()
        result = self.learnflow("run", self.config, "-o", target)
        self.assert_bad_input(result, f"{target}: cannot write the output file")
        self.assertTrue(target.is_dir())

    def test_output_file_from_config_in_missing_directory(self):
        text = edited(LAYERED, 'file = "out.h5"', 'file = "nowhere/out.h5"')
        result = self.learnflow("run", self.write("experiment.toml", text))
        self.assert_bad_input(result, "nowhere/out.h5: cannot write the output file: directory "
                                      "'nowhere' does not exist")


class OverrideTest(LearnflowTestCase):
    """--set key.path=value: typed TOML values, else a bare string; validated like the file."""

    def setUp(self):
        super().setUp()
        self.config = self.write("experiment.toml", LAYERED)

    def test_bad_value_names_set_and_key(self):
        result = self.learnflow("run", self.config, "--set", "integrator.rtol=-1")
        self.assert_bad_input(result, "--set: integrator.rtol: must be > 0, got -1")

    def test_wrong_type(self):
        result = self.learnflow("run", self.config, "--set", "integrator.t_end=soon")
        self.assert_bad_input(result, "--set: integrator.t_end: expected a number, got a string")

    def test_unknown_key_with_suggestion(self):
        result = self.learnflow("run", self.config, "--set", "integrator.rtl=1e-3")
        self.assert_bad_input(result, "--set: integrator.rtl: unknown key (did you mean "
                                      "'integrator.rtol'?)")

    def test_malformed_assignments(self):
        for assignment, message in (("integrator.rtol", "expected key.path=value"),
                                    ("=3", "expected key.path=value"),
                                    ("integrator..rtol=3", "empty component in key")):
            with self.subTest(assignment=assignment):
                result = self.learnflow("run", self.config, "--set", assignment)
                self.assert_bad_input(result, f"--set: {message}")

    def test_typed_values_change_the_run(self):
        self.assertEqual(self.learnflow("run", self.config, "--quiet").returncode, 0)
        with h5py.File(self.out, "r") as f:
            self.assertEqual(f["time"].shape, (11,))  # 0, 0.1, ..., 1.0
        # A float, an array and bare strings (not valid TOML: read as strings).
        # The same output file again: an earlier run file is replaced only with --force.
        result = self.learnflow("run", self.config, "--quiet", "--force", "--set", "integrator.t_end=2",
                                "--set", "input.value=[1.0, 0.0]",
                                "--set", "integrator.stepper=rk4", "--set", "integrator.dt0=0.01")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")  # --quiet
        with h5py.File(self.out, "r") as f:
            self.assertEqual(f["time"].shape, (21,))
            self.assertEqual(f["time"][-1], 2.0)
            self.assertEqual(f.attrs["integrator"], "rk4")
            self.assertEqual(f["solver"].attrs["rejected"], 0)
            # No state is recorded for the clamped input; layer1 sees only input 0 (value 1.0).
            w = f["parameters/W/layer1"][()]
            x1 = f["state/x/layer1"][-1]
        # tau dx/dt = -x + tanh(W u) from x = 0: x(2) = (1 - e^-2) tanh(W u), to rk4 accuracy.
        expected = (1.0 - math.exp(-2.0)) * np.tanh(w @ np.array([1.0, 0.0]))
        np.testing.assert_allclose(x1, expected, rtol=0, atol=1e-9)


class FixedStepTest(LearnflowTestCase):

    def test_fixed_step_count_is_exact(self):
        # rk4 with dt0 = 0.01 on [0, 2], stopping at the samples 0.1 k: exactly 200 steps.
        # Regression: t += h used to land a few ulps before a sample time and take an extra
        # step of ~1e-17 (201 steps); a step ending within rounding of a stop now lands on it.
        config = self.write("experiment.toml", LAYERED)
        result = self.learnflow("run", config, "--quiet", "--set", "integrator.t_end=2",
                                "--set", "integrator.stepper=rk4", "--set", "integrator.dt0=0.01")
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(self.out, "r") as f:
            self.assertEqual(f["solver"].attrs["steps"], 200)


class ValidateAndListTest(LearnflowTestCase):

    def test_validate_good_config(self):
        path = self.write("experiment.toml", LAYERED)
        result = self.learnflow("validate", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith(f"{path}: valid\n"), result.stdout)
        self.assertIn("11 samples", result.stdout)
        self.assertRegex(result.stdout, r"x/layer1\s+\[3\]")
        self.assertRegex(result.stdout, r"x/layer2\s+\[1\]")
        self.assertEqual(self.h5_files(), [])  # validate writes nothing

    def test_validate_sees_data_files(self):
        self.write("graph.csv", "0,1\n1,4\n")
        result = self.learnflow("validate", self.write("experiment.toml", GRAPH))
        self.assert_bad_input(result, f"{self.dir / 'graph.csv'}:2: edge 1 -> 4")

    def test_validate_bad_config(self):
        path = self.write("experiment.toml", edited(LAYERED, "rtol = 1e-6", "rtol = 0.0"))
        result = self.learnflow("validate", path)
        self.assert_bad_input(result, f"{path}:{line_of(LAYERED, 'rtol')}: integrator.rtol: "
                                      "must be > 0, got 0")
        self.assertEqual(result.stdout, "")

    def test_validate_with_set(self):
        path = self.write("experiment.toml", LAYERED)
        result = self.learnflow("validate", path, "--set", "integrator.t_end=2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("21 samples", result.stdout)

    def test_models(self):
        result = self.learnflow("models")
        self.assertEqual(result.returncode, 0, result.stderr)
        names = [line.split()[0] for line in result.stdout.splitlines()]
        self.assertIn("leaky", names)

    def test_integrators(self):
        result = self.learnflow("integrators")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = {line.split()[0]: line for line in result.stdout.splitlines()}
        for name in ("dopri5", "rkck54", "rkf78", "bs", "rk4", "euler"):
            self.assertIn(name, rows)
        self.assertIn("adaptive", rows["dopri5"])
        self.assertIn("fixed", rows["euler"])
        self.assertIn("fixed", rows["rk4"])


class UsageTest(LearnflowTestCase):
    """Errors of the command line itself: exit 2."""

    def test_no_subcommand(self):
        self.assert_usage_error(self.learnflow(), "A subcommand is required")

    def test_unknown_subcommand(self):
        self.assert_bad_input(self.learnflow("rnu", "x.toml"),
                              "unknown subcommand 'rnu' (did you mean 'run'?) (choose one of: run, "
                              "validate, info, watch, sweep, models, integrators)")

    def test_unknown_option(self):
        config = self.write("experiment.toml", LAYERED)
        self.assert_usage_error(self.learnflow("run", config, "--fast"), "--fast")

    def test_missing_config_argument(self):
        self.assert_usage_error(self.learnflow("run"), "config is required")

    def test_bad_thread_counts(self):
        config = self.write("experiment.toml", LAYERED)
        # 65536 used to be accepted, and OpenMP segfaulted creating that many threads (issue 8).
        for value in ("0", "-2", "many", "1025", "65536"):
            with self.subTest(threads=value):
                self.assert_usage_error(self.learnflow("run", config, "--threads", value),
                                        "--threads")

    def test_info_on_a_file_that_is_not_hdf5(self):
        config = self.write("experiment.toml", LAYERED)
        result = self.learnflow("info", config)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"{config}: not a readable HDF5 file", result.stderr)

    def test_help_and_version_exit_0(self):
        self.assertEqual(self.learnflow("--help").returncode, 0)
        result = self.learnflow("--version")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout.strip(), r"^\d+\.\d+\.\d+")


# A linear population h with self-weights 1000 driven by u = 1: tau dx/dt = -x + 1000 x + c with
# c = W_uh u, so x(t) = c (exp(999 t) - 1) / 999, which overflows a double near t = 0.71.
BLOW_UP = """\
[network]
activation = "linear"
seed = 4

[[network.population]]
name = "u"
size = 1
role = "input"

[[network.population]]
name = "h"
size = 2

[[network.projection]]
from = "u"
to = "h"

[[network.projection]]
name = "hh"
from = "h"
to = "h"
edges = [[0, 0, 1000.0], [1, 1, 1000.0]]

[input]
kind = "constant"
value = [1.0]

[integrator]
rtol = 1e-10
atol = 1e-12
t_end = 10.0

[output]
file = "out.h5"
sample_dt = 0.01
"""

FAILURE = re.compile(r"^learnflow: error: numerical failure \((\w+)\): (.*); the (\d+) sample\(s\) "
                     r"before it are kept in (.*)$")


class NumericalFailureTest(LearnflowTestCase):
    """Exit 3; the message names the outcome and the time; the file keeps every sample before
    the failure, all finite, with /solver saying what happened."""

    def check_failure(self, result, outcome):
        """Checks the message and the file; returns (file's time, failure time, /solver attrs)."""
        self.assertEqual(result.returncode, 3, result.stderr)
        match = FAILURE.match(result.stderr.strip())
        self.assertIsNotNone(match, result.stderr)
        self.assertEqual(match.group(1), outcome)
        self.assertEqual(match.group(4), "out.h5")
        t_failure = float(re.search(r"\bt = (\S+?)[ ,)]", match.group(2)).group(1))
        with h5py.File(self.out, "r") as f:
            solver = dict(f["solver"].attrs)
            time = f["time"][()]
            self.assertEqual(solver["outcome"], outcome)
            self.assertEqual(solver["message"], match.group(2))
            self.assertEqual(solver["t_final"], t_failure)
            self.assertEqual(len(time), int(match.group(3)))
            self.assertGreater(len(time), 0)
            self.assertTrue(np.all(np.diff(time) > 0))
            self.assertLessEqual(time[-1], t_failure)
            for name, dataset in f["state/x"].items():
                data = dataset[()]
                self.assertEqual(data.shape[0], len(time), name)
                self.assertTrue(np.all(np.isfinite(data)), f"non-finite sample stored in {name}")
        return time, t_failure, solver

    def test_blow_up_is_a_non_finite_state(self):
        result = self.learnflow("run", self.write("experiment.toml", BLOW_UP))
        time, t_failure, solver = self.check_failure(result, "err_nf_state")
        self.assertIn("non-finite state at t = ", result.stderr)
        with h5py.File(self.out, "r") as f:
            c = f["parameters/W/u_h"][()] @ np.array([1.0])
            x = f["state/x/h"][()]
        # The samples follow the closed form. On exponential growth the relative errors of the
        # steps add up: at most steps * rtol = 1.7e4 * 1e-10 < 1e-5.
        exact = np.outer(np.expm1(999.0 * time) / 999.0, c)
        self.assertLess(solver["steps"], 1e5)
        np.testing.assert_allclose(x, exact, rtol=solver["steps"] * 1e-10, atol=0)
        # It fails where the state overflows: |x| = DBL_MAX at t_max; the RHS 999 x overflows
        # already where |x| = DBL_MAX / 999, one factor 999 = exp(999 * 0.0069) earlier.
        t_max = (math.log(sys.float_info.max) + math.log(999.0 / np.abs(c).max())) / 999.0
        self.assertLessEqual(t_failure, t_max + 1e-3)
        self.assertGreaterEqual(t_failure, t_max - math.log(999.0) / 999.0 - 1e-3)
        self.assertGreater(solver["steps"], 0)

    def test_step_limit(self):
        config = self.write("experiment.toml", LAYERED)
        result = self.learnflow("run", config, "--set", "integrator.max_steps=5")
        time, t_failure, solver = self.check_failure(result, "step_limit")
        self.assertIn("max_steps = 5 reached at t = ", result.stderr)
        self.assertEqual(solver["steps"], 5)
        self.assertLess(t_failure, 1.0)
        np.testing.assert_array_equal(time, 0.1 * np.arange(len(time)))


# A long run: a sequence input switching every 0.5 time units until t = 1e4 (20000 segments,
# 1e6 samples), flushed every 10 samples.
# layer2 has rows of 67 doubles: long enough for the writer's streaming copy, at every alignment.
LONG_RUN = """\
[network]
layers = [4, 32, 67, 32, 4]
seed = 11

[model]
type = "leaky"

[input]
kind = "sequence"
present = 0.5
values = [[1.0, -1.0, 0.5, 0.0], [-0.5, 0.5, 0.0, 1.0], [0.2, 0.9, -0.7, 0.3]]

[integrator]
t_end = 1e4

[output]
file = "out.h5"
sample_dt = 0.01
flush_every = 10
flush_seconds = 0.0
"""


class KilledRunTest(LearnflowTestCase):
    """SIGKILL during a run: the file stays readable up to its last flush (DESIGN §6).

    Samples are streamed in SWMR mode: the file on disk is consistent at every moment, and a
    killed run's file (still marked as open by its writer) is opened with swmr=True. /time is
    written last at each flush, so its length is the number of complete samples; the state
    datasets may hold a few more rows."""

    FLUSH_EVERY = 10
    MIN_SAMPLES = 50

    def poll_samples(self, process, timeout=60.0):
        """Waits until /time holds MIN_SAMPLES samples; returns how many it saw. The file is
        read while learnflow writes it: a read may fail (OSError) and is retried."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self.assertIsNone(process.poll(), "the long run ended before it was killed")
            try:
                with h5py.File(self.out, "r", swmr=True) as f:
                    seen = f["time"].shape[0]
            except (OSError, KeyError):
                pass  # not created yet, or caught between two writes
            if seen >= self.MIN_SAMPLES:
                return seen
            time.sleep(0.02)
        self.fail(f"fewer than {self.MIN_SAMPLES} samples in {timeout} s")

    def test_sigkill_leaves_a_readable_file(self):
        config = self.write("experiment.toml", LONG_RUN)
        process = subprocess.Popen([str(BIN), "run", str(config), "--quiet"], cwd=self.dir,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            seen = self.poll_samples(process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
            process.stderr.close()
        self.assertEqual(process.returncode, -signal.SIGKILL)

        with self.assertRaises(OSError):  # marked as open by its (killed) SWMR writer
            h5py.File(self.out, "r").close()
        with h5py.File(self.out, "r", swmr=True) as f:
            self.assertNotIn("solver", f)  # the run did not finish
            t = f["time"][()]
            self.assertGreaterEqual(len(t), seen)  # nothing flushed is lost
            self.assertEqual(len(t) % self.FLUSH_EVERY, 0)  # exactly what was flushed
            np.testing.assert_array_equal(t, 0.01 * np.arange(len(t)))
            self.assertEqual(sorted(f["state/x"]), ["layer1", "layer2", "layer3", "layer4"])
            for name, dataset in f["state/x"].items():
                self.assertGreaterEqual(dataset.shape[0], len(t), name)
                data = dataset[:len(t)]
                sizes = {"layer1": 32, "layer2": 67, "layer3": 32, "layer4": 4}
                self.assertEqual(data.shape, (len(t), sizes[name]), name)
                self.assertTrue(np.all(np.isfinite(data)), name)
                # Every stored row was written: unwritten chunks would read as exact zeros
                # (x is 0 only at t = 0, before the input has acted).
                self.assertTrue(np.all(np.any(data[1:] != 0.0, axis=1)), name)

        result = self.learnflow("info", self.out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("solver: no statistics (the run did not finish)", result.stdout)
        self.assertIn(f"samples: {len(t)} ", result.stdout)


class KernelChoiceTest(LearnflowTestCase):
    """LEARNFLOW_KERNELS picks the batched products' instruction set (models/batch_kernels.hpp);
    the file records the one used; a set this build or CPU lacks is bad input."""

    def learnflow_with(self, kernels, *args):
        env = dict(os.environ, LEARNFLOW_KERNELS=kernels)
        return subprocess.run([str(BIN), *map(str, args)], cwd=self.dir, capture_output=True,
                              text=True, timeout=120, env=env)

    def test_baseline_is_recorded(self):
        path = self.write("experiment.toml", LAYERED)
        result = self.learnflow_with("baseline", "run", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(self.out, "r") as f:
            self.assertEqual(f.attrs["kernels"], "baseline")

    def test_default_is_a_known_set(self):
        path = self.write("experiment.toml", LAYERED)
        result = self.learnflow("run", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(self.out, "r") as f:
            self.assertIn(f.attrs["kernels"], ("baseline", "x86-64-v3", "x86-64-v4"))

    def test_unknown_set_is_bad_input(self):
        path = self.write("experiment.toml", LAYERED)
        result = self.learnflow_with("sse9", "run", path)
        self.assert_bad_input(result, "LEARNFLOW_KERNELS = 'sse9'", "baseline")


if __name__ == "__main__":
    unittest.main()
