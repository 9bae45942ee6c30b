#!/usr/bin/python3
"""learnflow gnn benchmark (issue 12 item 7): time per RHS evaluation of model gnn on a stochastic
block model with 10^5 nodes and 10^6 directed edges, s = 16, against a measured floor, at 1 and 2
threads (bench/gnn_bench.cpp says what the floor is).

    /usr/bin/python3 bench/gnn_bench.py --build build [--repeats N] [--threads 1,2] [--out FILE.json]

Prints a table and writes the driver's JSON (default BUILD/bench-out/gnn_bench.json). Speed is never
asserted: this is not a test.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from training_bench import cpu_name as cpu_model  # noqa: E402  (the CPU's name, /proc/cpuinfo)
PROBLEM = HERE / "problems" / "gnn_sbm_1e5.toml"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="build folder with bench/learnflow_gnn_bench")
    ap.add_argument("--repeats", type=int, default=11, help="timed RHS calls per measurement")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--config", default=str(PROBLEM), help="gnn experiment (default: the SBM problem)")
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--out", help="JSON output (default BUILD/bench-out/gnn_bench.json)")
    args = ap.parse_args()
    driver = Path(args.build) / "bench" / "learnflow_gnn_bench"
    if not driver.exists():
        sys.exit(f"gnn_bench: {driver} not found: build the target learnflow_gnn_bench")
    command = [str(driver), args.config, "--threads", args.threads, "--repeats", str(args.repeats)]
    for assignment in args.set:
        command += ["--set", assignment]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"gnn_bench: the driver failed ({result.returncode}): {result.stderr}")
    data = json.loads(result.stdout)
    data["cpu"] = cpu_model()
    data["cores"] = os.cpu_count()
    data["load_average"] = os.getloadavg()
    out = Path(args.out) if args.out else Path(args.build) / "bench-out" / "gnn_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"gnn RHS: N = {data['nodes']}, E = {data['edges']} directed, s = {data['state']}, "
          f"p = {data['features']}, k = {data['classes']}, learn = {data['learn']}, "
          f"contraction = {data['contraction']}; kernels {data['kernels']}; {data['cpu']} "
          f"({data['cores']} cores, load {data['load_average'][0]:.2f}); medians of {data['repeats']}")
    print(f"{'threads':>7} {'RHS ms':>9} {'floor sparse ms':>16} {'floor edges ms':>15} "
          f"{'RHS/sparse':>11} {'RHS/edges':>10}")
    for r in data["runs"]:
        print(f"{r['threads']:>7} {1e3 * r['rhs_median']:>9.1f} {1e3 * r['floor_sparse_median']:>16.1f} "
              f"{1e3 * r['floor_edges_median']:>15.1f} {r['ratio_sparse']:>11.2f} {r['ratio_edges']:>10.2f}")
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
