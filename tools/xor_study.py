#!/usr/bin/env python3
"""XOR study (issue item 5, after Gori's NeurIPS 2019 talk): the costate weight flow of learnflow
against discrete online backprop on the same 2-2-1 logistic network, from the same initial
weights and biases.

For each seed N = 1..--seeds:
  1. `learnflow run CONFIG --set network.seed=N -o OUT/seedN.h5 --quiet`;
  2. the learned time: the first sample time from which /metrics/accuracy (the settled network's
     answers to the four patterns at the current weights) is 1.0 at every later sample; none if
     the last sample is below 1.0;
  3. discrete online backprop in numpy from the initial weights and biases the run file holds
     under /parameters: one SGD step per pattern, patterns in the order of the sequence, squared
     loss ½(y − x)², and the same budget as the continuous run (below); the learned epoch: the
     first epoch end from which every later epoch end answers all four patterns right.

Budget equivalence (DESIGN §4, costate): within a window of length P = input.present, the weight
flow is γ Ẇ = λ σ'(a) xᵀ, which at the settled state is −∂V/∂W of the pattern shown. Over one
window the weights move by (P/γ)(−∂V/∂W) when they change little within it, so one window is one
SGD step with η₀ = P/γ, and the run's t_end − t0 is (t_end − t0)/(4P) epochs. A learned epoch k
corresponds to the time 4 P k. (The costates are low-pass filters of the error with unit DC gain,
so each pattern's error enters the flow with total weight P/γ; but part of it, about τ_λ/P at
the output and 2τ/P at the hidden layer, arrives during the next window, paired with the next
pattern's input: the lag that makes short windows learn worse than backprop.)

Usage (from the repository root):
    /usr/bin/python3 tools/xor_study.py [--bin build/learnflow] [--seeds 20]
        [--config examples/xor_costate.toml] [--out out/xor_study] [--quick] [--set KEY=VALUE]
Writes OUT/seedN.h5, OUT/xor_study.csv, OUT/xor_study.png and, for the first seed that learns,
OUT/seedN_metrics.png (the whole run) and OUT/seedN_window_{metrics,waves}.png (a short run
sampled finely: the forward and backward waves and the alignment within each window).
"""

import argparse
import csv
import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ETAS = (0.5, 1.0, 2.5, 5.0)  # extra learning rates of the discrete-backprop comparison
QUICK_SEEDS = 5


# ---------------------------------------------------------------------------------------------
# The run file

class XorRun:
    """What the study needs from one learnflow run file: the accuracy over time, the initial
    weights (/parameters) and the schedule (from the config stored in the file)."""

    def __init__(self, path):
        self.path = Path(path)
        with h5py.File(path, "r") as f:
            config = tomllib.loads(_text(f.attrs["config"]))
            self.seed = int(f.attrs["seed"])
            self.time = f["time"][:]
            self.accuracy = f["metrics/accuracy"][:len(self.time)]
            self.loss = f["metrics/loss"][:len(self.time)]
            into_hidden, into_output = _projections(config)
            hidden, output = into_hidden["to"], into_output["to"]
            self.W1 = f[f"parameters/W/{_name(into_hidden)}"][:]
            self.W2 = f[f"parameters/W/{_name(into_output)}"][:]
            self.b1 = f[f"parameters/b/{hidden}"][:]
            self.b2 = f[f"parameters/b/{output}"][:]
            # The weights at the last sample, where recorded (for the independent accuracy check).
            w1, w2 = f"state/W/{_name(into_hidden)}", f"state/W/{_name(into_output)}"
            self.final = None
            if all(k in f for k in (w1, w2, f"state/b/{hidden}", f"state/b/{output}")):
                self.final = (f[w1][-1], f[f"state/b/{hidden}"][-1], f[w2][-1], f[f"state/b/{output}"][-1])
                self.start = (f[w1][0], f[f"state/b/{hidden}"][0], f[w2][0], f[f"state/b/{output}"][0])
        model, schedule = config["model"], config["input"]
        integrator = config.get("integrator", {})
        self.present = float(schedule["present"])
        self.gamma = float(model.get("gamma", 1.0))
        self.t0 = float(integrator.get("t0", 0.0))
        self.t_end = float(integrator["t_end"])
        self.inputs = np.asarray(schedule["values"], dtype=float)
        self.targets = np.asarray(schedule["targets"], dtype=float)[:, 0]

    @property
    def initial(self):
        return self.W1, self.b1, self.W2, self.b2

    @property
    def eta_equivalent(self):
        """η₀ = P/γ: the SGD step one window of the weight flow makes."""
        return self.present / self.gamma

    @property
    def epochs(self):
        """The run's budget in epochs (passes over the sequence): (t_end − t0)/(len · P)."""
        return int(round((self.t_end - self.t0) / (len(self.inputs) * self.present)))

    @property
    def epoch_time(self):
        return len(self.inputs) * self.present


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _name(projection):
    return projection.get("name", f"{projection['from']}_{projection['to']}")


