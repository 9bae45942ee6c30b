"""Nothing lost (issue 8): signals, checkpoints and --resume, the output-file policy, the guards.

The oracle of every resume test is the run that was never interrupted: the resumed file must hold
the same datasets and attributes, bit for bit, except the wall-clock ones (creation time, solver
wall seconds), compared with h5py. Kill moments come from a seeded generator; a kill that lands
before the first checkpoint (nothing to resume) is run again with --force and counted apart.
Run with /usr/bin/python3 (h5py); LEARNFLOW_BIN names the binary.
"""
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("LEARNFLOW_BIN", ROOT / "build" / "learnflow"))
WALL_CLOCK = {("/", "created"), ("/solver", "wall_seconds"), ("/adjoint", "wall_seconds")}

# Runs of one to a few seconds each: streaming with weight flow (dopri5, FSAL derivative in the
# checkpoint), learning with phases and end-of-phase updates (GAIT-prop with Cash–Karp, DTP with
# Bulirsch–Stoer: checkpoints at segment starts), and the adjoint with its backward sweep.
CASES = {
    "costate_dopri5": (ROOT / "examples" / "xor_costate.toml", ["integrator.t_end=150000"]),
    "gaitprop_rkck54": (ROOT / "examples" / "gaitprop_patterns.toml",
                        ["integrator.stepper=\"rkck54\"", "integrator.t_end=12000",
                         "output.sample_dt=1.0"]),
    "dtp_bs": (ROOT / "examples" / "dtp_relaxation.toml",
               ["integrator.stepper=\"bs\"", "integrator.t_end=2400", "output.sample_dt=1.0"]),
    "adjoint_rk4": (ROOT / "tests" / "data" / "reference" / "adjoint.toml",
                    ["integrator.stepper=\"rk4\"", "integrator.dt0=0.05", "integrator.t_end=2000",
                     "output.sample_dt=0.5"]),
}


def overrides(sets):
    args = []
    for s in sets:
        args += ["--set", s]
    return args


def run_args(case, output, *extra):
    config, sets = CASES[case]
    return [str(BIN), "run", str(config), "-o", str(output), "--quiet",
            *overrides(sets + ["output.checkpoint_seconds=0.1"]), *extra]


def signal_mid_run(process, marker, signum):
    """Delivers `signum` to a running learnflow at a moment that does not depend on the machine's
    speed: as soon as `marker` (its output file or checkpoint) exists, the process is paused
    (SIGSTOP), given the signal and continued. The file appears after the signal handlers are
    installed, seconds before the run ends, so the signal always lands mid-run. Returns False if
    the process ended first."""
    while process.poll() is None and not marker.exists():
        time.sleep(0.002)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGSTOP)
    process.send_signal(signum)
    process.send_signal(signal.SIGCONT)
    return True


def differences(path_a, path_b, ignore=()):
    """Every dataset and attribute that differs (wall-clock attributes and `ignore` excepted)."""
    found = []
    with h5py.File(path_a, "r") as a, h5py.File(path_b, "r") as b:
        objects = {}
        for f, side in ((a, 0), (b, 1)):
            names = {"/": f}
            f.visititems(lambda name, obj: names.__setitem__("/" + name, obj))
            objects[side] = names
        if set(objects[0]) != set(objects[1]):
            found.append(("objects", sorted(set(objects[0]) ^ set(objects[1]))))
        for path in sorted(set(objects[0]) & set(objects[1])):
            oa, ob = objects[0][path], objects[1][path]
            if isinstance(oa, h5py.Dataset):
                x, y = oa[()], ob[()]
                if x.shape != y.shape or x.tobytes() != y.tobytes():
                    found.append((path, x.shape, y.shape))
            ka = {k for k in oa.attrs if (path, k) not in WALL_CLOCK and (path, k) not in ignore}
            kb = {k for k in ob.attrs if (path, k) not in WALL_CLOCK and (path, k) not in ignore}
            if ka != kb:
                found.append((path, "attributes", sorted(ka ^ kb)))
            for k in sorted(ka & kb):
                va, vb = oa.attrs[k], ob.attrs[k]
                same = (np.asarray(va).tobytes() == np.asarray(vb).tobytes()
                        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray) else va == vb)
                if not same and not (isinstance(va, float) and np.isnan(va) and np.isnan(vb)):
                    found.append((path, k, va, vb))
    return found


class ResumeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.reference, cls.seconds = {}, {}
        for case in CASES:
            out = cls.dir / f"{case}_reference.h5"
            start = time.monotonic()
            result = subprocess.run(run_args(case, out), capture_output=True, text=True)
            cls.seconds[case] = time.monotonic() - start
            assert result.returncode == 0, result.stderr
            cls.reference[case] = out

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def resume_until_done(self, case, output):
        """--resume until the run completes; returns the number of resumes."""
        for attempt in range(5):
            result = subprocess.run(run_args(case, output, "--resume"), capture_output=True, text=True)
            if result.returncode == 0:
                return attempt + 1
            self.fail(f"{case}: --resume exited {result.returncode}: {result.stderr}")
        return 0

    def test_kill_at_random_moments_then_resume_is_bit_identical(self):
        # Each kill comes at a seeded random moment after the run's first checkpoint (the moment
        # is a fraction of the run's own duration, so it does not depend on the machine's speed).
        rng = random.Random(int(os.environ.get("LEARNFLOW_RESUME_SEED", "8")))
        resumed = finished = 0
        kills = [case for case in CASES for _ in range(5)]  # 20 kills
        for i, case in enumerate(kills):
            moment = rng.uniform(0.0, 0.5) * self.seconds[case]
            # A run faster than the reference was (the machine's load changed) may end before its
            # kill: it is killed again, sooner (at most three times).
            for attempt in range(4):
                out = self.dir / f"kill{i}_{attempt}_{case}.h5"
                checkpoint = Path(str(out) + ".checkpoint")
                process = subprocess.Popen(run_args(case, out), stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                while process.poll() is None and not checkpoint.exists():
                    time.sleep(0.005)
                time.sleep(moment)
                process.send_signal(signal.SIGKILL)
                process.wait()
                if process.returncode != 0:
                    break
                moment /= 4
            if process.returncode == 0 or not checkpoint.exists():
                finished += 1  # it ended before the kill (or was killed after removing its checkpoint)
            else:
                self.resume_until_done(case, out)
                resumed += 1
            self.assertFalse(checkpoint.exists(), f"{case}: a finished run keeps no checkpoint")
            self.assertEqual(differences(self.reference[case], out), [],
                             f"{case} killed {moment:.2f} s after its first checkpoint")
        print(f"\n  {resumed} of {len(kills)} kills resumed from a checkpoint, {finished} runs "
              f"ended before their kill", file=sys.stderr)
        self.assertGreaterEqual(resumed, 15)

    def test_killed_before_its_first_checkpoint_there_is_nothing_to_resume(self):
        case = "costate_dopri5"
        out = self.dir / "early.h5"
        config, sets = CASES[case]
        args = [str(BIN), "run", str(config), "-o", str(out), "--quiet", *overrides(sets)]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while process.poll() is None and not out.exists():
            time.sleep(0.005)
        time.sleep(0.1)  # the default checkpoint interval is 60 s
        process.send_signal(signal.SIGKILL)
        process.wait()
        result = subprocess.run(args + ["--resume"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("nothing to resume", result.stderr)
        result = subprocess.run(args + ["--force"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_every_stepper_and_model_resumes_bit_for_bit_after_sigterm(self):
        # SIGTERM stops the loop at a step boundary and checkpoints there, wherever that is.
        xor = ROOT / "examples" / "xor_costate.toml"
        matrix = {f"costate_{stepper}": (xor, ["integrator.t_end=60000",
                                               f"integrator.stepper=\"{stepper}\""] + extra)
                  for stepper, extra in (("dopri5", []), ("rkck54", []), ("rkf78", []), ("bs", []),
                                         ("rk4", ["integrator.dt0=0.05"]),
                                         ("euler", ["integrator.dt0=0.01"]))}
        matrix["leaky"] = (ROOT / "examples" / "forward_wave.toml",
                           ["integrator.t_end=3000", "output.sample_dt=0.5"])
        matrix["dtp"] = CASES["dtp_bs"][0], ["integrator.t_end=2400", "output.sample_dt=1.0"]
        matrix["gaitprop_discrete"] = (CASES["gaitprop_rkck54"][0],
                                       ["model.mode=\"discrete\"", "integrator.t_end=12000",
                                        "output.sample_dt=1.0"])
        interrupted = 0
        for name, (config, sets) in matrix.items():
            with self.subTest(case=name):
                base = [str(BIN), "run", str(config), "--quiet",
                        *overrides(sets + ["output.checkpoint_seconds=0.1"])]
                reference = self.dir / f"matrix_{name}_reference.h5"
                self.assertEqual(subprocess.run(base + ["-o", str(reference)]).returncode, 0)
                out = self.dir / f"matrix_{name}.h5"
                process = subprocess.Popen(base + ["-o", str(out)], stderr=subprocess.DEVNULL)
                signal_mid_run(process, Path(str(out) + ".checkpoint"), signal.SIGTERM)
                process.wait()
                if process.returncode == 128 + signal.SIGTERM:
                    interrupted += 1
                    result = subprocess.run(base + ["-o", str(out), "--resume"], capture_output=True,
                                            text=True)
                    self.assertEqual(result.returncode, 0, result.stderr)
                else:
                    self.assertEqual(process.returncode, 0)
                self.assertEqual(differences(reference, out), [])
        self.assertGreaterEqual(interrupted, len(matrix) - 2)

    def test_sigterm_closes_the_file_and_resume_finishes_it(self):
        case = "costate_dopri5"
        out = self.dir / "sigterm.h5"
        process = subprocess.Popen(run_args(case, out), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        self.assertTrue(signal_mid_run(process, Path(str(out) + ".checkpoint"), signal.SIGTERM))
        _, stderr = process.communicate()
        self.assertEqual(process.returncode, 128 + signal.SIGTERM, stderr)
        self.assertIn("interrupted by signal 15", stderr)
        self.assertIn("--resume", stderr)
        with h5py.File(out, "r") as f:  # a normal close: no SWMR needed
            self.assertEqual(f["/solver"].attrs["outcome"], "interrupted")
            t = f["/time"][()]
            self.assertGreater(len(t), 0)
            with h5py.File(self.reference[case], "r") as ref:
                # Every sample before the signal, as the uninterrupted run has it.
                np.testing.assert_array_equal(t, ref["/time"][: len(t)])
                kept = []
                f["/state"].visititems(lambda name, obj: kept.append(name)
                                       if isinstance(obj, h5py.Dataset) else None)
                self.assertTrue(kept)
                for name in kept:
                    np.testing.assert_array_equal(f["/state"][name][()],
                                                  ref["/state"][name][: len(t)])
        self.assertTrue(Path(str(out) + ".checkpoint").exists())
        self.resume_until_done(case, out)
        self.assertEqual(differences(self.reference[case], out), [])

    def test_wall_time_limit_exits_3_and_the_run_resumes(self):
        case = "gaitprop_rkck54"
        out = self.dir / "wall.h5"
        result = subprocess.run(run_args(case, out, "--set", "integrator.max_wall_seconds=0.1"),
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("integrator.max_wall_seconds", result.stderr)
        with h5py.File(out, "r") as f:
            self.assertEqual(f["/solver"].attrs["outcome"], "wall_limit")
        # The limit is per invocation and shapes no result: --resume may raise it.
        result = subprocess.run(run_args(case, out, "--resume", "--set", "integrator.max_wall_seconds=1e6"),
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        # The file's config is the first invocation's (with its limit); everything else is equal.
        with h5py.File(out, "r") as f:
            self.assertIn("max_wall_seconds = 0.1", f.attrs["config"])
        self.assertEqual(differences(self.reference[case], out, ignore={("/", "config")}), [])

    def test_resume_refuses_another_config(self):
        case = "costate_dopri5"
        out = self.dir / "other.h5"
        process = subprocess.Popen(run_args(case, out), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        self.assertTrue(signal_mid_run(process, Path(str(out) + ".checkpoint"), signal.SIGINT))
        process.wait()
        self.assertEqual(process.returncode, 128 + signal.SIGINT)
        result = subprocess.run(run_args(case, out, "--resume", "--set", "model.gamma=4.0"),
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("config differs", result.stderr)
        self.assertTrue(Path(str(out) + ".checkpoint").exists(), "a refused resume keeps everything")


class OutputPolicyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def long_run(self, output, *extra):
        return [str(BIN), "run", str(CASES["costate_dopri5"][0]), "-o", str(output), "--quiet",
                "--set", "integrator.t_end=100000", *extra]

    def test_a_second_run_never_truncates_a_live_run_file(self):
        out = self.dir / "live.h5"
        first = subprocess.Popen(self.long_run(out), stderr=subprocess.PIPE, text=True)
        for _ in range(100):  # until the first run has created its file
            if out.exists():
                break
            time.sleep(0.02)
        time.sleep(0.2)
        second = subprocess.run(self.long_run(out), capture_output=True, text=True)
        self.assertEqual(second.returncode, 2)
        self.assertIn("another learnflow run is writing this file", second.stderr)
        forced = subprocess.run(self.long_run(out, "--force"), capture_output=True, text=True)
        self.assertEqual(forced.returncode, 2)
        self.assertIn("another learnflow run is writing this file", forced.stderr)
        _, stderr = first.communicate()
        self.assertEqual(first.returncode, 0, stderr)
        with h5py.File(out, "r") as f:
            self.assertEqual(f["/solver"].attrs["outcome"], "success")
            self.assertEqual(len(f["/time"]), 100000 / 80 + 1)

    def test_existing_file_needs_force_and_force_replaces_only_run_files(self):
        out = self.dir / "run.h5"
        args = [str(BIN), "run", str(ROOT / "examples" / "forward_wave.toml"), "-o", str(out), "--quiet"]
        self.assertEqual(subprocess.run(args).returncode, 0)
        before = out.read_bytes()
        result = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--force", result.stderr)
        self.assertEqual(out.read_bytes(), before)
        self.assertEqual(subprocess.run(args + ["--force"]).returncode, 0)
        notes = self.dir / "notes.txt"
        notes.write_text("my notes\n")
        result = subprocess.run([str(BIN), "run", str(ROOT / "examples" / "forward_wave.toml"), "-o",
                                 str(notes), "--force", "--quiet"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("only an earlier learnflow run file", result.stderr)
        self.assertEqual(notes.read_text(), "my notes\n")
        # An HDF5 file that is not a run file is refused too, and kept.
        images = self.dir / "images.h5"
        with h5py.File(images, "w") as f:
            f["images"] = np.arange(12.0)
        before = images.read_bytes()
        result = subprocess.run([str(BIN), "run", str(ROOT / "examples" / "forward_wave.toml"), "-o",
                                 str(images), "--force", "--quiet"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("only an earlier learnflow run file", result.stderr)
        self.assertEqual(images.read_bytes(), before)

    def test_a_file_at_the_checkpoints_name_is_never_overwritten(self):
        out = self.dir / "run.h5"
        mine = Path(str(out) + ".checkpoint")
        mine.write_text("not a checkpoint\n")
        result = subprocess.run([str(BIN), "run", str(ROOT / "examples" / "forward_wave.toml"), "-o",
                                 str(out), "--quiet"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("is not a learnflow checkpoint", result.stderr)
        self.assertFalse(out.exists())
        self.assertEqual(mine.read_text(), "not a checkpoint\n")

    def test_a_swmr_reader_open_at_the_end_does_not_fail_the_run(self):
        out = self.dir / "watched.h5"
        run = subprocess.Popen(self.long_run(out), stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            try:
                reader = h5py.File(out, "r", libver="latest", swmr=True)
                break
            except OSError:
                time.sleep(0.02)
        else:
            self.fail("the run file never became readable")
        try:
            _, stderr = run.communicate()  # the reader stays open until the run has ended
            self.assertEqual(run.returncode, 0, stderr)
        finally:
            reader.close()
        with h5py.File(out, "r") as f:
            self.assertEqual(f["/solver"].attrs["outcome"], "success")
            self.assertIn("final", f["/parameters"])

    def test_kill_during_the_adjoint_sweep_leaves_a_readable_file(self):
        config, sets = CASES["adjoint_rk4"]
        out = self.dir / "adjoint.h5"
        args = [str(BIN), "run", str(config), "-o", str(out), "--quiet", *overrides(sets)]
        start = time.monotonic()
        run = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        # The forward sweep has ended once /solver exists (it is written before the backward sweep).
        while run.poll() is None:
            try:
                with h5py.File(out, "r") as f:
                    if "/solver" in f:
                        break
            except OSError:
                pass
            time.sleep(0.01)
        if run.poll() is not None:
            self.skipTest("the backward sweep ended before it could be killed")
        run.send_signal(signal.SIGKILL)
        run.wait()
        with h5py.File(out, "r") as f:  # without swmr=True, and without h5clear
            self.assertEqual(f["/solver"].attrs["outcome"], "success")
            self.assertNotIn("/adjoint", f)
        self.assertTrue(Path(str(out) + ".checkpoint").exists())
        result = subprocess.run(args + ["--resume"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(out, "r") as f:
            self.assertIn("/adjoint/grad", f)
        self.assertLess(time.monotonic() - start, 120)


class DamagedCheckpointTest(unittest.TestCase):
    def test_a_damaged_checkpoint_is_refused_and_the_file_kept(self):
        with tempfile.TemporaryDirectory() as tmp:
            case = "costate_dopri5"
            out = Path(tmp) / "damaged.h5"
            process = subprocess.Popen(run_args(case, out), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            checkpoint = Path(str(out) + ".checkpoint")
            while process.poll() is None and not checkpoint.exists():
                time.sleep(0.005)
            process.send_signal(signal.SIGTERM)
            process.wait()
            self.assertEqual(process.returncode, 128 + signal.SIGTERM)
            before = out.read_bytes()
            data = bytearray(checkpoint.read_bytes())
            data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
            checkpoint.write_bytes(bytes(data[: len(data) * 3 // 4]))
            result = subprocess.run(run_args(case, out, "--resume"), capture_output=True, text=True)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn("checkpoint", result.stderr)
            self.assertEqual(out.read_bytes(), before, "a refused resume leaves the run file as it was")


class GuardTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_bulirsch_stoer_waits_for_the_segment_end_and_a_second_signal_stops_at_once(self):
        # Bulirsch–Stoer can be checkpointed only at segment starts and ends: a first signal
        # inside its only segment is kept for the segment's end, a second one ends the process,
        # and the streamed file stays readable (SWMR).
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "bs.h5"
            config = Path(tmp) / "sine.toml"
            config.write_text("""
[network]
layers = [4, 32, 32, 8]
activation = "tanh"
seed = 7
[model]
type = "leaky"
[input]
kind = "sine"
amplitude = [1.0, 0.5, 0.25, 0.8]
frequency = 0.3
[integrator]
stepper = "bs"
t_end = 1e5
[output]
sample_dt = 1.0
record = { x = "norm" }
flush_latency = 0.1
""")
            process = subprocess.Popen([str(BIN), "run", str(config), "-o", str(out), "--quiet"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while process.poll() is None and not out.exists():
                time.sleep(0.01)
            time.sleep(0.3)
            process.send_signal(signal.SIGINT)
            time.sleep(0.5)
            self.assertIsNone(process.poll(), "the first signal waits for the segment's end")
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
            self.assertEqual(process.returncode, -signal.SIGINT)
            with h5py.File(out, "r", swmr=True) as f:
                self.assertGreater(len(f["/time"]), 0)

    def test_dt_min(self):
        out = self.dir / "stiff.h5"
        result = subprocess.run([str(BIN), "run", str(ROOT / "examples" / "forward_wave.toml"), "-o",
                                 str(out), "--quiet", "--set", "integrator.dt_min=10",
                                 "--set", "integrator.dt0=0.01"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("integrator.dt_min", result.stderr)
        with h5py.File(out, "r") as f:
            self.assertEqual(f["/solver"].attrs["outcome"], "step_underflow")
            self.assertIn("dt_min", f["/solver"].attrs["message"])

    def test_a_step_that_does_not_move_t_ends_the_run(self):
        # At t = 1e17 a step of 1 is below half an ulp of t: t + dt == t. Before, every such step
        # counted as accepted and the run stopped only at max_steps (1e8).
        out = self.dir / "stuck.h5"
        result = subprocess.run([str(BIN), "run", str(ROOT / "examples" / "forward_wave.toml"), "-o",
                                 str(out), "--quiet", "--set", "integrator.stepper=\"euler\"",
                                 "--set", "integrator.dt0=1.0", "--set", "integrator.t0=1e17",
                                 "--set", "integrator.t_end=1.0000000000001e17",
                                 "--set", "output.sample_dt=1e5"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("does not change t", result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
