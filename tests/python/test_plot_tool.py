"""Tests of tools/plot (the Python plotting tool) on synthetic run files.

Run: /usr/bin/python3 tests/python/test_plot_tool.py
"""

import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "plot"
sys.path.insert(0, str(TOOL))

import waves  # noqa: E402
from runfile import RunFile  # noqa: E402

# Arrival after a segment start of 1 - exp(-(t - ts)) over a segment of length 5 (and of the
# matching decay): where the curve has made half of its change 1 - exp(-5).
EXP_ARRIVAL = -math.log(0.5 * (1.0 + math.exp(-5.0)))


def write_run(path, time, breakpoints, records, populations, solver=True):
    """Write a learnflow run file. records: {population: (record, data)} with record "all",
    "every:K" or "norm" and data already subsampled as that record stores it."""
    with h5py.File(path, "w") as f:
        f.attrs["learnflow_version"] = np.bytes_("0.1.0")  # fixed-length string
        f.attrs["model"] = "synthetic"  # variable-length string
        f.attrs["integrator"] = np.bytes_("dopri5")
        f.attrs["seed"] = np.int64(1)
        f.create_dataset("time", data=time)
        for name, (record, data) in records.items():
            dataset = f.create_dataset(f"state/x/{name}", data=data)
            dataset.attrs["record"] = record
            dataset.attrs["stride"] = np.int64(record.split(":")[1] if ":" in record else 1)
        # Another block kind, which waves must ignore.
        f.create_dataset("state/lambda/h1", data=np.ones((len(time), 2)))
        f.create_dataset("metrics/loss", data=np.zeros(len(time)))
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


def write_two_segment_run(path, solver=True):
    """Segments [0, 5] and [5, 10], samples every 0.01.

    h1 (all): mean 1 - exp(-t), then decays by exp(-(t - 5)): arrivals EXP_ARRIVAL, 5 + EXP_ARRIVAL.
    h2 (all): mean ramps 0 -> 1 over [1, 3], then 1 -> 0 over [6.5, 7.5]: arrivals 2, 7.
    h3 (norm): 1 + 4 * ramp over [3, 4], then constant: arrival 3.5, then undefined.
    out (every:2, last row missing as in a killed run): mean -0.5 * that of h2: arrivals 2, 7.
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
    write_run(path, t, [5.0], records, ["in", "h1", "h2", "h3", "out"], solver)


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
        self.assertIsNone(waves.arrival_time(t, np.array([0.0, 0.0, 1e-13]), 0.0, 2.0))
        self.assertIsNone(waves.arrival_time(t, np.array([1e3, 1e3, 1e3 + 1e-10]), 0.0, 2.0))
        self.assertIsNone(waves.arrival_time(t, np.array([0.0, np.nan, 1.0]), 0.0, 2.0))
        self.assertIsNotNone(waves.arrival_time(t, np.array([0.0, 0.0, 1e-11]), 0.0, 2.0))


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

    def test_arrivals_json(self):
        result = run_tool("arrivals", self.run_file, "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        records = json.loads(result.stdout)
        expected = [("h1", 0, 0.0, EXP_ARRIVAL), ("h1", 1, 5.0, 5.0 + EXP_ARRIVAL),
                    ("h2", 0, 0.0, 2.0), ("h2", 1, 5.0, 7.0),
                    ("h3", 0, 0.0, 3.5), ("h3", 1, 5.0, None),
                    ("out", 0, 0.0, 2.0), ("out", 1, 5.0, 7.0)]
        self.assertEqual([(r["population"], r["segment"], r["start"]) for r in records],
                         [e[:3] for e in expected])
        for record, (population, _, _, arrival) in zip(records, expected):
            with self.subTest(population=population, segment=record["segment"]):
                if arrival is None:
                    self.assertIsNone(record["arrival"])
                else:
                    # Sampling error of the exponential; the ramps are exact.
                    delta = 1e-4 if population == "h1" else 1e-12
                    self.assertAlmostEqual(record["arrival"], arrival, delta=delta)

    def test_arrivals_table(self):
        result = run_tool("arrivals", self.run_file)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["population", "segment", "start", "arrival", "delay"])
        rows = {tuple(line.split()[:2]): line.split()[2:] for line in lines[1:]}
        self.assertEqual(len(rows), 8)
        start, arrival, delay = map(float, rows[("h2", "1")])
        self.assertEqual((start, arrival, delay), (5.0, 7.0, 2.0))
        self.assertEqual(rows[("h3", "1")], ["5", "-", "-"])

    def test_waves_writes_png_next_to_run(self):
        result = run_tool("waves", self.run_file)
        self.assertEqual(result.returncode, 0, result.stderr)
        output = self.directory / "run_waves.png"
        self.assertGreater(output.stat().st_size, 10000)
        self.assertEqual(png_size(output),
                         (round(waves.FIGSIZE[0] * waves.DPI), round(waves.FIGSIZE[1] * waves.DPI)))

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

    def test_no_recorded_x(self):
        t = np.linspace(0.0, 1.0, 11)
        write_run(self.run_file, t, [], {}, ["in", "h"])
        self.assert_error_exit(run_tool("waves", self.run_file), "no recorded x")

    def test_bad_output_extension(self):
        result = run_tool("waves", self.run_file, "-o", self.directory / "figure.jpg")
        self.assertEqual(result.returncode, 2)


if __name__ == "__main__":
    unittest.main()