def _projections(config):
    """The projections input → hidden and hidden → output of a 2-2-1 digraph config."""
    roles = {p["name"]: p.get("role", "hidden") for p in config["network"]["population"]}
    projections = config["network"]["projection"]
    into_hidden = [p for p in projections if roles[p["to"]] == "hidden" and roles[p["from"]] == "input"]
    into_output = [p for p in projections if roles[p["to"]] == "output" and roles[p["from"]] == "hidden"]
    if len(into_hidden) != 1 or len(into_output) != 1:
        raise SystemExit("xor_study: the config must be a layered input -> hidden -> output digraph")
    return into_hidden[0], into_output[0]


def learned_time(times, accuracy):
    """The first sample time from which accuracy is 1.0 at every later sample (None if it is not
    1.0 at the last sample)."""
    wrong = np.nonzero(~(accuracy >= 1.0))[0]  # NaN counts as wrong
    if len(wrong) == 0:
        return float(times[0])
    if wrong[-1] == len(accuracy) - 1:
        return None
    return float(times[wrong[-1] + 1])


# ---------------------------------------------------------------------------------------------
# Discrete online backprop, the reference

def logistic(a):
    return 1.0 / (1.0 + np.exp(-a))


def forward(params, u):
    W1, b1, W2, b2 = params
    h = logistic(W1 @ u + b1)
    return h, logistic(W2 @ h + b2)


def all_right(params, inputs, targets):
    """Whether every output is on the right side of 0.5 (the criterion of /metrics/accuracy)."""
    return all(abs(forward(params, u)[1][0] - y) < 0.5 for u, y in zip(inputs, targets))


def gradients(params, u, y):
    """∂V/∂(W1, b1, W2, b2) of V = ½(y − x_out)² for one pattern (backprop)."""
    W1, b1, W2, b2 = params
    h, x = forward(params, u)
    d2 = (x - y) * x * (1.0 - x)
    d1 = (W2.T @ d2) * h * (1.0 - h)
    return np.outer(d1, u), d1, np.outer(d2, h), d2


def discrete_backprop(initial, inputs, targets, eta, epochs):
    """Online SGD, one step of size eta per pattern in sequence order, for `epochs` passes.
    Returns the learned epoch (first epoch end from which all later ones answer all patterns
    right), or None, and the final parameters."""
    params = [p.astype(float).copy() for p in initial]
    learned = None
    for epoch in range(1, epochs + 1):
        for u, y in zip(inputs, targets):
            for p, g in zip(params, gradients(params, u, y)):
                p -= eta * g
        if all_right(params, inputs, targets):
            learned = learned or epoch
        else:
            learned = None
    return learned, params


# ---------------------------------------------------------------------------------------------
# The study

