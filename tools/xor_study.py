#!/usr/bin/env python3
"""XOR study (issue item 5, after Gori's NeurIPS 2019 talk): the costate weight flow of learnflow
against discrete online backprop on the same 2-2-1 logistic network, from the same initial
weights and biases.

For each seed N = 1..--seeds (or --first-seed onwards):
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
so each pattern's error enters the flow with total weight P/γ; but a part of it of order τ/P
arrives during the next window, paired with the next pattern's input, more at the hidden layer,
two relaxations from the output: the lag that makes short windows (P ≲ 10τ) fail. With the
weights nearly frozen, the epoch's weight change differs from η₀ Σ(−∂V/∂θ) by a relative error
∝ τ/P; tests/python/test_xor.py checks that order.)

Usage (from the repository root):
    /usr/bin/python3 tools/xor_study.py [--bin build/learnflow] [--seeds 20]
        [--config examples/xor_costate.toml] [--out out/xor_study] [--quick] [--set KEY=VALUE]
Writes OUT/seedN.h5, OUT/xor_study.csv, OUT/xor_study.png and, for the first seed that learns,
OUT/seedN_metrics.png (the whole run) and OUT/seedN_window_{metrics,waves}.png (a short run
sampled finely: the forward and backward waves and the alignment within each window).
"""

import argparse
import csv
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
LONG_EPOCHS = 5000  # the long budget of the other learning rates
SUBSTEPS = 20  # sub-steps per pattern of the per-pattern gradient flow comparison


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
            into_hidden, into_output = _projections(config)
            hidden, output = into_hidden["to"], into_output["to"]
            self.W1 = f[f"parameters/W/{_name(into_hidden)}"][:]
            self.W2 = f[f"parameters/W/{_name(into_output)}"][:]
            self.b1 = f[f"parameters/b/{hidden}"][:]
            self.b2 = f[f"parameters/b/{output}"][:]
            # The weights at the first sample, where recorded (they must equal /parameters).
            state = [f"state/W/{_name(into_hidden)}", f"state/b/{hidden}",
                     f"state/W/{_name(into_output)}", f"state/b/{output}"]
            self.start = tuple(f[k][0] for k in state) if all(k in f for k in state) else None
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
    def between(source, target):
        return [p for p in projections if (roles[p["from"]], roles[p["to"]]) == (source, target)]
    into_hidden, into_output = between("input", "hidden"), between("hidden", "output")
    if len(into_hidden) != 1 or len(into_output) != 1:
        raise SystemExit("xor_study: the config must be an input -> hidden -> output digraph")
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
# Discrete online backprop, the reference. Every function takes parameters with a leading batch
# axis (one entry per seed: W1 [S, 2, 2], b1 [S, 2], W2 [S, 1, 2], b2 [S, 1]), so that all seeds
# learn at once.

def logistic(a):
    return 1.0 / (1.0 + np.exp(-a))


def forward(params, u):
    """Hidden and output activities [S, 2], [S, 1] of the settled network for input u [2]."""
    W1, b1, W2, b2 = params
    h = logistic(np.einsum("sij,j->si", W1, u) + b1)
    return h, logistic(np.einsum("sij,sj->si", W2, h) + b2)


def all_right(params, inputs, targets):
    """[S] bool: every output on the right side of 0.5 (the criterion of /metrics/accuracy)."""
    right = [np.abs(forward(params, u)[1][:, 0] - y) < 0.5 for u, y in zip(inputs, targets)]
    return np.logical_and.reduce(right)


def loss(params, u, y):
    """[S]: V = ½(y − x_out)² for one pattern."""
    return 0.5 * (y - forward(params, u)[1][:, 0]) ** 2


def gradients(params, u, y):
    """∂V/∂(W1, b1, W2, b2) of V = ½(y − x_out)² for one pattern, by backprop."""
    W1, b1, W2, b2 = params
    h, x = forward(params, u)
    d2 = (x - y) * x * (1.0 - x)                                  # ∂V/∂a_out   [S, 1]
    d1 = np.einsum("sij,si->sj", W2, d2) * h * (1.0 - h)         # ∂V/∂a_hidden [S, 2]
    return d1[:, :, None] * u[None, None, :], d1, d2[:, :, None] * h[:, None, :], d2


