#!/usr/bin/env python3
"""The cost model of docs/scaling.md: predicted data-parallel efficiency of
each bundled workload on N nodes, from its parameter count (nnrun validate),
its global batch (bench/bench.py) and one node's measured samples/s.

  bench/scaling_model.py --bin target/release/nnrun --sps mlp=52000 --sps cnn=5600 ...
                         [--alpha-us 10] [--check scaling.jsonl]

Per step, with B the global batch, S one node's samples/s, P the parameter
bytes (float32) and N nodes, one process per node:
  compute  = ceil(B / N) / S           (the step waits for the largest part)
  traffic  = 2 (N-1)/N * P bytes per node (ring allreduce: reduce-scatter + allgather)
  comm     = traffic / link bandwidth + 2 (N-1) * alpha (one latency per ring step)
  efficiency = compute(1) / (N * (compute + comm))    (= speedup / N)
nnrun's allreduce follows the backward pass (no overlap), so the two add.
"weak" keeps B rows per process (global batch N * B): compute = B / S.

--check reads bench/scaling.py's JSON lines and compares, per workload, the
measured 2-process samples/s with what the model predicts from the
1-process samples/s and the measured time per allreduce.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

ROOT = os.path.dirname(HERE)


def params(binary, spec):
    out = subprocess.run([binary, "validate", spec, "--format", "json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    d = d[0] if isinstance(d, list) else d
    return d["total_params"]


def step(b, s, p_bytes, n, gbit, alpha, weak=False):
    compute = (b if weak else math.ceil(b / n)) / s
    comm = 0.0 if n == 1 else 2 * (n - 1) / n * p_bytes / (gbit * 1e9 / 8) + 2 * (n - 1) * alpha
    return compute, comm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/nnrun")
    ap.add_argument("--sps", action="append", default=[], metavar="WORKLOAD=SAMPLES_PER_S", help="one node's measured samples/s")
    ap.add_argument("--alpha-us", type=float, default=10.0, help="latency of one ring step, microseconds")
    ap.add_argument("--check", help="bench/scaling.py's JSON lines")
    a = ap.parse_args()
    sps = dict((k, float(v)) for k, v in (s.split("=") for s in a.sps))
    alpha = a.alpha_us * 1e-6
    print("| workload | parameters | bytes per step per node (N large) | global batch | node samples/s | compute per step | "
          + " | ".join(f"{n} nodes, {g} Gbit/s" for n in (8, 64, 512) for g in (25, 100)) + " |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * 6)
    rows_weak = []
    for wl, w in bench.WORKLOADS.items():
        if wl not in sps:
            continue
        p = params(os.path.abspath(a.bin), w["spec"])
        pb, b, s = 4 * p, w["batch"], sps[wl]
        c1, _ = step(b, s, pb, 1, 25, alpha)
        cells, weak = [], []
        for n in (8, 64, 512):
            for g in (25, 100):
                c, m = step(b, s, pb, n, g, alpha)
                cells.append(f"{c1 / (n * (c + m)):.0%}")
                c, m = step(b, s, pb, n, g, alpha, weak=True)
                weak.append(f"{c / (c + m):.0%}")
        print(f"| {wl} | {p:,} | {2 * pb / 1e3:,.1f} kB | {b} | {s:,.0f} | {c1 * 1e3:.2f} ms | " + " | ".join(cells) + " |")
        rows_weak.append(f"| {wl} | {b} per node | " + " | ".join(weak) + " |")
    print("\nweak scaling (each node keeps the spec's batch; global batch N x B):\n")
    print("| workload | batch | " + " | ".join(f"{n} nodes, {g} Gbit/s" for n in (8, 64, 512) for g in (25, 100)) + " |")
    print("|---|---|" + "---:|" * 6)
    print("\n".join(rows_weak))
    if a.check:
        recs = [json.loads(l) for l in open(a.check) if l.strip()]
        print("\ncheck on this machine (2 processes x 1 thread against 1 x 2, nnrun, medians):\n")
        print("| workload | 1 x 2 samples/s | ms per allreduce | predicted 2 x 1 | measured 2 x 1 | measured / predicted |")
        print("|---|---:|---:|---:|---:|---:|")
        for wl in dict.fromkeys(r["workload"] for r in recs):
            rs = [r for r in recs if r["workload"] == wl and r["tool"] == "nnrun"]
            one = statistics.median(r["train_samples_per_s"] for r in rs if r["processes"] == 1)
            two = statistics.median(r["train_samples_per_s"] for r in rs if r["processes"] == 2)
            ms = statistics.median(r["allreduce_ms"] for r in rs if r["processes"] == 2)
            b = bench.WORKLOADS[wl]["batch"]
            # The same cores compute either way: ideal compute per step is B / (1 x 2 rate).
            t = b / one
            pred = b / (t + ms / 1e3)
            print(f"| {wl} | {one:,.0f} | {ms:.3f} | {pred:,.0f} | {two:,.0f} | {two / pred:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