def run_learnflow(binary, config, seed, out, sets=()):
    command = [str(binary), "run", str(config), "--set", f"network.seed={seed}", "-o", str(out),
               "--quiet", "--threads", "1"]
    for assignment in sets:
        command += ["--set", assignment]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}:\n{result.stderr}")
    return out


def study_seed(binary, config, seed, out_dir, sets=(), etas=()):
    run = XorRun(run_learnflow(binary, config, seed, Path(out_dir) / f"seed{seed}.h5", sets))
    row = {"seed": seed, "costate_time": learned_time(run.time, run.accuracy),
           "final_accuracy": float(run.accuracy[-1]), "eta0": run.eta_equivalent,
           "epochs": run.epochs, "epoch_time": run.epoch_time, "run": run}
    row["backprop_epoch"], _ = discrete_backprop(run.initial, run.inputs, run.targets,
                                                 run.eta_equivalent, run.epochs)
    for eta in etas:
        row[f"backprop_eta{eta:g}"], _ = discrete_backprop(run.initial, run.inputs, run.targets,
                                                           eta, run.epochs)
    return row


def study(binary, config, seeds, out_dir, sets=(), etas=(), jobs=2):
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda s: study_seed(binary, config, s, out_dir, sets, etas), seeds))


def _fmt(value, unit=""):
    return "-" if value is None else f"{value:g}{unit}"


def report(rows, etas):
    run = rows[0]["run"]
    n = len(rows)
    print(f"XOR, 2-2-1 logistic; costate diffusion: present P = {run.present:g}, gamma = "
          f"{run.gamma:g}, t_end = {run.t_end:g} ({run.epochs} epochs of {run.epoch_time:g})")
    print(f"discrete online backprop from the same initial weights: eta0 = P/gamma = "
          f"{run.eta_equivalent:g}, {run.epochs} epochs; an epoch k is time {run.epoch_time:g} k")
    print()
    print(f"{'seed':>4}  {'costate learned (t)':>19}  {'backprop learned (epoch)':>24}  "
          f"{'(as time)':>9}")
    for r in rows:
        epoch = r["backprop_epoch"]
        print(f"{r['seed']:>4}  {_fmt(r['costate_time']):>19}  {_fmt(epoch):>24}  "
              f"{_fmt(None if epoch is None else epoch * r['epoch_time']):>9}")
    costate = sum(r["costate_time"] is not None for r in rows)
    backprop = sum(r["backprop_epoch"] is not None for r in rows)
    both = sum(r["costate_time"] is not None and r["backprop_epoch"] is not None for r in rows)
    print()
    print(f"costate flow learns      {costate:>2}/{n}")
    print(f"discrete backprop learns {backprop:>2}/{n}  (eta = {run.eta_equivalent:g}); "
          f"both learn {both}/{n}")
    for eta in etas:
        k = sum(r[f"backprop_eta{eta:g}"] is not None for r in rows)
        print(f"discrete backprop learns {k:>2}/{n}  (eta = {eta:g}, {run.epochs} epochs)")
    return costate, backprop


def write_csv(rows, etas, path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "costate_learned_time", "costate_final_accuracy",
                         "backprop_learned_epoch", "eta0"] + [f"backprop_eta{e:g}" for e in etas])
        for r in rows:
            writer.writerow([r["seed"], _fmt(r["costate_time"]), r["final_accuracy"],
                             _fmt(r["backprop_epoch"]), r["eta0"]] +
                            [_fmt(r[f"backprop_eta{e:g}"]) for e in etas])