def discrete_backprop(initial, inputs, targets, eta, epochs, substeps=1):
    """Online SGD from `initial` (batched): one step of size eta per pattern, in sequence order,
    for `epochs` passes. Returns the learned epoch of each seed (the first epoch end from which
    every later one answers all patterns right; None if the last does not) and the final
    parameters. With substeps = m > 1, each pattern's step is m steps of eta/m, which tends to
    the per-pattern gradient flow for time eta: what the weight flow does in a window ≫ τ."""
    params = [np.array(p, dtype=float) for p in initial]
    learned = np.zeros(len(params[0]), dtype=int)  # 0: not (or no longer) learned
    for epoch in range(1, epochs + 1):
        for u, y in zip(inputs, targets):
            for _ in range(substeps):
                for p, g in zip(params, gradients(params, u, y)):
                    p -= (eta / substeps) * g
        right = all_right(params, inputs, targets)
        learned = np.where(right, np.where(learned == 0, epoch, learned), 0)
    return [int(k) if k else None for k in learned], params


# ---------------------------------------------------------------------------------------------
# The study

def run_learnflow(binary, config, seed, out, sets=()):
    command = [str(binary), "run", str(config), "--set", f"network.seed={seed}", "-o", str(out),
               "--quiet", "--force", "--threads", "1"]  # a rerun replaces its own files
    for assignment in sets:
        command += ["--set", assignment]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}:\n{result.stderr}")
    return out


class Study:
    """The outcome of the study: one costate run per seed and discrete backprop from each run's
    initial weights, at η₀ = P/γ with the run's budget and, for comparison, at other learning
    rates, with the same budget and with a long one."""

    def __init__(self, runs, etas=(), long_epochs=0, substeps=0):
        self.runs = runs
        run = runs[0]
        for other in runs:
            schedule = (other.present, other.gamma, other.t_end, other.t0)
            if schedule != (run.present, run.gamma, run.t_end, run.t0):
                raise ValueError(f"{other.path}: another schedule than {run.path}")
        self.present, self.gamma, self.t_end = run.present, run.gamma, run.t_end
        self.eta0, self.epochs, self.epoch_time = run.eta_equivalent, run.epochs, run.epoch_time
        self.inputs, self.targets = run.inputs, run.targets
        self.seeds = [r.seed for r in runs]
        self.costate = [learned_time(r.time, r.accuracy) for r in runs]
        self.initial = [np.stack(p) for p in zip(*(r.initial for r in runs))]
        self.backprop = self.backprop_learned(self.eta0, self.epochs)
        self.etas = tuple(etas)
        self.long_epochs = long_epochs
        self.backprop_at = {(eta, n): self.backprop_learned(eta, n)
                            for eta in self.etas for n in {self.epochs, long_epochs} if n > 0}
        # η₀ split into m sub-steps per pattern: the per-pattern gradient flow, which separates
        # the effect of one large Euler step from that of the costates' lag.
        self.substeps = substeps
        self.backprop_flow = (self.backprop_learned(self.eta0, self.epochs, substeps)
                              if substeps > 1 else None)

    def backprop_learned(self, eta, epochs, substeps=1):
        return discrete_backprop(self.initial, self.inputs, self.targets, eta, epochs, substeps)[0]

    def successes(self, learned):
        return sum(k is not None for k in learned)

    def backprop_time(self, epoch):
        return None if epoch is None else epoch * self.epoch_time


