#!/usr/bin/python3
"""The exact adjoint's backward sweep against its forward sweep (issue 11 item 5).

    /usr/bin/python3 bench/adjoint_bench.py --build build [--repeats 3] [--threads 1] [--layers 5]

A costate network of `layers` tanh layers of 512 (the first the input), W ~ N(0, 1.2²/512),
a sequence of 4 inputs and targets drawn with a fixed seed (splitmix64: the same on every
machine), each presented for 2.5, cycling over t in [0, 50] (20 segments), mode = "adjoint",
dopri5 at rtol = atol = 1e-6, only norms recorded. Each repeat is
a fresh `learnflow run`; the forward sweep's time is /solver's wall_seconds, the backward
sweep's /adjoint's. Prints the medians, their ratio and the accuracy of the gradient (against a
run at rtol 1e-10), and the memory the backward sweep's stepper carries.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np


def splitmix64(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        yield (z ^ (z >> 31)) / 2.0**64


def config(layers, width):
    draw = splitmix64(21)
    values = [[round(2 * next(draw) - 1, 6) for _ in range(width)] for _ in range(4)]
    targets = [[round(next(draw) - 0.5, 6) for _ in range(width)] for _ in range(4)]
    return f"""[network]
layers = {[width] * layers}
activation = "tanh"
seed = 7
init = {{ weights = "normal", scale = 1.2 }}
[model]
type = "costate"
mode = "adjoint"
[input]
kind = "sequence"
present = 2.5
values = {values}
targets = {targets}
[integrator]
rtol = 1e-6
atol = 1e-6
t_end = 50.0
[output]
sample_dt = 1.0
record = {{ x = "norm" }}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--width", type=int, default=512)
    args = ap.parse_args()
    binary = Path(args.build).resolve() / "learnflow"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adjoint.toml"
        path.write_text(config(args.layers, args.width))

        def run(name, *sets):
            out = Path(tmp) / f"{name}.h5"
            cmd = [str(binary), "run", str(path), "-o", str(out), "--quiet", "--force",
                   "--threads", str(args.threads)]
            for s in sets:
                cmd += ["--set", s]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"adjoint_bench: {' '.join(cmd)} failed:\n{result.stderr}")
            return out

        forward, backward = [], []
        for r in range(args.repeats):
            print(f"run {r + 1}/{args.repeats}", file=sys.stderr)
            with h5py.File(run("run"), "r") as f:
                forward.append(float(f["solver"].attrs["wall_seconds"]))
                backward.append(float(f["adjoint"].attrs["wall_seconds"]))
                stats = {k: f["adjoint"].attrs[k] for k in ("steps", "rhs_evals", "forward_bytes")}
                solver = {k: f["solver"].attrs[k] for k in ("steps", "rhs_evals")}
                kernels = f.attrs.get("kernels", "?")
                grads = {n: f["adjoint/grad/W"][n][()] for n in f["adjoint/grad/W"]}
        with h5py.File(run("fine", "integrator.rtol=1e-10", "integrator.atol=1e-10"), "r") as f:
            error = max(float(np.abs(grads[n] - f["adjoint/grad/W"][n][()]).max()
                              / np.abs(f["adjoint/grad/W"][n][()]).max()) for n in grads)
    f_med, b_med = statistics.median(forward), statistics.median(backward)
    lam = args.width * (args.layers - 1)
    print(f"costate adjoint, layers [{args.width}]*{args.layers}, t in [0, 50], 20 segments, dopri5 rtol 1e-6, "
          f"{args.threads} thread(s), {os.cpu_count()} CPUs (batched kernels {kernels}; B = 1 runs the baseline)")
    print(f"  forward sweep:  median {f_med:.4g} s ({', '.join(f'{t:.3g}' for t in forward)}); "
          f"{solver['steps']} steps, {solver['rhs_evals']} RHS")
    print(f"  backward sweep: median {b_med:.4g} s ({', '.join(f'{t:.3g}' for t in backward)}); "
          f"{stats['steps']} steps, {stats['rhs_evals']} RHS")
    print(f"  backward / forward = {b_med / f_med:.2f}")
    print(f"  gradient error against rtol 1e-10: {error:.2e} (max over projections, relative to "
          f"the largest entry)")
    print(f"  the backward stepper carries {lam} costates; the forward trajectory "
          f"{stats['forward_bytes'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
