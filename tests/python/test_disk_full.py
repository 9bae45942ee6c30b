"""A full disk and an unwritable stderr (issue 8).

Disk full: runs write examples/forward_wave.toml into a small tmpfs, of sizes from a few KiB to
just above the whole file, so that the disk fills while the metadata is written, while samples
stream, and at the end. Every run must end without a signal (it used to crash in HDF5's cleanup
at exit) with status 0, or 2 and "cannot write the output: … disk full"; a file with samples must
open with h5py (with and without swmr=True) and hold exactly the samples that reached it: every
state dataset and metric as long as /time (it used to keep /time empty), their rows equal to a
run on an ordinary disk. Mounting a tmpfs needs root (CI runs as root); without it these tests
are skipped with the reason.

stderr unwritable (2>/dev/full): every run, even a successful one, used to abort with status 134
(fmt::print threw). Diagnostics that cannot be shown are dropped; the status and the file are
what they would be.

Run: LEARNFLOW_BIN=build/learnflow /usr/bin/python3 tests/python/test_disk_full.py -v
"""

import math
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(os.environ.get("LEARNFLOW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
CONFIG = ROOT / "examples" / "forward_wave.toml"
SAMPLE_DT = 0.01  # 1201 samples of 168 values: a file of about 1.8 MB

# Flushed after every 100 samples, whatever the wall time: the same file layout, so the same
# moments at which the disk fills, on a fast machine and on a loaded one.
FLUSH = ["--set", "output.flush_seconds=0"]
# The two record settings: every neuron at every sample; and every third sample of the hidden
# layers, every sample of the output layer, with a per-sample metric (/metrics/residual/x).
RECORDS = {
    "all": FLUSH,
    "strided": [*FLUSH, "--set", 'output.record={x="every:3", "x/layer6"="all"}',
                "--set", "output.residual=true"],
}


def run(args, stderr=subprocess.PIPE):
    return subprocess.run([str(BIN), *map(str, args)], stdout=subprocess.PIPE, stderr=stderr,
                          text=True, timeout=300)


def try_mount(folder, size):
    """Mounts a tmpfs of `size` bytes at `folder`; the reason when it cannot."""
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    return None if result.returncode == 0 else (result.stderr.strip() or "mount failed")


def per_sample_datasets(f):
    """(path, rows per sample stride) of /state/… and /metrics/residual/…: one row every
    `stride` samples."""
    found = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        if name.startswith("state/"):
            found.append((name, int(obj.attrs["stride"]) if str(obj.attrs["record"]).startswith("every") else 1))
        elif name.startswith("metrics/residual/"):
            found.append((name, 1))

    f.visititems(visit)
    return found


class DiskFullTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="learnflow_disk_full_"))
        cls.mount = cls.dir / "disk"
        cls.mount.mkdir()
        reason = try_mount(cls.mount, 64 * 1024)
        if reason is not None:
            print(f"test_disk_full: skipped, cannot mount a tmpfs: {reason}")
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise unittest.SkipTest(f"cannot mount a tmpfs (needs root): {reason}")
        subprocess.run(["umount", str(cls.mount)], check=True)
        # The same runs on an ordinary disk: the rows every salvaged file must hold.
        cls.reference = {}
        for record, extra in RECORDS.items():
            out = cls.dir / f"reference_{record}.h5"
            result = run(["run", CONFIG, "-o", out, "--quiet", "--set", f"output.sample_dt={SAMPLE_DT}", *extra])
            assert result.returncode == 0, result.stderr
            with h5py.File(out, "r") as f:
                cls.reference[record] = {name: f[name][()] for name, _ in per_sample_datasets(f)}
                cls.reference[record]["time"] = f["time"][()]
            cls.reference[record]["bytes"] = out.stat().st_size

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_on_disk(self, size, record):
        """The run on a tmpfs of `size` bytes: (result, samples in the file or None)."""
        reason = try_mount(self.mount, size)
        self.assertIsNone(reason)
        try:
            out = self.mount / "out.h5"
            result = run(["run", CONFIG, "-o", out, "--set", f"output.sample_dt={SAMPLE_DT}",
                          *RECORDS[record]])
            return result, self.check_file(out, record, result)
        finally:
            subprocess.run(["umount", str(self.mount)], check=True)

    def check_file(self, out, record, result):
        """The file holds exactly its complete samples, equal to the reference's; their count."""
        if not out.exists():
            return None
        ref = self.reference[record]
        samples = None
        for swmr in (True, False):
            try:
                f = h5py.File(out, "r", swmr=swmr)
            except OSError as error:
                # Where the disk was too full even for the reserve (writer.cpp), HDF5 could not
                # close the file: one in SWMR mode still opens with swmr=True; only a run that
                # failed before it streamed a sample may leave a file that does not open at all.
                self.assertNotEqual(result.returncode, 0, f"{error}")
                self.assertIn(samples, (None, 0), f"{error}")
                self.assertNotRegex(result.stderr, r"keeps the first [1-9]", f"{error}")
                continue
            with f:
                if "time" not in f:
                    continue
                n = f["time"].shape[0]
                samples = n if samples is None else samples
                self.assertEqual(n, samples, "the same file read twice")
                np.testing.assert_array_equal(f["time"][()], ref["time"][:n])
                datasets = per_sample_datasets(f)
                self.assertEqual(sorted(name for name, _ in datasets),
                                 sorted(k for k in ref if k not in ("time", "bytes")))
                for name, stride in datasets:
                    rows = f[name].shape[0]
                    self.assertEqual(rows, math.ceil(n / stride),
                                     f"{name}: {rows} rows for {n} samples (swmr={swmr})")
                    np.testing.assert_array_equal(f[name][()], ref[name][:rows], err_msg=name)
        return samples

    def assert_disk_full(self, result):
        self.assertGreaterEqual(result.returncode, 0, f"killed by signal {-result.returncode}: {result.stderr}")
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)  # one message, no HDF5 error stack
        self.assertTrue(lines[0].startswith("learnflow: error: "), result.stderr)
        self.assertIn("cannot write the output", lines[0])
        self.assertIn("disk full (No space left on device)", lines[0])

    def test_disk_full_while_streaming(self):
        # Half the file: the disk fills while samples stream (after several flushes), with the
        # HDF5 calls on the writer thread and on the run's own thread (the choice depends on
        # the cores left: both are forced here, the machine's choice is the other tests').
        for record, writer_thread in ((record, forced) for record in RECORDS for forced in "10"):
            with self.subTest(record=record, writer_thread=writer_thread):
                size = self.reference[record]["bytes"] // 2 // 4096 * 4096
                os.environ["LEARNFLOW_WRITER_THREAD"] = writer_thread
                try:
                    result, samples = self.run_on_disk(size, record)
                finally:
                    del os.environ["LEARNFLOW_WRITER_THREAD"]
                self.assert_disk_full(result)
                self.assertIsNotNone(samples)
                self.assertGreater(samples, 0)
                total = len(self.reference[record]["time"])
                self.assertLess(samples, total)
                self.assertIn(f"the file keeps the first {samples} sample(s)", result.stderr)

    def test_disk_full_while_writing_metadata(self):
        for size in (16 * 1024, 64 * 1024):
            with self.subTest(size=size):
                result, samples = self.run_on_disk(size, "all")
                self.assert_disk_full(result)
                if size == 16 * 1024:
                    # Full before streaming began: the run removed the file it had created.
                    self.assertIsNone(samples, "a run that failed before streaming leaves no file")
                else:
                    # Full at the first flush: a readable file with no sample, or none.
                    self.assertIn(samples, (None, 0))

    def test_every_moment(self):
        # From a few KiB to past the whole file: the disk fills at every stage of a run, the
        # metadata, the streaming, the end (the last flush, /parameters/final, /waves, /solver).
        for record in RECORDS:
            total = len(self.reference[record]["time"])
            whole = self.reference[record]["bytes"]
            outcomes = set()
            fractions = [0.02, 0.05, 0.1, 0.3, 0.6, 0.9, 0.97] + [1 + k / 100 for k in range(16)] + [1.3]
            for fraction in fractions:
                size = int(whole * fraction) // 4096 * 4096
                with self.subTest(record=record, size=size):
                    result, samples = self.run_on_disk(size, record)
                    if result.returncode == 0:
                        self.assertEqual(samples, total, result.stderr)
                        outcomes.add("complete")
                    else:
                        self.assert_disk_full(result)
                        outcomes.add("full, all samples" if samples == total else "full")
            # The sizes cover every stage: runs that failed while streaming, runs that failed
            # after their last sample (at the end), and runs that fitted.
            self.assertEqual(outcomes, {"full", "full, all samples", "complete"})