def run_seeds(binary, config, seeds, out_dir, sets=(), jobs=2):
    """learnflow runs of every seed (`jobs` at a time, one thread each), read back."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        paths = pool.map(
            lambda s: run_learnflow(binary, config, s, Path(out_dir) / f"seed{s}.h5", sets), seeds)
        return [XorRun(p) for p in paths]


def _fmt(value):
    return "-" if value is None else f"{value:g}"


def report(study, out=sys.stdout):
    n = len(study.seeds)

    def say(line=""):
        print(line, file=out)
    say(f"XOR, 2-2-1 logistic, costate diffusion: present P = {study.present:g}, gamma = "
        f"{study.gamma:g}, t_end = {study.t_end:g} ({study.epochs} epochs of 4P = "
        f"{study.epoch_time:g})")
    say(f"discrete online backprop from the same initial weights: eta0 = P/gamma = "
        f"{study.eta0:g}, {study.epochs} epochs (epoch k ~ time {study.epoch_time:g} k)")
    say()
    flow = study.backprop_flow
    say(f"{'seed':>4}  {'costate learned (t)':>19}  {'backprop learned (epoch)':>24}  "
        f"{'(as time)':>9}"
        + (f"  {f'backprop, {study.substeps} sub-steps (epoch)':>29}" if flow is not None else ""))
    for i, (seed, t, epoch) in enumerate(zip(study.seeds, study.costate, study.backprop)):
        say(f"{seed:>4}  {_fmt(t):>19}  {_fmt(epoch):>24}  {_fmt(study.backprop_time(epoch)):>9}"
            + (f"  {_fmt(flow[i]):>29}" if flow is not None else ""))
    both = sum(t is not None and k is not None for t, k in zip(study.costate, study.backprop))
    say()
    say(f"costate flow learns        {study.successes(study.costate):>2}/{n} by t = "
        f"{study.t_end:g}")
    say(f"discrete backprop learns   {study.successes(study.backprop):>2}/{n} in {study.epochs} "
        f"epochs (eta = {study.eta0:g}); both learn {both}/{n}")
    if study.backprop_flow is not None:
        say(f"  eta0 in {study.substeps} sub-steps per pattern (per-pattern gradient flow): "
            f"{study.successes(flow):>2}/{n} in {study.epochs} epochs")
    for eta in study.etas:
        counts = ", ".join(f"{study.successes(study.backprop_at[(eta, e)]):>2}/{n} in {e} epochs"
                           for e in sorted({study.epochs, study.long_epochs}) if e > 0)
        say(f"  discrete backprop, eta = {eta:<4g}: {counts}")


def write_csv(study, path):
    keys = sorted(study.backprop_at)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "costate_learned_time",
                         f"backprop_eta{study.eta0:g}_learned_epoch"] +
                        [f"backprop_eta{eta:g}_{e}epochs" for eta, e in keys] +
                        ([f"backprop_eta{study.eta0:g}_{study.substeps}substeps"]
                         if study.backprop_flow is not None else []))
        for i, seed in enumerate(study.seeds):
            writer.writerow([seed, _fmt(study.costate[i]), _fmt(study.backprop[i])] +
                            [_fmt(study.backprop_at[k][i]) for k in keys] +
                            ([_fmt(study.backprop_flow[i])]
                             if study.backprop_flow is not None else []))


def study_figure(study, path):
    """Per seed: the time from which all four answers stay right, costate flow vs discrete
    backprop (an epoch k drawn at time 4Pk); below, the histogram of those times."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 6.5), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1)
    n = len(study.seeds)
    series = [("costate flow", "C0", study.costate),
              (f"discrete backprop, η = P/γ = {study.eta0:g}", "C1",
               [study.backprop_time(k) for k in study.backprop])]
    if study.backprop_flow is not None:
        series.append((f"backprop, η in {study.substeps} sub-steps", "0.6",
                       [study.backprop_time(k) for k in study.backprop_flow]))
    width = 0.8 / len(series)
    for i, (label, color, times) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        learned = [(s, t) for s, t in zip(study.seeds, times) if t is not None]
        failed = [s for s, t in zip(study.seeds, times) if t is None]
        top.bar([s + offset for s, _ in learned], [t for _, t in learned], width=width,
                color=color, label=f"{label}: {len(learned)}/{n} learn")
        top.scatter([s + offset for s in failed], [study.t_end] * len(failed), marker="x",
                    color=color, zorder=3)
        bottom.hist([t for _, t in learned], bins=np.linspace(0, study.t_end, 25),
                    histtype="step", linewidth=1.5, color=color, label=label)
    top.axhline(study.t_end, color="0.3", linestyle="--", linewidth=0.8)
    top.set_ylim(0, 1.3 * study.t_end)
    top.set_xticks(study.seeds)
    top.set_xlabel("seed (× on the dashed line t_end: not learned by t_end)")
    top.set_ylabel("time learned")
    top.set_title("XOR 2-2-1 from identical initial weights: the time from which all 4 answers "
                  "stay right (backprop: epoch × 4P)", fontsize="medium")
    top.legend(loc="upper left", fontsize="small", ncols=len(series))
    bottom.set_xlim(0, study.t_end)
    bottom.yaxis.get_major_locator().set_params(integer=True)
    bottom.set_xlabel(f"time (an epoch = 4 × present = {study.epoch_time:g})")
    bottom.set_ylabel("seeds")
    bottom.set_title("when the seeds that learn have learned", fontsize="medium")
    bottom.legend(fontsize="small")
    figure.savefig(path)