def study_figure(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    run = rows[0]["run"]
    seeds = [r["seed"] for r in rows]
    figure = Figure(figsize=(10, 6.5), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1)
    t_max = run.t_end
    for offset, label, color, times in (
            (-0.18, "costate flow", "C0", [r["costate_time"] for r in rows]),
            (0.18, f"discrete backprop, η = P/γ = {run.eta_equivalent:g}", "C1",
             [None if r["backprop_epoch"] is None else r["backprop_epoch"] * r["epoch_time"]
              for r in rows])):
        learned = [(s, t) for s, t in zip(seeds, times) if t is not None]
        failed = [s for s, t in zip(seeds, times) if t is None]
        top.bar([s + offset for s, _ in learned], [t for _, t in learned], width=0.36, color=color,
                label=f"{label}: {len(learned)}/{len(rows)} learn")
        top.scatter([s + offset for s in failed], [t_max] * len(failed), marker="x", color=color)
        bottom.hist([t for _, t in learned], bins=np.linspace(0, t_max, 21), histtype="step",
                    linewidth=1.5, color=color, label=label)
    top.axhline(t_max, color="0.3", linestyle="--", linewidth=0.8)
    top.set_xticks(seeds)
    top.set_xlabel("seed (× at t_end: not learned by t_end)")
    top.set_ylabel("time learned")
    top.set_title("XOR 2-2-1 from identical initial weights: time from which all 4 answers stay "
                  "right", fontsize="medium")
    top.legend(loc="upper left", fontsize="small")
    bottom.set_xlabel(f"time (an epoch = 4 × present = {run.epoch_time:g})")
    bottom.set_ylabel("seeds")
    bottom.set_title("when the seeds that learn have learned", fontsize="medium")
    bottom.legend(fontsize="small")
    figure.savefig(path)


def run_figures(binary, config, seed, out_dir, sets=()):
    """The metrics of one whole run, and a short finely sampled run of the same seed that shows
    the waves and the alignment within windows (a few epochs at the start)."""
    plot = [sys.executable, str(ROOT / "tools" / "plot")]
    out_dir = Path(out_dir)
    subprocess.run(plot + ["metrics", str(out_dir / f"seed{seed}.h5"),
                           "-o", str(out_dir / f"seed{seed}_metrics.png")], check=True)
    run = XorRun(out_dir / f"seed{seed}.h5")
    short = out_dir / f"seed{seed}_window.h5"
    run_learnflow(binary, config, seed, short, list(sets) + [
        f"integrator.t_end={run.t0 + 2 * run.epoch_time:g}",
        f"output.sample_dt={run.present / 100:g}"])
    for kind in ("metrics", "waves"):
        subprocess.run(plot + [kind, str(short), "-o", str(out_dir / f"seed{seed}_window_{kind}.png")],
                       check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="build/learnflow", help="the learnflow executable")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"seeds 1..N (default 20; {QUICK_SEEDS} with --quick)")
    parser.add_argument("--config", default=str(ROOT / "examples" / "xor_costate.toml"))
    parser.add_argument("--out", default="out/xor_study", help="folder for run files and figures")
    parser.add_argument("--quick", action="store_true",
                        help=f"seeds 1..{QUICK_SEEDS}, no extra learning rates, no figures")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to learnflow (repeatable)")
    parser.add_argument("--etas", default=",".join(f"{e:g}" for e in DEFAULT_ETAS),
                        help="extra discrete-backprop learning rates, comma-separated")
    parser.add_argument("--jobs", type=int, default=2, help="learnflow runs at once")
    args = parser.parse_args(argv)

    n = args.seeds if args.seeds is not None else (QUICK_SEEDS if args.quick else 20)
    etas = () if args.quick else tuple(float(e) for e in args.etas.split(",") if e)
    rows = study(args.bin, args.config, range(1, n + 1), args.out, args.set, etas, args.jobs)
    report(rows, etas)
    write_csv(rows, etas, Path(args.out) / "xor_study.csv")
    if not args.quick:
        study_figure(rows, Path(args.out) / "xor_study.png")
        learned = [r["seed"] for r in rows if r["costate_time"] is not None]
        if learned:
            run_figures(args.bin, args.config, learned[0], args.out, args.set)
        print(f"\nfigures: {args.out}/xor_study.png" +
              (f", {args.out}/seed{learned[0]}_metrics.png, "
               f"{args.out}/seed{learned[0]}_window_{{metrics,waves}}.png" if learned else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