class UnwritableStderrTest(unittest.TestCase):
    """2>/dev/full: fmt::print(stderr, …) threw std::system_error, and every run aborted (134)."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="learnflow_dev_full_"))
        self.out = self.dir / "out.h5"

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_to_dev_full(self, *args):
        with open("/dev/full", "w") as full:
            return run(["run", CONFIG, "-o", self.out, *args], stderr=full)

    def test_successful_run(self):
        # The summary line and the progress line go to stderr.
        result = self.run_to_dev_full("--progress")
        self.assertEqual(result.returncode, 0)
        with h5py.File(self.out, "r") as f:
            self.assertEqual(f["solver"].attrs["outcome"], "success")
            self.assertEqual(f["time"].shape[0], f["state/x/layer1"].shape[0])
            self.assertAlmostEqual(f["time"][-1], 12.0)

    def test_bad_input(self):
        result = self.run_to_dev_full("--set", "integrator.rtol=-1")
        self.assertEqual(result.returncode, 2)
        self.assertFalse(self.out.exists())

    def test_numerical_failure(self):
        result = self.run_to_dev_full("--set", "integrator.max_steps=5")
        self.assertEqual(result.returncode, 3)
        with h5py.File(self.out, "r") as f:
            self.assertEqual(f["solver"].attrs["outcome"], "step_limit")
            self.assertGreater(f["time"].shape[0], 0)


if __name__ == "__main__":
    unittest.main()
