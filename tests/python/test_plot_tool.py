"""Tests of tools/plot (the Python plotting tool) on synthetic run files.

Run: /usr/bin/python3 tests/python/test_plot_tool.py
"""

import argparse
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

import h5py
import numpy as np
from matplotlib.collections import PolyCollection

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "plot"
sys.path.insert(0, str(TOOL))

import metrics  # noqa: E402
import relaxation  # noqa: E402
import waves  # noqa: E402
from errors import PlotError  # noqa: E402
from runfile import RunFile, phase_intervals  # noqa: E402

# Arrival after a segment start of 1 - exp(-(t - ts)) over a segment of length 5 (and of the
# matching decay): where the curve has made half of its change 1 - exp(-5).
EXP_ARRIVAL = -math.log(0.5 * (1.0 + math.exp(-5.0)))


def write_run(path, time, breakpoints, records, populations, solver=True, costates=None,
              extra=None):
    """Write a learnflow run file. records (x) and costates (lambda): {population: (record,
    data)} with record "all", "every:K" or "norm" and data already subsampled as that record
    stores it. extra: {dataset path: data}, e.g. metrics."""
    with h5py.File(path, "w") as f:
        f.attrs["learnflow_version"] = np.bytes_("0.1.0")  # fixed-length string
        f.attrs["model"] = "synthetic"  # variable-length string
        f.attrs["integrator"] = np.bytes_("dopri5")
        f.attrs["seed"] = np.int64(1)
        f.create_dataset("time", data=time)
        for kind, blocks in (("x", records), ("lambda", costates or {})):
            for name, (record, data) in blocks.items():
                dataset = f.create_dataset(f"state/{kind}/{name}", data=data)
                dataset.attrs["record"] = record
                dataset.attrs["stride"] = np.int64(record.split(":")[1] if ":" in record else 1)
        # Another block kind, which waves must ignore.
        f.create_dataset("state/W/h1", data=np.ones(len(time))).attrs["record"] = "norm"
        for name, data in (extra or {}).items():
            f.create_dataset(name, data=data)
        network = f.create_group("network")
        network.attrs["populations"] = ",".join(populations)
        for name in populations:
            group = network.create_group(f"population/{name}")
            group.attrs["role"] = "input" if name == "in" else "hidden"
        schedule = f.create_group("schedule")
        schedule.create_dataset("breakpoints", data=np.asarray(breakpoints, dtype=float))
        schedule.attrs["t0"] = float(time[0])
        schedule.attrs["t_end"] = float(time[-1])
        if solver:
            f.create_group("solver").attrs["outcome"] = "success"


def ramp(t, start, rise):
    """0 before start, then linear up to 1 over `rise`."""
    return np.clip((t - start) / rise, 0.0, 1.0)


def write_two_segment_run(path, solver=True, costate=True):
    """Segments [0, 5] and [5, 10], samples every 0.01.

    x, the forward wave:
    h1 (all): mean 1 - exp(-t), then decays by exp(-(t - 5)): arrivals EXP_ARRIVAL, 5 + EXP_ARRIVAL.
    h2 (all): mean ramps 0 -> 1 over [1, 3], then 1 -> 0 over [6.5, 7.5]: arrivals 2, 7.
    h3 (norm): 1 + 4 * ramp over [3, 4], then constant: arrival 3.5, then undefined.
    out (every:2, last row missing as in a killed run): mean -0.5 * that of h2: arrivals 2, 7.

    With costate, also costate_metrics(t), STORED_WAVES and lambda, the backward wave:
    h1 (norm): 2 * ramp over [2, 4], then 2 -> 0 over [7, 9]: arrivals 3, 8.
    h2 (every:2): mean ramps 0 -> -1 over [1.5, 2.5], then constant: arrival 2, then undefined.
    out (all): mean ramps 0 -> 1 over [0.5, 1.5], then 1 -> 0 over [5.5, 6.5]: arrivals 1, 6.
    """
    t = np.linspace(0.0, 10.0, 1001)
    first = t <= 5.0
    h1 = np.where(first, 1.0 - np.exp(-t), (1.0 - math.exp(-5.0)) * np.exp(-(t - 5.0)))
    h2 = np.where(first, ramp(t, 1.0, 2.0), 1.0 - ramp(t, 6.5, 1.0))
    h3 = 1.0 + 4.0 * ramp(t, 3.0, 1.0)
    # Per-neuron offsets with zero sum, so that the means are the curves above.
    spread = np.array([-0.3, -0.1, 0.1, 0.3])
    records = {
        "h1": ("all", h1[:, None] + spread),
        "h2": ("all", h2[:, None] + spread[[0, 3]]),
        "h3": ("norm", h3),
        "out": ("every:2", (-0.5 * h2[::2, None] + spread[[1, 2]])[:-1]),
    }
    costates = extra = None
    if costate:
        costates = {
            "h1": ("norm", np.where(first, 2.0 * ramp(t, 2.0, 2.0), 2.0 - 2.0 * ramp(t, 7.0, 2.0))),
            "h2": ("every:2", -ramp(t, 1.5, 1.0)[::2, None] + spread[[0, 3]]),
            "out": ("all", np.where(first, ramp(t, 0.5, 1.0), 1.0 - ramp(t, 5.5, 1.0))[:, None]
                    + spread[[1, 2]]),
        }
        extra = {**costate_metrics(t), **STORED_WAVES}
    write_run(path, t, [5.0], records, ["in", "h1", "h2", "h3", "out"], solver, costates, extra)


