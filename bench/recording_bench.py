#!/usr/bin/python3
"""What recording every neuron costs, at 1 thread and at as many threads as cores (issue 11 item 4).

    /usr/bin/python3 bench/recording_bench.py --build build [--rounds 6] [--threads 1,2]

P1 (L = 8, n = 256; bench/problems) at sample_dt = 0.01 (1001 samples), record = { x = "all" }
against record = { x = "none" }, each run the first of a fresh driver process (as a user's run is),
the modes interleaved with their order rotating from round to round, medians of the rounds. At
each thread count three ways of recording are timed:
  all        learnflow's choice: a writer thread only when a core is left for it
             (threads < cores), else the HDF5 calls on the run's thread between steps;
  all-thread the writer thread forced (LEARNFLOW_WRITER_THREAD=1): what every run did before;
  all-sync   no writer thread (LEARNFLOW_WRITER_THREAD=0).
Prints the overhead of each against "none" and writes the numbers to OUT/recording.json.
"""
import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench  # noqa: E402  (the driver's runner, the problems, the CPU-share check)

MODES = {"none": ("none", None), "all": ("all", None), "all-thread": ("all", "1"),
         "all-sync": ("all", "0")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", help="folder for run files and results (default BUILD/bench-out)")
    ap.add_argument("--rounds", type=int, default=6, help="runs of each mode (default 6)")
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}",
                    help="thread counts, comma-separated (default: 1 and all cores)")
    args = ap.parse_args()
    run_bench.check_problems()
    build = Path(args.build).resolve()
    driver = build / "bench" / "learnflow_bench"
    if not driver.exists():
        sys.exit(f"recording_bench: {driver} not found: build learnflow first")
    out = Path(args.out) if args.out else build / "bench-out"
    out.mkdir(parents=True, exist_ok=True)
    name = run_bench.p1_name(8, 256)
    config = run_bench.PROBLEMS / f"{name}.toml"
    results = {"cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
               "load_before": run_bench.load_average(), "threads": {}}
    names = list(MODES)
    for threads in (int(t) for t in args.threads.split(",")):
        runs = {}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for mode in order:
                record, forced = MODES[mode]
                if forced is None:
                    os.environ.pop("LEARNFLOW_WRITER_THREAD", None)
                else:
                    os.environ["LEARNFLOW_WRITER_THREAD"] = forced
                print(f"threads {threads}, round {r + 1}/{args.rounds}: {mode}", file=sys.stderr)
                run = run_bench.run_learnflow(driver, config, out / f"{name}_rec_{mode}.h5",
                                              threads=threads, repeats=1, warmup=0,
                                              overrides=["output.sample_dt=0.01",
                                                         f'output.record={{ x = "{record}" }}'])
                runs[mode] = run_bench.pool_runs(runs[mode], run) if mode in runs else run
        os.environ.pop("LEARNFLOW_WRITER_THREAD", None)
        results["threads"][threads] = runs
        none = runs["none"]["median_seconds"]
        print(f"\nP1 L=8 n=256, sample_dt = 0.01, {threads} thread(s) on {os.cpu_count()} CPUs, "
              f"{args.rounds} runs of each (interleaved):")
        for mode in names:
            m = runs[mode]
            overhead = m["median_seconds"] / none - 1.0
            print(f"  {mode:<11} median {m['median_seconds']:.4g} s"
                  + ("" if mode == "none" else f", overhead {100 * overhead:+.1f}%")
                  + f", cpu {100 * run_bench.cpu_share(m, threads):.0f}%"
                  + run_bench.contention_note(m))
    results["load_after"] = run_bench.load_average()
    (out / "recording.json").write_text(json.dumps(results, indent=1))
    print(f"\nload average {results['load_before']:.2f} before, {results['load_after']:.2f} after; "
          f"results in {out / 'recording.json'}")


if __name__ == "__main__":
    main()
