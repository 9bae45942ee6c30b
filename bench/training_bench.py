#!/usr/bin/python3
"""Training speed (issue 14): what the batch axis buys, and what an epoch costs.

    make bench-training                      # = /usr/bin/python3 bench/training_bench.py --build build
    /usr/bin/python3 bench/training_bench.py --build build [--repeats N] [--quick]

1. Per-example throughput of costate training on 784-256-256-10 (Fashion-MNIST images from
   Debian's dataset-fashion-mnist), one thread, minibatches of B = 64 against B = 1: examples per
   second of the integration (SolverStats::wall_seconds of learnflow_bench, median of the
   repeats). Each run shows a fixed prefix of the training images (640 for B = 64, 64 for B = 1;
   the cost per example does not depend on how many), for `present` = 20 each, reset, rtol 1e-4,
   one sample at the start and one at the end (no per-minibatch metrics).
   B = 64 runs twice: with the widest batched-product kernels this CPU has (models/batch_kernels.hpp,
   what a run gets) and with LEARNFLOW_KERNELS=baseline; B = 1 takes the matrix-vector paths,
   which are the baseline build's on every CPU.
2. A digits epoch (1438 examples, 64-64-64-10, B = 30) with examples/digits_costate.toml as
   shipped, one thread, beside examples/digits_backprop.toml (the same network, data and order),
   costate also with the baseline kernels. Here the integration time includes the per-minibatch
   samples and metrics of the example.

Prints a table and the targets (≥ 10× throughput; a digits epoch ≤ 1 s), and writes every
repeat's figures to OUT/training_bench.json.
"""

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")

THROUGHPUT_CONFIG = """\
# bench/training_bench.py: costate training throughput on 784-256-256-10 (written by the script)
[network]
layers = [784, 256, 256, 10]
activation = "tanh"
output_activation = "linear"
plastic = true
seed = 1
[model]
type = "costate"
gamma = 100.0
loss = "cross_entropy"
[data]
train = "{data}"
test_fraction = 0.0
[train]
epochs = 1
batch = {batch}
present = 20.0
reset = true
shuffle = false
eval_train = false
[integrator]
rtol = 1e-4
atol = 1e-6
[output]
sample_dt = {t_end}
"""


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def fashion_prefix(out, count):
    """The first `count` Fashion-MNIST training images and labels as an HDF5 data file."""
    path = out / f"fashion_first{count}.h5"
    if not path.exists():
        x = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:count].reshape(count, -1)
        y = read_idx(FASHION / "train-labels-idx1-ubyte.gz")[:count]
        with h5py.File(path, "w") as f:
            f["x"] = x.astype(np.float64) / 255.0
            f["y"] = y.astype(np.int64)
    return path


