#!/usr/bin/python3
"""Work-precision benchmark (issue 11 item 1): learnflow against SciPy and CVODE at equal accuracy.

    /usr/bin/python3 bench/wp_bench.py --build build [--problems p1_L8_n256,w1_costate,...]
                                       [--threads 1,2] [--rtols 1e-3,...] [--repeats 3] [--out DIR]

For every problem of bench/problems (P1 at both sizes, S1, W1, W2; see bench/README.md) and every
rtol (atol = rtol) of the sweep, each solver integrates the whole schedule and is timed; its error
is the max over the whole final state (every block: x, λ, W, b) of |y − y_ref|, against a
reference run of learnflow's rkf78 at rtol = atol = 1e-13, itself checked against CVODE's Adams at
1e-12 (the reference's own error bound is printed). The solvers:
  - learnflow dopri5, with the max norm (its default) and with the RMS norm (integrator.norm),
    and learnflow rkf78 (Fehlberg 7(8)) with the max norm;
  - SciPy solve_ivp RK45 and DOP853, on NumPy with the BLAS it has (threadpoolctl names it and
    its kernel; tools/install-deps.sh installs OpenBLAS), in a child process with its BLAS held to
    the thread count; it reads the initial weights from learnflow's output file;
  - CVODE Adams (functional iteration) and BDF (Newton, matrix-free GMRES), SUNDIALS'
    libsundials-dev, on learnflow's own RHS (build/bench/learnflow_cvode_bench).
Times are medians of --repeats integrations (learnflow: Run::execute(); SciPy: solve_ivp; CVODE:
CVodeCreate to its last step, less the two state copies its RHS callback makes).
Ratios at equal accuracy: each curve is interpolated linearly in (log error, log time) and the
times compared at the same error, at every decade of error both curves reach (and at least 10x
the reference's own error).
Writes DIR/wp.json (every point) and DIR/wp.png (the curves); DIR defaults to BUILD/bench-out/wp.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_bench  # noqa: E402  (the problem files, the leaky RHS, the SciPy environment)
from training_bench import cpu_name  # noqa: E402

PROBLEMS = ["p1_L4_n1000", "p1_L8_n256", "s1_switching", "w1_costate", "w2_costate"]
RTOLS = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]
REFERENCE_RTOL = 1e-13
CHECK_RTOL = 1e-12


# ----------------------------------------------------------------------------------------------
# SciPy side: the costate RHS (the leaky one is run_bench.LeakyRHS).

def _attr(g, key):
    v = g.attrs[key]
    return v.decode() if isinstance(v, bytes) else str(v)


class CostateRHS:
    """Model costate (DESIGN §4) on a layered network of tanh populations, B = 1, squared loss,
    every projection and bias plastic, in numpy, with learnflow's block names:
        τ_x ẋ = −c x + tanh(a),  a = b + W x_from
        τ_λ λ̇ = −c λ + Σ W_outᵀ (σ'(a_to) ⊙ λ_to) + e,  e = y − x on the output
        γ Ẇ = (σ'(a_to) ⊙ λ_to) x_fromᵀ − κ W,  γ ḃ = σ'(a) ⊙ λ − κ b"""

    def __init__(self, h5, config):
        import numpy as np
        m = config["model"]
        self.c, self.tau_x, self.tau_l = float(m.get("c", 1.0)), float(m.get("tau_x", 1.0)), \
            float(m.get("tau_lambda", 1.0))
        self.gamma, self.kappa = float(m.get("gamma", 1.0)), float(m.get("kappa", 0.0))
        pops = _attr(h5["/network"], "populations").split(",")
        role = {p: _attr(h5[f"/network/population/{p}"], "role") for p in pops}
        size = {p: int(h5[f"/network/population/{p}"].attrs["size"]) for p in pops}
        self.inputs = [p for p in pops if role[p] == "input"]
        if len(self.inputs) != 1:
            raise SystemExit("scipy worker: costate RHS needs exactly one input population")
        self.hidden = [p for p in pops if role[p] != "input"]
        self.output = [p for p in pops if role[p] == "output"]
        self.proj = []
        for name in h5["/network/projection"]:
            g = h5[f"/network/projection/{name}"]
            self.proj.append((name, _attr(g, "from"), _attr(g, "to")))
        # The state: blocks in a fixed order, named as learnflow's.
        self.slices, offset = {}, 0
        shapes = {}
        for p in self.hidden:
            for kind in ("x", "lambda"):
                shapes[f"{kind}/{p}"] = (size[p],)
        for name, frm, to in self.proj:
            shapes[f"W/{name}"] = (size[to], size[frm])
        for p in self.hidden:
            shapes[f"b/{p}"] = (size[p],)
        for key, shape in shapes.items():
            n = int(np.prod(shape))
            self.slices[key] = (slice(offset, offset + n), shape)
            offset += n
        self.n_state = offset
        self.u = np.zeros(size[self.inputs[0]])
        self.target = np.zeros(sum(size[p] for p in self.output))
        self.initial = np.zeros(offset)
        for name, _, _ in self.proj:
            self.view(self.initial, f"W/{name}")[...] = h5[f"/parameters/W/{name}"][...]
        for p in self.hidden:
            self.view(self.initial, f"b/{p}")[...] = h5[f"/parameters/b/{p}"][...]
        self._np = np

    def view(self, y, key):
        sl, shape = self.slices[key]
        return y[sl].reshape(shape)

    def blocks(self, y):
        return {key: self.view(y, key) for key in self.slices}

    def __call__(self, t, y):
        np = self._np
        dy = np.empty_like(y)
        x = {p: self.view(y, f"x/{p}") for p in self.hidden}
        x[self.inputs[0]] = self.u
        delta = {}
        for p in self.hidden:
            a = self.view(y, f"b/{p}").copy()
            for name, frm, to in self.proj:
                if to == p:
                    a += self.view(y, f"W/{name}") @ x[frm]
            s = np.tanh(a)
            dx = self.view(dy, f"x/{p}")
            np.subtract(s, self.c * x[p], out=dx)
            dx /= self.tau_x
            delta[p] = (1.0 - s * s) * self.view(y, f"lambda/{p}")
        offset = 0
        for p in self.hidden:
            lam = self.view(y, f"lambda/{p}")
            dl = self.view(dy, f"lambda/{p}")
            dl[...] = -self.c * lam
            if p in self.output:
                n = lam.size
                dl += self.target[offset:offset + n] - x[p]
                offset += n
            for name, frm, to in self.proj:
                if frm == p:
                    dl += self.view(y, f"W/{name}").T @ delta[to]
            dl /= self.tau_l
        for name, frm, to in self.proj:
            dw = self.view(dy, f"W/{name}")
            np.multiply(self.view(y, f"W/{name}"), -self.kappa, out=dw)
            dw += np.outer(delta[to], x[frm])
            dw /= self.gamma
        for p in self.hidden:
            db = self.view(dy, f"b/{p}")
            np.subtract(delta[p], self.kappa * self.view(y, f"b/{p}"), out=db)
            db /= self.gamma
        return dy


class LeakyBlocks:
    """run_bench.LeakyRHS with learnflow's block names for the final state."""

    def __init__(self, h5, config):
        import numpy as np
        m = config["model"]
        self.rhs = run_bench.LeakyRHS(h5, float(m.get("c", 1.0)), float(m.get("tau", 1.0)))
        self.u, self.n_state = self.rhs.u, self.rhs.n_state
        self.initial = np.zeros(self.n_state)
        self.slices = {f"x/{p}": (sl, (sl.stop - sl.start,))
                       for p, (sl, *_rest) in zip(self.rhs.names, self.rhs.plan)}
        self.target = None

    def blocks(self, y):
        return {key: y[sl] for key, (sl, _) in self.slices.items()}

    def __call__(self, t, y):
        return self.rhs(t, y)


def scipy_worker(job):
    import h5py
    import numpy as np
    import scipy
    import tomllib
    from scipy.integrate import solve_ivp
    with h5py.File(job["run_file"], "r") as h5:
        config = tomllib.loads(_attr(h5, "config"))
        kind = config["model"]["type"]
        rhs = LeakyBlocks(h5, config) if kind == "leaky" else CostateRHS(h5, config)
    if "target" in config["input"]:
        rhs.target[:] = config["input"]["target"]
    bounds, values = run_bench.segments_of(config)
    result = {"numpy": np.__version__, "scipy": scipy.__version__,
              "blas": run_bench.blas_description(), "runs": []}
    capped = set()
    for run in job["runs"]:
        if run["method"] in capped:
            continue
        times = []
        for r in range(run["repeats"]):
            y = rhs.initial.copy()
            steps = nfev = 0
            start = time.perf_counter()
            for k in range(len(bounds) - 1):
                rhs.u[:] = values[k]
                sol = solve_ivp(rhs, (bounds[k], bounds[k + 1]), y, method=run["method"],
                                rtol=run["rtol"], atol=run["rtol"])
                if sol.status != 0:
                    raise SystemExit(f"scipy worker: {run['method']} failed: {sol.message}")
                y = sol.y[:, -1].copy()
                steps += len(sol.t) - 1
                nfev += sol.nfev
            times.append(time.perf_counter() - start)
        out = Path(job["out"]) / f"scipy-{run['method']}-{run['rtol']:.0e}.npz"
        np.savez(out, **{k.replace("/", "|"): v for k, v in rhs.blocks(y).items()})
        result["runs"].append({"solver": f"scipy {run['method']}", "rtol": run["rtol"],
                               "steps": steps, "rhs_evals": nfev, "wall_seconds": times,
                               "seconds": statistics.median(times), "state": str(out)})
        if statistics.median(times) > job["cap"]:
            capped.add(run["method"])
    json.dump(result, sys.stdout)


# ----------------------------------------------------------------------------------------------
# Reading final states.

def learnflow_final(run_file):
    """Every recorded block's last row, by block name."""
    import h5py
    import numpy as np
    out = {}
    with h5py.File(run_file, "r") as h5:
        for kind in h5["/state"]:
            for name in h5[f"/state/{kind}"]:
                out[f"{kind}/{name}"] = np.array(h5[f"/state/{kind}/{name}"][-1])
    return out


def cvode_final(state_file, blocks, shapes):
    import numpy as np
    data = np.fromfile(state_file, dtype=np.float64)
    return {b["name"]: data[b["offset"]:b["offset"] + b["size"]].reshape(shapes[b["name"]])
            for b in blocks}


def npz_final(path):
    import numpy as np
    with np.load(path) as z:
        return {k.replace("|", "/"): z[k] for k in z.files}


def max_error(state, ref):
    import numpy as np
    if set(state) != set(ref):
        raise SystemExit(f"wp_bench: blocks differ: {sorted(set(state) ^ set(ref))}")
    return max(float(np.max(np.abs(np.asarray(state[k]).reshape(ref[k].shape) - ref[k])))
               for k in ref)


# ----------------------------------------------------------------------------------------------
# Running the solvers.

def run_cmd(cmd, env=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"wp_bench: {' '.join(map(str, cmd))} failed (exit {proc.returncode}):\n"
                 f"{proc.stderr[-3000:]}")
    return proc.stdout


def learnflow_point(build, problem, out, rtol, threads, repeats, stepper="dopri5", norm="max"):
    run_file = out / f"lf-{problem.stem}-{stepper}-{norm}-{rtol:.0e}-t{threads}.h5"
    run_file.unlink(missing_ok=True)
    res = json.loads(run_cmd([
        str(build / "bench" / "learnflow_bench"), str(problem), "-o", str(run_file),
        "--threads", str(threads), "--repeats", str(repeats), "--warmup", "0",
        "--floor-batches", "0", "--set", f"integrator.stepper=\"{stepper}\"",
        "--set", f"integrator.rtol={rtol!r}", "--set", f"integrator.atol={rtol!r}",
        "--set", f"integrator.norm=\"{norm}\""]))
    return {"solver": f"learnflow {stepper} ({norm} norm)", "rtol": rtol, "steps": res["steps"],
            "rhs_evals": res["rhs_evals"], "wall_seconds": res["wall_seconds"],
            "seconds": res["median_seconds"], "file": str(run_file)}


def cvode_point(build, problem, out, method, rtol, threads, repeats, shapes):
    state = out / f"cvode-{problem.stem}-{method}-{rtol:.0e}-t{threads}.f64"
    res = json.loads(run_cmd([
        str(build / "bench" / "learnflow_cvode_bench"), str(problem), "--method", method,
        "--rtol", repr(rtol), "--atol", repr(rtol), "--threads", str(threads),
        "--repeats", str(repeats), "--state-out", str(state)]))
    copies = res["copy_seconds_per_rhs"] * (res["rhs_evals"] + res["jv_rhs_evals"])
    return {"solver": f"CVODE {method}", "rtol": rtol, "steps": res["steps"],
            "rhs_evals": res["rhs_evals"] + res["jv_rhs_evals"], "wall_seconds": res["wall_seconds"],
            "seconds": max(res["median_seconds"] - copies, 1e-9), "copy_seconds": copies,
            "sundials": res["sundials"], "nonlinear_iterations": res["nonlinear_iterations"],
            "error_test_fails": res["error_test_fails"],
            "final": cvode_final(state, res["blocks"], shapes)}


def scipy_points(ref_file, out, rtols, methods, threads, repeats, cap):
    runs = [{"method": m, "rtol": r, "repeats": repeats} for m in methods for r in rtols]
    job = json.dumps({"run_file": str(ref_file), "runs": runs, "out": str(out), "cap": cap})
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--scipy-worker", job],
                          env=run_bench.scipy_env(threads), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"wp_bench: SciPy worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


# ----------------------------------------------------------------------------------------------
# Equal accuracy.

def curve(points):
    """(log10 error, log10 seconds) sorted by error, the points with a positive error."""
    pts = sorted((math.log10(p["error"]), math.log10(p["seconds"])) for p in points
                 if p["error"] > 0 and p["seconds"] > 0)
    return pts


def time_at(pts, log_err):
    """The curve's log time at log_err by linear interpolation; None outside its range. Where
    the curve is not monotone in error the fastest time at or below that error is taken."""
    if not pts or log_err < pts[0][0] or log_err > pts[-1][0]:
        return None
    best = None
    for (e0, t0), (e1, t1) in zip(pts, pts[1:]):
        if e0 <= log_err <= e1:
            t = t0 if e1 == e0 else t0 + (t1 - t0) * (log_err - e0) / (e1 - e0)
            best = t if best is None else min(best, t)
    if best is None and len(pts) == 1 and pts[0][0] == log_err:
        best = pts[0][1]
    return best


def ratios(peer, ours, targets):
    """peer time / our time at each target error both curves reach (None elsewhere)."""
    a, b = curve(peer), curve(ours)
    out = {}
    for e in targets:
        ta, tb = time_at(a, math.log10(e)), time_at(b, math.log10(e))
        out[f"{e:.0e}"] = None if ta is None or tb is None else 10 ** (ta - tb)
    return out


# ----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", type=Path)
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rtols", default=",".join(f"{r:.0e}" for r in RTOLS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--solvers", default="learnflow,learnflow-rms,learnflow-rkf78,scipy,cvode")
    ap.add_argument("--cap", type=float, default=20.0,
                    help="a solver whose median exceeds this many seconds is not run at tighter "
                         "rtols of that problem (default 20)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--scipy-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scipy_worker:
        scipy_worker(json.loads(args.scipy_worker))
        return
    run_bench.check_problems()
    build = args.build.resolve()
    out = (args.out or build / "bench-out" / "wp").resolve()
    out.mkdir(parents=True, exist_ok=True)
    rtols = [float(r) for r in args.rtols.split(",")]
    threads_list = [int(t) for t in args.threads.split(",")]
    solvers = set(args.solvers.split(","))
    if "cvode" in solvers and not (build / "bench" / "learnflow_cvode_bench").exists():
        sys.exit("wp_bench: build/bench/learnflow_cvode_bench is missing (libsundials-dev not "
                 "installed when the build was configured? tools/install-deps.sh installs it); "
                 "or leave cvode out: --solvers learnflow,learnflow-rms,scipy")
    started = time.time()
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_name(), "cores": os.cpu_count(), "kernel": platform.release(),
            "load_before": os.getloadavg()[0], "rtols": rtols, "repeats": args.repeats,
            "cap": args.cap}
    results = {"meta": meta, "problems": {}}
    for name in args.problems.split(","):
        problem = run_bench.PROBLEMS / f"{name}.toml"
        print(f"== {name}", flush=True)
        ref = learnflow_point(build, problem, out, REFERENCE_RTOL, 2, 1, stepper="rkf78")
        ref_state = learnflow_final(ref["file"])
        shapes = {k: v.shape for k, v in ref_state.items()}
        entry = {"reference": {k: ref[k] for k in ("solver", "rtol", "steps", "seconds")},
                 "threads": {}}
        if "cvode" in solvers:
            check = cvode_point(build, problem, out, "adams", CHECK_RTOL, 2, 1, shapes)
            entry["reference"]["error_vs_cvode_1e-12"] = max_error(check["final"], ref_state)
            print(f"   reference: rkf78 at {REFERENCE_RTOL:g}, {ref['steps']} steps; "
                  f"max |ref − CVODE Adams at {CHECK_RTOL:g}| = "
                  f"{entry['reference']['error_vs_cvode_1e-12']:.2e}", flush=True)
        for threads in threads_list:
            points = []
            capped = set()  # solvers whose last point took longer than --cap: no tighter rtol

            def keep(p):
                points.append(p)
                if p["seconds"] > args.cap:
                    capped.add(p["solver"])

            for rtol in rtols:
                for solver, stepper, norm in (("learnflow", "dopri5", "max"),
                                              ("learnflow-rms", "dopri5", "rms"),
                                              ("learnflow-rkf78", "rkf78", "max")):
                    if solver in solvers and f"learnflow {stepper} ({norm} norm)" not in capped:
                        p = learnflow_point(build, problem, out, rtol, threads, args.repeats,
                                            stepper=stepper, norm=norm)
                        p["error"] = max_error(learnflow_final(p["file"]), ref_state)
                        Path(p.pop("file")).unlink()
                        keep(p)
                if "cvode" in solvers:
                    for method in ("adams", "bdf"):
                        if f"CVODE {method}" in capped:
                            continue
                        p = cvode_point(build, problem, out, method, rtol, threads, args.repeats, shapes)
                        p["error"] = max_error(p.pop("final"), ref_state)
                        keep(p)
                print(f"   {threads} thread(s) rtol {rtol:.0e}: " + ", ".join(
                    f"{p['solver']} {p['seconds']:.3g} s err {p['error']:.1e}"
                    for p in points if p["rtol"] == rtol), flush=True)
            if "scipy" in solvers:
                sp = scipy_points(ref["file"], out, rtols, ["RK45", "DOP853"], threads, args.repeats,
                                  args.cap)
                entry.setdefault("scipy", {k: sp[k] for k in ("numpy", "scipy", "blas")})
                for p in sp["runs"]:
                    p["error"] = max_error(npz_final(p.pop("state")), ref_state)
                    points.append(p)
                    print(f"   {threads} thread(s) rtol {p['rtol']:.0e}: {p['solver']} "
                          f"{p['seconds']:.3g} s err {p['error']:.1e}", flush=True)
            entry["threads"][str(threads)] = points
        Path(ref["file"]).unlink()
        results["problems"][name] = entry
    meta["load_after"] = os.getloadavg()[0]
    meta["seconds"] = time.time() - started
    report(results, out)


TARGETS = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]