def run_figures(binary, config, seed, out_dir, sets=()):
    """The metrics of one whole run, and of a short, finely sampled run of the same seed (its
    first two epochs): the forward and backward waves and the alignment within each window."""
    plot = [sys.executable, str(ROOT / "tools" / "plot")]
    out_dir = Path(out_dir)
    subprocess.run(plot + ["metrics", str(out_dir / f"seed{seed}.h5"), "-o",
                           str(out_dir / f"seed{seed}_metrics.png")],
                   check=True, stdout=subprocess.DEVNULL)
    run = XorRun(out_dir / f"seed{seed}.h5")
    short = out_dir / f"seed{seed}_window.h5"
    run_learnflow(binary, config, seed, short, list(sets) + [
        f"integrator.t_end={run.t0 + 2 * run.epoch_time:g}",
        f"output.sample_dt={run.present / 100:g}"])
    figures = [out_dir / f"seed{seed}_metrics.png"]
    for kind in ("metrics", "waves"):
        figures.append(out_dir / f"seed{seed}_window_{kind}.png")
        subprocess.run(plot + [kind, str(short), "-o", str(figures[-1])], check=True,
                       stdout=subprocess.DEVNULL)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="build/learnflow", help="the learnflow executable")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"number of seeds N (default 20; {QUICK_SEEDS} with --quick)")
    parser.add_argument("--first-seed", type=int, default=1,
                        help="seeds FIRST..FIRST+N-1 (default 1; e.g. 21 for seeds not used to "
                             "choose the parameters)")
    parser.add_argument("--config", default=str(ROOT / "examples" / "xor_costate.toml"))
    parser.add_argument("--out", default="out/xor_study", help="folder for run files and figures")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SEEDS} seeds, no extra learning rates, no figures")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to learnflow (repeatable)")
    parser.add_argument("--etas", default=",".join(f"{e:g}" for e in DEFAULT_ETAS),
                        help="other discrete-backprop learning rates, comma-separated "
                             "(default %(default)s)")
    parser.add_argument("--long-epochs", type=int, default=LONG_EPOCHS,
                        help="the long budget of those learning rates (default %(default)s)")
    parser.add_argument("--substeps", type=int, default=SUBSTEPS,
                        help="also run backprop at eta0 in this many sub-steps per pattern "
                             "(default %(default)s; 1: not)")
    parser.add_argument("--jobs", type=int, default=2, help="learnflow runs at once")
    args = parser.parse_args(argv)

    n = args.seeds if args.seeds is not None else (QUICK_SEEDS if args.quick else 20)
    etas = () if args.quick else tuple(float(e) for e in args.etas.split(",") if e)
    seeds = range(args.first_seed, args.first_seed + n)
    runs = run_seeds(args.bin, args.config, seeds, args.out, args.set, args.jobs)
    study = Study(runs, etas, 0 if args.quick else args.long_epochs,
                  1 if args.quick else args.substeps)
    report(study)
    write_csv(study, Path(args.out) / "xor_study.csv")
    if not args.quick:
        figures = [Path(args.out) / "xor_study.png"]
        study_figure(study, figures[0])
        learned = [s for s, t in zip(study.seeds, study.costate) if t is not None]
        if learned:
            figures += run_figures(args.bin, args.config, learned[0], args.out, args.set)
        print("\nfigures: " + ", ".join(str(f) for f in figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