def bench(driver, config, out, repeats, overrides=(), kernels=None):
    """learnflow_bench's figures, with the kernel set the run used (the file's `kernels`)."""
    args = [str(driver), str(config), "-o", str(out), "--repeats", str(repeats), "--warmup", "1",
            "--threads", "1", "--floor-batches", "0"]
    for assignment in overrides:
        args += ["--set", assignment]
    env = dict(os.environ)
    env.pop("LEARNFLOW_KERNELS", None)
    if kernels:
        env["LEARNFLOW_KERNELS"] = kernels
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"training_bench: {' '.join(args)}\n{result.stderr}")
    figures = json.loads(result.stdout)
    with h5py.File(out, "r") as f:
        figures["kernels"] = str(f.attrs["kernels"])
    return figures


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", help="folder for run files and results (default BUILD/bench-out)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 repeat, smaller prefixes")
    args = ap.parse_args()
    build = Path(args.build)
    driver = build / "bench" / "learnflow_bench"
    out = Path(args.out) if args.out else build / "bench-out"
    out.mkdir(parents=True, exist_ok=True)
    repeats = 1 if args.quick else args.repeats
    if not FASHION.exists():
        sys.exit("training_bench: Debian's dataset-fashion-mnist is not installed "
                 "(tools/install-deps.sh installs it)")

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; one OpenMP thread everywhere")
    results = {}
    counts = {64: 128 if args.quick else 640, 1: 16 if args.quick else 64}
    # B = 1 takes the matrix-vector paths, which are the baseline's on every CPU; B = 64 runs with
    # the widest kernel set this CPU has (what a user gets) and with the baseline's.
    cases = [(64, None), (64, "baseline"), (1, None)]
    rows = []
    for batch, kernels in cases:
        count = counts[batch]
        data = fashion_prefix(out, count)
        t_end = 20.0 * count / batch
        config = out / f"throughput_B{batch}.toml"
        config.write_text(THROUGHPUT_CONFIG.format(data=data.resolve(), batch=batch, t_end=t_end))
        r = bench(driver, config, out / f"throughput_B{batch}.h5", repeats, kernels=kernels)
        if kernels is None and batch == 64 and r["kernels"] == "baseline":
            continue  # this CPU has nothing wider: the next case is the same
        per_example = r["median_seconds"] / count
        results[f"throughput_B{batch}_{r['kernels'] if batch > 1 else 'matvec'}"] = {**r, "examples": count}
        label = r["kernels"] if batch > 1 else "mat-vec"  # B = 1: the baseline's GEMV paths
        rows.append((batch, label, count, r["steps"], r["rhs_evals"], r["median_seconds"],
                     per_example, r["median_seconds"] / r["rhs_evals"]))
    print("\n1. costate training, 784-256-256-10, Fashion-MNIST prefix, present 20, rtol 1e-4")
    print(f"  {'B':>3} {'kernels':>10} {'examples':>8} {'steps':>7} {'RHS':>7} {'median s':>9} "
          f"{'ms/example':>11} {'ms/RHS':>8} {'examples/s':>11}")
    for batch, kernels, count, steps, rhs, wall, per_example, per_rhs in rows:
        print(f"  {batch:>3} {kernels:>10} {count:>8} {steps:>7} {rhs:>7} {wall:>9.3f} "
              f"{1e3 * per_example:>11.2f} {1e3 * per_rhs:>8.3f} {1 / per_example:>11.1f}")
    single = rows[-1][6]
    speedups = {kernels: single / per_example for batch, kernels, _, _, _, _, per_example, _ in rows
                if batch == 64}
    for kernels, speedup in speedups.items():
        print(f"  per-example throughput, B = 64 ({kernels}) / B = 1: {speedup:.1f}×")

    print("\n2. a digits epoch (1438 examples, B = 30), examples as shipped")
    epoch = {}
    for name, kernels in (("costate", None), ("costate", "baseline"), ("backprop", None)):
        config = ROOT / "examples" / f"digits_{name}.toml"
        r = bench(driver, config, out / f"digits_{name}.h5", repeats, ["train.epochs=1"], kernels)
        if kernels == "baseline" and r["kernels"] == epoch.get("costate_kernels"):
            continue
        results[f"digits_epoch_{name}_{r['kernels']}"] = r
        epoch.setdefault(name, r["median_seconds"])
        epoch.setdefault(f"{name}_kernels", r["kernels"])
        print(f"  {name:<9} {r['kernels']:>10} {r['steps']:>6} steps {r['rhs_evals']:>7} RHS   "
              f"median {r['median_seconds']:.3f} s per epoch "
              f"(repeats: {', '.join(f'{w:.3f}' for w in r['wall_seconds'])})")
    print(f"  costate / backprop: {epoch['costate'] / epoch['backprop']:.0f}×")

    best = max(speedups.values())
    print("\ntargets:")
    print(f"  B = 64 ≥ 10× the per-example throughput of B = 1: {best:.1f}× "
          f"{'met' if best >= 10 else 'NOT MET'} ({epoch['costate_kernels']} kernels)")
    print(f"  a digits epoch with costate ≤ 1 s on one thread: {epoch['costate']:.3f} s "
          f"{'met' if epoch['costate'] <= 1.0 else 'NOT MET'} ({epoch['costate_kernels']} kernels)")
    (out / "training_bench.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