# Arrivals as learnflow would store them, made different from those of /state.
STORED_WAVES = {"waves/x/h2": [2.5, np.nan], "waves/lambda/out": [1.25, 6.25]}


def costate_metrics(t):
    """/metrics of a costate run at times t; the cosine of h2 is undefined throughout."""
    return {
        "metrics/loss": np.where(t < 1.0, np.nan, 0.5 * np.exp(-t)),  # no target before t = 1
        "metrics/alignment/cosine/h1": 1.0 - 2.0 * np.exp(-t),
        "metrics/alignment/cosine/h2": np.full(len(t), np.nan),
        "metrics/alignment/cosine/out": np.tanh(t),
        "metrics/alignment/norm_ratio/h1": 1.0 + np.exp(-t),
        "metrics/alignment/norm_ratio/out": 1.0 - 0.5 * np.exp(-t),
        "metrics/accuracy": np.where(t < 5.0, 0.5, 1.0),
        "metrics/residual/x": t * np.exp(-t),  # 0 at t = 0: a gap on the log scale
        "metrics/residual/lambda": np.exp(-2.0 * t),
        "metrics/residual/W": 0.1 * np.exp(-t),
    }


# A DTP run over [0, 30]: phases forward (2) then target (8), period 10.
DTP_CONFIG = """\
[model]
type = "dtp"

[input]
kind = "sequence"
values = [[0.5], [-0.5]]
phases = [{ name = "forward", duration = 2.0 }, { name = "target", duration = 8.0 }]
"""
DTP_TARGET_PHASES = [(2.0, 10.0), (12.0, 20.0), (22.0, 30.0)]
# Per layer (the target of layer0, layer1): residual at the start of each target phase, the rate
# at which it decays exactly in each target phase, and the rates "predicted" for them.
DTP_START = {"layer0": 0.5, "layer1": 2.0}
DTP_RATES = {"layer0": [0.5, 0.8, 1.0], "layer1": [0.3, 0.4, 0.6]}
DTP_PREDICTED = {"layer0": [0.6, 0.7, 1.1], "layer1": [0.25, np.nan, 0.5]}
DTP_FORWARD_RESIDUAL = 1e-3


def dtp_residual(name, t):
    """The synthetic residual of the target of `name`: exponential decay in each target phase,
    constant in the forward phases."""
    values = np.full(len(t), DTP_FORWARD_RESIDUAL)
    for (start, end), rate in zip(DTP_TARGET_PHASES, DTP_RATES[name]):
        inside = (t >= start) & (t <= end)
        values[inside] = DTP_START[name] * np.exp(-rate * (t[inside] - start))
    return values


def write_dtp_run(path, lipschitz=True, alignment=True, rates=True, config=DTP_CONFIG):
    """A DTP run file: layers layer0 -> layer1 -> layer2, samples every 0.05 over [0, 30],
    /metrics/relaxation/residual of two targets (with fitted_rate = the exact rates and
    predicted_rate attributes when rates), distance, and optionally lipschitz and alignment."""
    t = np.linspace(0.0, 30.0, 601)
    targets = ("layer0", "layer1")
    extra = {"metrics/loss": 0.1 + 0.01 * t}
    for name in targets:
        extra[f"metrics/relaxation/residual/{name}"] = dtp_residual(name, t)
        extra[f"metrics/relaxation/distance/{name}"] = np.full(len(t), 0.2)
        if lipschitz:
            extra[f"metrics/relaxation/lipschitz/{name}"] = 0.5 + 0.1 * np.sin(t)
    if alignment:
        for index, name in enumerate(("layer1", "layer2")):
            in_target = np.zeros(len(t), dtype=bool)
            for start, end in DTP_TARGET_PHASES:
                in_target |= (t > start) & (t <= end)
            extra[f"metrics/alignment/backprop/{name}"] = np.where(in_target, 0.9 - 0.2 * index,
                                                                   np.nan)
            extra[f"metrics/alignment/gauss_newton/{name}"] = np.where(in_target, 1.0, np.nan)
    breakpoints = sorted({bound for interval in DTP_TARGET_PHASES for bound in interval} - {30.0})
    write_run(path, t, breakpoints, {}, ["layer0", "layer1", "layer2"], extra=extra)
    with h5py.File(path, "a") as f:
        f.attrs["model"] = "dtp"
        if config is not None:
            f.attrs["config"] = config
        for name in targets if rates else ():
            residual = f[f"metrics/relaxation/residual/{name}"]
            residual.attrs["fitted_rate"] = np.array(DTP_RATES[name])
            residual.attrs["predicted_rate"] = np.array(DTP_PREDICTED[name])


