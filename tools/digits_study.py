#!/usr/bin/python3
"""The digits study of README.md ("Learning from data sets"): every model's example on
scikit-learn's digits (the same split, split_seed = 1) for several seeds, beside minibatch SGD
with backprop (model "backprop") on the same network, initial weights, data order and loss;
test accuracy after the last epoch as mean ± sd over the seeds, and the wall time per epoch.

    /usr/bin/python3 tools/digits_study.py --bin build/learnflow --out out/digits_study
    /usr/bin/python3 tools/digits_study.py --seeds 1 2 --epochs 5 --jobs 2   # a quick look

Each run is a `learnflow run` of an example with --set overrides (the seed, and for the backprop
baselines the network of the model they are compared with), one OpenMP thread, `--jobs` runs at
a time. Writes OUT/results.json (every run's learning curve and timings) and prints the table.
"""

import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]

# (label, example, overrides of the baseline run, the model's network in words). Each model's
# baseline is examples/digits_backprop.toml moved onto the model's network (and loss).
STUDIES = (
    ("costate", "digits_costate.toml", [], "64-64-64-10 tanh, cross-entropy"),
    ("gaitprop", "digits_gaitprop.toml",
     ["network.layers=[64, 64, 64, 64]", 'network.activation="leaky_relu"',
      "network.leaky_slope=0.1", 'network.output_activation="leaky_relu"',
      'network.init={ weights = "orthogonal" }', "data.classes=10", 'model.loss="squared"',
      "model.eta=0.3"],
     "64-64-64-64 leaky_relu 0.1, 10 classes, squared"),
    # DTP's forward pass h_l = W_l σ(h_{l−1}) + b_l on 64-64-64-10 with a linear output is
    # costate's network (σ applied to the input aside): the same baseline.
    ("dtp", "digits_dtp.toml", [], "64-64-64-10 tanh, cross-entropy"),
    # EP's network is recurrent (Wᵀ feedback); its baseline is the feedforward pass of the same
    # layers, activation, initial weights, loss, minibatches (20) and rate.
    ("eqprop", "eqprop_digits.toml",
     ["network.layers=[64, 32, 10]", 'network.activation="hard_sigmoid"',
      'network.output_activation="hard_sigmoid"',
      'network.init={ weights = "normal", scale = 1.0, bias = "normal", bias_scale = 0.1 }',
      'model.loss="squared"', "model.eta=0.2", "train.batch=20", "train.epochs=20"],
     "64-32-10 hard_sigmoid, squared"),
)


def run(binary, config, overrides, out):
    # The study owns its output directory: a rerun replaces its earlier run files.
    args = [str(binary), "run", str(config), "-o", str(out), "--quiet", "--force", "--threads", "1"]
    for assignment in overrides:
        args += ["--set", assignment]
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        return {"error": result.stderr.strip(), "wall": wall}
    with h5py.File(out, "r") as f:
        curve = f["metrics/epoch"]
        epochs = len(curve["epoch"])
        return {
            "test_accuracy": curve["test_accuracy"][()].tolist(),
            "train_accuracy": curve["train_accuracy"][()].tolist(),
            "test_loss": curve["test_loss"][()].tolist(),
            "integration_seconds": float(f["solver"].attrs["wall_seconds"]),
            "seconds_per_epoch": float(f["solver"].attrs["wall_seconds"]) / epochs,
            "wall": wall,
        }


def mean_sd(values):
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "build" / "learnflow"))
    ap.add_argument("--out", default=str(ROOT / "out" / "digits_study"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--epochs", type=int, help="override train.epochs of the examples")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    ap.add_argument("--models", nargs="+", default=[s[0] for s in STUDIES])
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    jobs = []
    baselines = {}  # overrides of a baseline → the label whose run it shares
    for label, example, baseline, _ in STUDIES:
        if label not in args.models:
            continue
        shared = baselines.setdefault(tuple(baseline), label)
        for seed in args.seeds:
            common = [f"network.seed={seed}"]
            if args.epochs:
                common.append(f"train.epochs={args.epochs}")
            jobs.append((label, "model", seed, ROOT / "examples" / example, common))
            if shared == label:
                jobs.append((label, "backprop", seed, ROOT / "examples" / "digits_backprop.toml",
                             common + baseline))
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run, args.bin, config, overrides,
                               out / f"{label}_{kind}_seed{seed}.h5"): (label, kind, seed)
                   for label, kind, seed, config, overrides in jobs}
        for future in concurrent.futures.as_completed(futures):
            label, kind, seed = futures[future]
            result = future.result()
            results.setdefault(label, {}).setdefault(kind, {})[seed] = result
            done = result.get("test_accuracy", [float("nan")])[-1]
            print(f"  {label:<9} {kind:<9} seed {seed}: test accuracy {done:.4f}  "
                  f"({result['wall']:.1f} s)", file=sys.stderr, flush=True)
    for label, _, baseline, _ in STUDIES:
        shared = baselines.get(tuple(baseline))
        if label in results and shared != label and shared in results:
            results[label]["backprop"] = results[shared]["backprop"]
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))

    print("| model | network | test accuracy (%) | backprop, same network (%) | s / epoch (model, backprop) |")
    print("|---|---|---|---|---|")
    for label, _, _, network in STUDIES:
        if label not in results:
            continue
        cells = []
        for kind in ("model", "backprop"):
            runs = results[label].get(kind, {})
            finals = [r["test_accuracy"][-1] for r in runs.values() if "test_accuracy" in r]
            errors = [r["error"] for r in runs.values() if "error" in r]
            cells.append(mean_sd(finals) + (f" ({len(errors)} failed)" if errors else ""))
        speeds = []
        for kind in ("model", "backprop"):
            runs = results[label].get(kind, {})
            per_epoch = [r["seconds_per_epoch"] for r in runs.values() if "seconds_per_epoch" in r]
            speeds.append(f"{statistics.median(per_epoch):.3f}" if per_epoch else "-")
        print(f"| {label} | {network} | {cells[0]} | {cells[1]} | {speeds[0]}, {speeds[1]} |")


if __name__ == "__main__":
    main()