def report(results, out):
    meta = results["meta"]
    print(f"\nwork-precision, {meta['date']}, {meta['cpu']} ({meta['cores']} cores), kernel "
          f"{meta['kernel']}, load {meta['load_before']:.2f} -> {meta['load_after']:.2f}, "
          f"medians of {meta['repeats']}")
    for name, entry in results["problems"].items():
        if "scipy" in entry:
            blas = re.sub(r", \d+ threads\)", ")", entry["scipy"]["blas"])
            print(f"{name}: SciPy {entry['scipy']['scipy']}, NumPy {entry['scipy']['numpy']}, "
                  f"BLAS {blas} (held to each run's thread count)")
        # Errors within 10x of the reference's own error (its distance from CVODE at 1e-12)
        # are not compared.
        floor = 10 * entry["reference"].get("error_vs_cvode_1e-12", 0.0)
        targets = [e for e in TARGETS if e >= floor]
        entry["ratios"] = {}
        for threads, points in entry["threads"].items():
            ours = [p for p in points if p["solver"] == "learnflow dopri5 (max norm)"]
            peers = sorted({p["solver"] for p in points} - {"learnflow dopri5 (max norm)"})
            print(f"  {name}, {threads} thread(s): peer time / learnflow dopri5 time at equal error:"
                  f"\n    {'error':<28} " + " ".join(f"{e:>7.0e}" for e in targets))
            entry["ratios"][threads] = {}
            for peer in peers:
                r = ratios([p for p in points if p["solver"] == peer], ours, targets)
                entry["ratios"][threads][peer] = r
                print(f"    {peer:<28} " + " ".join(
                    f"{v:6.2f}x" if v is not None else "      -" for v in r.values()))
            # The fastest peer against the fastest learnflow stepper, at each error.
            best = {}
            for e in targets:
                def fastest(group):
                    times = [time_at(curve([p for p in points if p["solver"] == s]), math.log10(e))
                             for s in group]
                    times = [t for t in times if t is not None]
                    return min(times) if times else None
                lf = fastest([s for s in peers + ["learnflow dopri5 (max norm)"]
                              if s.startswith("learnflow")])
                other = fastest([s for s in peers if not s.startswith("learnflow")])
                best[f"{e:.0e}"] = None if lf is None or other is None else 10 ** (other - lf)
            entry["ratios"][threads]["best peer / best learnflow"] = best
            print(f"    {'best peer / best learnflow':<28} " + " ".join(
                f"{v:6.2f}x" if v is not None else "      -" for v in best.values()))
    (out / "wp.json").write_text(json.dumps(results, indent=1))
    plot(results, out)


def plot(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results["problems"])
    threads = sorted({t for e in results["problems"].values() for t in e["threads"]})
    fig, axes = plt.subplots(len(threads), len(names), figsize=(4 * len(names), 3.6 * len(threads)),
                             squeeze=False)
    for j, name in enumerate(names):
        for i, t in enumerate(threads):
            ax = axes[i][j]
            points = results["problems"][name]["threads"].get(t, [])
            for solver in sorted({p["solver"] for p in points}):
                pts = sorted((p["error"], p["seconds"]) for p in points if p["solver"] == solver)
                ax.loglog([e for e, _ in pts], [s for _, s in pts], "o-", ms=3, label=solver)
            ax.set_title(f"{name}, {t} thread(s)", fontsize=9)
            ax.set_xlabel("max error over the state")
            ax.set_ylabel("wall seconds")
            ax.grid(True, which="both", alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    meta = results["meta"]
    fig.suptitle(f"work-precision: {meta['cpu']}, kernel {meta['kernel']}, {meta['date']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "wp.png", dpi=90)
    print(f"wrote {out / 'wp.json'} and {out / 'wp.png'}")


if __name__ == "__main__":
    main()