def run_tool(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)],
                          capture_output=True, text=True)


def png_size(path):
    """(width, height) from the IHDR chunk of a PNG file."""
    header = Path(path).read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", header[16:24])


class ArrivalTimeTest(unittest.TestCase):
    """waves.arrival_time on hand-made series."""

    def test_linear_ramp_interpolates_exactly(self):
        t = 0.3 * np.arange(8)  # the half change, at 1.05, falls between samples 0.9 and 1.2
        self.assertAlmostEqual(waves.arrival_time(t, 2.0 * t, 0.0, t[-1]), 1.05, delta=1e-12)

    def test_fine_exponential_is_near_ln2(self):
        t = np.linspace(0.0, 20.0, 20001)
        m = 1.0 - np.exp(-t)
        self.assertAlmostEqual(waves.arrival_time(t, m, 0.0, 20.0), math.log(2.0), delta=1e-6)

    def test_crossing_on_the_opposite_side_of_the_change(self):
        # m first dips below -|d|/2, although it ends above m0.
        t = np.array([0.0, 1.0, 2.0])
        m = np.array([0.0, -0.6, 1.0])
        self.assertAlmostEqual(waves.arrival_time(t, m, 0.0, 2.0), 0.5 / 0.6, delta=1e-12)

    def test_boundary_sample_belongs_to_both_segments(self):
        t = np.array([0.0, 1.0, 2.0])
        m = np.array([0.0, 1.0, 3.0])
        self.assertAlmostEqual(waves.arrival_time(t, m, 0.0, 1.0), 0.5, delta=1e-12)
        self.assertAlmostEqual(waves.arrival_time(t, m, 1.0, 2.0), 1.5, delta=1e-12)

    def test_undefined_cases(self):
        t = np.array([0.0, 1.0, 2.0])
        self.assertIsNone(waves.arrival_time(t, np.array([0.0, 1.0, 2.0]), 0.5, 1.5))  # 1 sample
        self.assertIsNone(waves.arrival_time(t, np.array([3.0, 1.0, 3.0]), 0.0, 2.0))  # no change
        self.assertIsNone(waves.arrival_time(t, np.array([0.0, 0.0, 1e-10]), 0.0, 2.0))
        self.assertIsNone(waves.arrival_time(t, np.array([1e3, 1e3, 1e3 + 1e-7]), 0.0, 2.0))
        self.assertIsNone(waves.arrival_time(t, np.array([0.0, np.nan, 1.0]), 0.0, 2.0))
        self.assertIsNotNone(waves.arrival_time(t, np.array([0.0, 0.0, 1e-8]), 0.0, 2.0))


class PhaseIntervalsTest(unittest.TestCase):
    """runfile.phase_intervals on config texts."""

    def intervals(self, text, name, t0, t_end):
        return phase_intervals(tomllib.loads(text), name, t0, t_end)

    def test_target_phases_repeat_from_t0(self):
        self.assertEqual(self.intervals(DTP_CONFIG, "target", 0.0, 30.0), DTP_TARGET_PHASES)
        self.assertEqual(self.intervals(DTP_CONFIG, "forward", 0.0, 30.0),
                         [(0.0, 2.0), (10.0, 12.0), (20.0, 22.0)])

    def test_cut_at_t_end(self):
        # t0 = 1, period 5: target phases [3, 6], [8, 11], then [13, 16] cut at t_end.
        text = """[input]
kind = "constant"
phases = [{ name = "forward", duration = 2 }, { name = "target", duration = 3 }]
"""
        self.assertEqual(self.intervals(text, "target", 1.0, 14.5),
                         [(3.0, 6.0), (8.0, 11.0), (13.0, 14.5)])
        # A phase starting at t_end is not run; the forward phase [11, 13] is cut at 12.
        self.assertEqual(self.intervals(text, "target", 1.0, 13.0), [(3.0, 6.0), (8.0, 11.0)])
        self.assertEqual(self.intervals(text, "forward", 1.0, 12.0),
                         [(1.0, 3.0), (6.0, 8.0), (11.0, 12.0)])

    def test_sequence_period_is_present(self):
        text = """[input]
kind = "sequence"
present = 1.5
phases = [{ name = "forward", duration = 1.0 }, { name = "target", duration = 0.5 }]
"""
        self.assertEqual(self.intervals(text, "target", 0.0, 4.5),
                         [(1.0, 1.5), (2.5, 3.0), (4.0, 4.5)])

    def test_without_phases(self):
        self.assertEqual(self.intervals("[input]\nkind = \"constant\"\n", "target", 0.0, 9.0),
                         [])
        self.assertEqual(phase_intervals({}, "target", 0.0, 9.0), [])
        self.assertEqual(self.intervals(DTP_CONFIG, "nudged", 0.0, 30.0), [])

    def test_malformed_phases(self):
        with self.assertRaises(PlotError):
            self.intervals("[input]\nphases = [{ name = \"target\" }]\n", "target", 0.0, 9.0)


class PlotToolTest(unittest.TestCase):

    def setUp(self):
        self.directory = Path(tempfile.mkdtemp(prefix="learnflow_plot_test_"))
        self.run_file = self.directory / "run.h5"
        write_two_segment_run(self.run_file)

    def tearDown(self):
        shutil.rmtree(self.directory)

    def assert_error_exit(self, result, message):
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertTrue(result.stderr.startswith("plot: error:"), result.stderr)
        self.assertIn(message, result.stderr)

    def arrivals_json(self, *options):
        result = run_tool("arrivals", self.run_file, "--json", *options)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_arrivals_json(self):
        records = self.arrivals_json()
        # Forward (x) waves first, then backward (lambda) waves, each in network order.
        expected = [("x", "h1", 0, 0.0, EXP_ARRIVAL), ("x", "h1", 1, 5.0, 5.0 + EXP_ARRIVAL),
                    ("x", "h2", 0, 0.0, 2.0), ("x", "h2", 1, 5.0, 7.0),
                    ("x", "h3", 0, 0.0, 3.5), ("x", "h3", 1, 5.0, None),
                    ("x", "out", 0, 0.0, 2.0), ("x", "out", 1, 5.0, 7.0),
                    ("lambda", "h1", 0, 0.0, 3.0), ("lambda", "h1", 1, 5.0, 8.0),
                    ("lambda", "h2", 0, 0.0, 2.0), ("lambda", "h2", 1, 5.0, None),
                    ("lambda", "out", 0, 0.0, 1.0), ("lambda", "out", 1, 5.0, 6.0)]
        self.assertEqual([(r["kind"], r["population"], r["segment"], r["start"]) for r in records],
                         [e[:4] for e in expected])
        for record, (kind, population, _, _, arrival) in zip(records, expected):
            with self.subTest(kind=kind, population=population, segment=record["segment"]):
                if arrival is None:
                    self.assertIsNone(record["arrival"])
                else:
                    # Sampling error of the exponential; the ramps are exact.
                    delta = 1e-4 if (kind, population) == ("x", "h1") else 1e-12
                    self.assertAlmostEqual(record["arrival"], arrival, delta=delta)

    def test_arrivals_json_of_run_without_costates(self):
        write_two_segment_run(self.run_file, costate=False)
        records = self.arrivals_json()
        self.assertEqual(len(records), 8)
        self.assertEqual({record["kind"] for record in records}, {"x"})

    def test_arrivals_table(self):
        result = run_tool("arrivals", self.run_file)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0].split(),
                         ["population", "segment", "start", "arrival", "delay", "kind"])
        rows = {(line.split()[5], *line.split()[:2]): line.split()[2:5] for line in lines[1:]}
        self.assertEqual(len(rows), 14)
        start, arrival, delay = map(float, rows[("x", "h2", "1")])
        self.assertEqual((start, arrival, delay), (5.0, 7.0, 2.0))
        self.assertEqual(rows[("x", "h3", "1")], ["5", "-", "-"])
        start, arrival, delay = map(float, rows[("lambda", "out", "1")])
        self.assertEqual((start, arrival, delay), (5.0, 6.0, 1.0))
        self.assertEqual(rows[("lambda", "h2", "1")], ["5", "-", "-"])

    def test_arrivals_from_file(self):
        # Without --from-file the stored values are ignored: computed from /state as above.
        computed = {(r["kind"], r["population"], r["segment"]): r["arrival"]
                    for r in self.arrivals_json()}
        self.assertAlmostEqual(computed[("x", "h2", 0)], 2.0, delta=1e-12)
        self.assertAlmostEqual(computed[("lambda", "out", 0)], 1.0, delta=1e-12)
        records = self.arrivals_json("--from-file")
        self.assertEqual([(r["kind"], r["population"], r["segment"], r["start"], r["arrival"])
                          for r in records],
                         [("x", "h2", 0, 0.0, 2.5), ("x", "h2", 1, 5.0, None),
                          ("lambda", "out", 0, 0.0, 1.25), ("lambda", "out", 1, 5.0, 6.25)])
        result = run_tool("arrivals", self.run_file, "--from-file")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([line.split() for line in result.stdout.splitlines()[1:]],
                         [["h2", "0", "0", "2.5", "2.5", "x"], ["h2", "1", "5", "-", "-", "x"],
                          ["out", "0", "0", "1.25", "1.25", "lambda"],
                          ["out", "1", "5", "6.25", "1.25", "lambda"]])

    def test_arrivals_from_file_without_stored_waves(self):
        write_two_segment_run(self.run_file, costate=False)
        self.assert_error_exit(run_tool("arrivals", self.run_file, "--from-file"),
                               "no stored wave arrivals")

    def test_arrivals_from_file_with_wrong_count(self):
        t = np.linspace(0.0, 2.0, 21)
        write_run(self.run_file, t, [1.0], {"h": ("all", t[:, None])}, ["h"],
                  extra={"waves/x/h": [0.5, 1.5, 2.5]})
        self.assert_error_exit(run_tool("arrivals", self.run_file, "--from-file"),
                               "/waves/x/h holds 3 arrivals for 2 input segments")

    def test_waves_writes_png_next_to_run(self):
        result = run_tool("waves", self.run_file)
        self.assertEqual(result.returncode, 0, result.stderr)
        output = self.directory / "run_waves.png"
        self.assertGreater(output.stat().st_size, 10000)
        # One column for x, one for lambda.
        self.assertEqual(png_size(output), (round(2 * waves.FIGSIZE[0] * waves.DPI),
                                            round(waves.FIGSIZE[1] * waves.DPI)))

    def test_waves_without_costates_has_one_column(self):
        write_two_segment_run(self.run_file, costate=False)
        result = run_tool("waves", self.run_file)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(png_size(self.directory / "run_waves.png"),
                         (round(waves.FIGSIZE[0] * waves.DPI), round(waves.FIGSIZE[1] * waves.DPI)))

    def test_waves_labels_forward_and_backward(self):
        with RunFile(self.run_file) as run:
            figure = waves.draw_waves(run, None)
        # Per column: heatmap, mean panel, colour bar.
        x_heat, x_means, x_bar, l_heat, l_means, l_bar = figure.axes
        self.assertEqual((x_heat.get_title(), l_heat.get_title()),
                         ("forward wave (x)", "backward wave (λ)"))
        self.assertEqual((x_bar.get_ylabel(), l_bar.get_ylabel()), ("x", "λ"))
        self.assertTrue(x_means.get_title().startswith("mean x "))
        self.assertTrue(l_means.get_title().startswith("mean λ "))
        self.assertEqual([text.get_text() for text in l_means.get_legend().get_texts()],
                         ["h1 (norm)", "h2", "out"])
        # Arrival marks of lambda: the last line per population (h1, h2, out).
        marks = [line.get_xdata() for line in l_means.lines[1::2]]
        np.testing.assert_allclose(np.concatenate(marks), [3.0, 8.0, 2.0, 1.0, 6.0], atol=1e-12)

    def test_waves_of_costates_only(self):
        t = np.linspace(0.0, 2.0, 21)
        write_run(self.run_file, t, [], {}, ["in", "h"], costates={"h": ("all", t[:, None])})
        with RunFile(self.run_file) as run:
            figure = waves.draw_waves(run, None)
        self.assertEqual(figure.axes[0].get_title(), "backward wave (λ)")

    def test_waves_pdf_of_killed_run(self):
        write_two_segment_run(self.run_file, solver=False)
        output = self.directory / "figure.pdf"
        result = run_tool("waves", self.run_file, "-o", output)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(output.read_bytes().startswith(b"%PDF"))

    def test_waves_marks_first_20_segments(self):
        t = np.linspace(0.0, 25.0, 2501)
        write_run(self.run_file, t, np.arange(1.0, 25.0), {"h": ("all", t[:, None])}, ["h"])
        with RunFile(self.run_file) as run:
            figure = waves.draw_waves(run, None)
        _, marks = figure.axes[1].lines
        np.testing.assert_allclose(marks.get_xdata(), np.arange(20) + 0.5, atol=1e-12)

    def test_waves_norm_records_only(self):
        t = np.linspace(0.0, 2.0, 21)
        write_run(self.run_file, t, [], {"h": ("norm", t)}, ["in", "h"])
        result = run_tool("waves", self.run_file, "-o", self.directory / "norms.png")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_missing_file(self):
        self.assert_error_exit(run_tool("waves", self.directory / "absent.h5"), "no such file")

    def test_not_hdf5(self):
        text_file = self.directory / "notes.h5"
        text_file.write_text("not HDF5\n")
        self.assert_error_exit(run_tool("arrivals", text_file), "not an HDF5 file")

    def test_not_a_learnflow_file(self):
        other = self.directory / "other.h5"
        with h5py.File(other, "w") as f:
            f.create_dataset("time", data=np.arange(3.0))
        self.assert_error_exit(run_tool("waves", other), "not a learnflow run file")

    def test_metrics_writes_png_next_to_run(self):
        result = run_tool("metrics", self.run_file)
        self.assertEqual(result.returncode, 0, result.stderr)
        output = self.directory / "run_metrics.png"
        self.assertEqual(result.stdout.strip(), str(output))
        self.assertGreater(output.stat().st_size, 10000)
        height = metrics.TITLE_HEIGHT + len(metrics.PANELS) * metrics.PANEL_HEIGHT
        self.assertEqual(png_size(output),
                         (round(metrics.WIDTH * metrics.DPI), round(height * metrics.DPI)))

    def test_metrics_panels(self):
        with RunFile(self.run_file) as run:
            figure = metrics.draw_metrics(run, None)
        loss, cosine, ratio, accuracy, residual = figure.axes
        self.assertEqual([axes.get_yscale() for axes in figure.axes],
                         ["log", "linear", "log", "linear", "log"])
        self.assertEqual(cosine.get_ylim(), (-1.05, 1.05))
        self.assertEqual(accuracy.get_ylim(), (-0.05, 1.05))
        legend = {axes: [text.get_text() for text in axes.get_legend().get_texts()]
                  for axes in (cosine, ratio, residual)}
        # The cosine of h2 is undefined throughout: left out.
        self.assertEqual(legend, {cosine: ["h1", "out"], ratio: ["h1", "out"],
                                  residual: ["W", "lambda", "x"]})
        self.assertIsNone(loss.get_legend())
        self.assertLess(loss.get_ylim()[1], 1.0)  # the switch lines leave the y limits alone
        self.assertTrue(np.isnan(loss.lines[0].get_ydata()[:100]).all())  # gap: no target yet
        self.assertEqual(accuracy.lines[0].get_drawstyle(), "steps-post")
        for axes in (cosine, ratio):
            reference = axes.lines[-1]
            self.assertEqual((reference.get_linestyle(), tuple(reference.get_ydata())),
                             ("--", (1.0, 1.0)))
        # The input switch at t = 5, on every panel.
        for axes in figure.axes:
            (switches,) = axes.collections
            self.assertEqual([segment[0, 0] for segment in switches.get_segments()], [5.0])

    def test_metrics_draws_only_panels_with_data(self):
        t = np.linspace(0.0, 60.0, 601)
        # 59 input switches: too many to mark.
        write_run(self.run_file, t, np.arange(1.0, 60.0), {"h": ("all", t[:, None])}, ["h"],
                  extra={"metrics/residual/x": np.exp(-t), "metrics/loss": np.full(len(t), np.nan)})
        with RunFile(self.run_file) as run:
            figure = metrics.draw_metrics(run, None)
        (residual,) = figure.axes
        self.assertEqual(residual.get_title(), "relaxation residuals")
        self.assertEqual(len(residual.collections), 0)

    def test_metrics_learning_curve_of_a_training_run(self):
        # A training run: /data, and /metrics/epoch with the initial network's scores as
        # attributes, drawn first as two panels over time (the initial scores at t0).
        path = self.directory / "training.h5"
        t = np.arange(0.0, 60.5, 10.0)
        epochs = {"time": np.array([20.0, 40.0, 60.0]), "epoch": np.array([1.0, 2.0, 3.0]),
                  "train_accuracy": np.array([0.8, 0.9, 0.95]),
                  "test_accuracy": np.array([0.75, 0.85, 0.9]),
                  "train_loss": np.array([0.6, 0.3, 0.2]), "test_loss": np.array([0.7, 0.4, 0.3])}
        write_run(path, t, t[1:-1], {}, ["in", "out"], extra={
            "metrics/loss": 0.5 * np.exp(-t / 20), "metrics/accuracy": np.full(len(t), 0.9),
            **{f"metrics/epoch/{name}": values for name, values in epochs.items()}})
        with h5py.File(path, "a") as f:
            f.create_group("data").attrs["name"] = "digits"
            f["metrics/epoch"].attrs["initial_test_accuracy"] = 0.1
            f["metrics/epoch"].attrs["initial_train_accuracy"] = 0.12
            f["metrics/epoch"].attrs["initial_test_loss"] = 2.3
            f["metrics/epoch"].attrs["initial_train_loss"] = 2.2
        with RunFile(path) as run:
            figure = metrics.draw_metrics(run, None)
        curve, curve_loss, loss, accuracy = figure.axes
        self.assertTrue(curve.get_title().startswith("learning curve: accuracy"))
        self.assertEqual([line.get_label() for line in curve.lines], ["training set", "held-out set"])
        held_out = curve.lines[1]
        self.assertEqual(list(held_out.get_xdata()), [0.0, 20.0, 40.0, 60.0])
        self.assertEqual(list(held_out.get_ydata()), [0.1, 0.75, 0.85, 0.9])
        self.assertEqual(curve_loss.get_yscale(), "log")
        self.assertIn("current minibatch", loss.get_title())
        self.assertIn("current minibatch", accuracy.get_title())
        for axes in figure.axes:  # a training run switches at every minibatch: no switch lines
            self.assertEqual(len(axes.collections), 0)

    def test_metrics_of_killed_run(self):
        t = np.linspace(0.0, 1.0, 11)
        write_run(self.run_file, t, [], {}, ["h"], solver=False,
                  extra={"metrics/loss": np.exp(-t[:7]), "metrics/accuracy": np.ones(13)})
        output = self.directory / "metrics.pdf"
        self.assertEqual(run_tool("metrics", self.run_file, "-o", output).returncode, 0)
        self.assertTrue(output.read_bytes().startswith(b"%PDF"))

    def test_no_metrics(self):
        write_two_segment_run(self.run_file, costate=False)
        self.assert_error_exit(run_tool("metrics", self.run_file), "no metrics")

    def draw_relaxation(self, phases=relaxation.DEFAULT_PHASES):
        with RunFile(self.run_file) as run:
            return relaxation.draw_relaxation(run, argparse.Namespace(phases=phases))

    def test_relaxation_writes_png(self):
        write_dtp_run(self.run_file)
        output = self.directory / "relax.png"
        result = run_tool("relaxation", self.run_file, "-o", output, "--phases", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), str(output))
        self.assertGreater(output.stat().st_size, 10000)
        height = (relaxation.TITLE_HEIGHT + relaxation.RESIDUAL_HEIGHT
                  + relaxation.LIPSCHITZ_HEIGHT + relaxation.ALIGNMENT_HEIGHT
                  + relaxation.RATES_HEIGHT)
        self.assertEqual(png_size(output), (round(relaxation.WIDTH * relaxation.DPI),
                                            round(height * relaxation.DPI)))
        # The default name, next to the run file.
        self.assertEqual(run_tool("relaxation", self.run_file).returncode, 0)
        self.assertTrue((self.directory / "run_relaxation.png").is_file())

    def test_relaxation_panels(self):
        write_dtp_run(self.run_file)
        residual, lipschitz, alignment, rates, agreement = self.draw_relaxation().axes
        self.assertEqual(residual.get_yscale(), "log")
        self.assertIn("the 3 target phases", residual.get_title())
        # The target phases are shaded on the panels over time, not on the rate panels.
        for axes in (residual, lipschitz, alignment):
            (shading,) = [c for c in axes.collections if isinstance(c, PolyCollection)]
            self.assertEqual([(path.vertices[0, 0], path.vertices[1, 0])
                              for path in shading.get_paths()], DTP_TARGET_PHASES)
        self.assertEqual(lipschitz.lines[-1].get_linestyle(), "--")  # the reference at 1
        self.assertEqual(tuple(lipschitz.lines[-1].get_ydata()), (1.0, 1.0))
        self.assertEqual(alignment.get_ylim(), (-1.05, 1.05))
        self.assertEqual([line.get_linestyle() for line in alignment.lines[:4]],
                         ["-", "-", "--", "--"])
        # Fitted rates (circles) and predicted ones (crosses) per target phase, layer by layer.
        for index, name in enumerate(("layer0", "layer1")):
            fitted, predicted = rates.lines[2 * index:2 * index + 2]
            self.assertEqual((fitted.get_marker(), predicted.get_marker()), ("o", "x"))
            np.testing.assert_array_equal(fitted.get_ydata(), DTP_RATES[name])
            np.testing.assert_array_equal(predicted.get_ydata(), DTP_PREDICTED[name])
            np.testing.assert_allclose(np.round(fitted.get_xdata()), [0, 1, 2])
            points = agreement.lines[index]
            np.testing.assert_array_equal(points.get_xdata(), DTP_PREDICTED[name])
            np.testing.assert_array_equal(points.get_ydata(), DTP_RATES[name])
        diagonal = agreement.lines[-1]
        np.testing.assert_array_equal(diagonal.get_xdata(), diagonal.get_ydata())
        # One colour per layer in every panel: layer1 in the residuals, the Lipschitz
        # constants and the rates, and the projection into layer1 in the alignment.
        colour = residual.lines[1].get_color()
        self.assertEqual({colour, lipschitz.lines[1].get_color(), rates.lines[2].get_color(),
                          alignment.lines[0].get_color()}, {colour})

    def test_relaxation_decays_follow_exact_residuals(self):
        write_dtp_run(self.run_file)
        (residual, *_) = self.draw_relaxation(phases=2).axes
        self.assertIn("the first 2", residual.get_title())
        decays = {collection.get_gid(): collection.get_segments()
                  for collection in residual.collections if collection.get_gid()}
        self.assertEqual(set(decays), {f"{attribute} {name}" for name in DTP_START
                                       for attribute in relaxation.RATE_STYLES})
        for name in DTP_START:
            fitted = decays[f"fitted_rate {name}"]
            self.assertEqual(len(fitted), 2)
            for segment, (start, end), rate in zip(fitted, DTP_TARGET_PHASES, DTP_RATES[name]):
                t, r = segment.T
                # Over the later half of the phase, on the residual itself.
                self.assertAlmostEqual(t[0], 0.5 * (start + end), delta=1e-12)
                self.assertAlmostEqual(t[-1], end, delta=1e-9)
                np.testing.assert_allclose(r, DTP_START[name] * np.exp(-rate * (t - start)),
                                           rtol=1e-9)
            # The predicted decays: the same anchor, at the predicted rate; none where NaN.
            predicted = [rate for rate in DTP_PREDICTED[name][:2] if np.isfinite(rate)]
            segments = decays[f"predicted_rate {name}"]
            self.assertEqual(len(segments), len(predicted))
            for segment, rate in zip(segments, predicted):
                t, r = segment.T
                np.testing.assert_allclose(r, r[-1] * np.exp(-rate * (t - t[-1])), rtol=1e-12)

    def test_relaxation_draws_only_panels_with_data(self):
        write_dtp_run(self.run_file, lipschitz=False, alignment=False, rates=False)
        (residual,) = self.draw_relaxation().axes
        self.assertEqual(len([c for c in residual.collections
                              if c.get_gid() and len(c.get_segments())]), 0)
        write_dtp_run(self.run_file, lipschitz=False, alignment=True, rates=True)
        result = run_tool("relaxation", self.run_file, "-o", self.directory / "relax.png")
        self.assertEqual(result.returncode, 0, result.stderr)
        height = (relaxation.TITLE_HEIGHT + relaxation.RESIDUAL_HEIGHT
                  + relaxation.ALIGNMENT_HEIGHT + relaxation.RATES_HEIGHT)
        self.assertEqual(png_size(self.directory / "relax.png")[1], round(height * relaxation.DPI))

    def test_relaxation_without_phases_in_config(self):
        write_dtp_run(self.run_file, config=None)
        residual = self.draw_relaxation().axes[0]
        self.assertIn("target phases unknown", residual.get_title())
        self.assertFalse(any(len(c.get_segments()) for c in residual.collections
                             if c.get_gid()))

    def test_relaxation_without_relaxation_metrics(self):
        # The costate run file has /metrics, but none under /metrics/relaxation.
        self.assert_error_exit(run_tool("relaxation", self.run_file), "no relaxation metrics")

    def test_relaxation_bad_phase_count(self):
        write_dtp_run(self.run_file)
        self.assertEqual(run_tool("relaxation", self.run_file, "--phases", "-1").returncode, 2)

    def test_metrics_of_dtp_run_leaves_relaxation_out(self):
        write_dtp_run(self.run_file)
        with RunFile(self.run_file) as run:
            (loss,) = metrics.draw_metrics(run, None).axes
        self.assertEqual(loss.get_title(), metrics.PANELS[0].title)

    def test_no_recorded_x(self):
        t = np.linspace(0.0, 1.0, 11)
        write_run(self.run_file, t, [], {}, ["in", "h"])
        self.assert_error_exit(run_tool("waves", self.run_file), "no recorded x")

    def test_bad_output_extension(self):
        result = run_tool("waves", self.run_file, "-o", self.directory / "figure.jpg")
        self.assertEqual(result.returncode, 2)


if __name__ == "__main__":
    unittest.main()
