#!/usr/bin/env python3
"""Data-parallel scaling on this machine: one process x 2 threads against
2 processes x 1 thread, nnrun (mpirun) beside PyTorch (torchrun + DDP gloo),
on the peers' mlp and cnn workloads, interleaved, then the medians.

  bench/scaling.py --python PEERS_VENV_PYTHON [--bin target/release/nnrun]
                   [--rounds 3] [--out FILE.jsonl] [mlp] [cnn]

--bin must be built with `--features mpi`. Each round runs, per workload,
back to back: nnrun alone (--threads 2), nnrun under `mpirun -np 2`
(--threads 1), PyTorch alone (shared/peers/bench_torch.py, 2 threads) and
PyTorch DDP (bench/torch_ddp.py under `torchrun --nproc_per_node 2`, 1
thread each), same seed within the round (1233 + round), the peers'
hyper-parameters (bench/bench.py's overrides). samples/s are the peers'
definition: epochs x training rows / the training loop's seconds. The
allreduce time is each tool's own measure: nnrun's end-of-training line
(one fused allreduce per step), DDP's comm hook (one per gradient bucket).
One JSON line per run on stdout and in --out; the table on stderr.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import shutil

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

ROOT = os.path.dirname(HERE)
PEERS = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers"))
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]


def log(text):
    print(text, file=sys.stderr, flush=True)


def run(cmd, env=None):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1", **(env or {})})
    if p.returncode != 0:
        raise SystemExit(f"scaling: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def nnrun(binary, wl, rnd, processes):
    out_dir = tempfile.mkdtemp(prefix=f"nnrun-scaling-{wl}-")
    threads = 2 // processes
    cmd = bench.train_cmd(binary, wl, rnd, threads, False, out_dir)
    if processes > 1:
        cmd = MPIRUN + cmd
    stdout = run(cmd)
    shutil.rmtree(out_dir, ignore_errors=True)
    events = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
    epochs = [e for e in events if e.get("event") == "epoch"]
    test = next(e for e in events if e.get("event") == "test")
    secs = [e["seconds"] for e in epochs]
    n = epochs[0]["samples"]
    rec = {"tool": "nnrun", "workload": wl, "round": rnd, "processes": processes, "threads": threads,
           "train_samples_per_s": round(len(secs) * n / sum(secs), 1),
           "steady_samples_per_s": round((len(secs) - 1) * n / sum(secs[1:]), 1) if len(secs) > 1 else None,
           "test_accuracy": test.get("test_accuracy")}
    for e in events:
        m = re.search(r"(\d+) allreduces of ([\d.]+ \w+), ([\d.]+) ms each", e.get("text", ""))
        if m:
            rec.update(allreduces=int(m.group(1)), allreduce_bytes=m.group(2), allreduce_ms=float(m.group(3)))
    return rec


def torch(python, wl, rnd, processes):
    seed = str(bench.PEER_SEED0 + rnd)
    if processes == 1:
        cmd = [python, os.path.join(PEERS, "bench_torch.py"), wl, "--seed", seed]
    else:
        torchrun = os.path.join(os.path.dirname(python), "torchrun")
        cmd = [torchrun, "--nproc_per_node", str(processes), os.path.join(HERE, "torch_ddp.py"), wl, "--seed", seed, "--threads", "1"]
    line = next(l for l in reversed(run(cmd).splitlines()) if l.startswith("{"))
    d = json.loads(line)
    rec = {"tool": "torch", "workload": wl, "round": rnd, "processes": processes, "threads": 2 // processes,
           "train_samples_per_s": d["train_samples_per_s"], "steady_samples_per_s": d["steady_samples_per_s"],
           "test_accuracy": d["test_accuracy"]}
    if processes > 1:
        rec.update(allreduces=d["allreduces"], allreduce_ms=d["allreduce_ms"])
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="*", default=["mlp", "cnn"])
    ap.add_argument("--python", required=True, help="the peers' venv python (shared/peers/setup.sh)")
    ap.add_argument("--bin", default="target/release/nnrun")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if "MPI support: not compiled in" in run([binary, "--version"]):
        raise SystemExit(f"scaling: {a.bin} has no MPI support: cargo build --release --features mpi")
    out = open(a.out, "w") if a.out else None
    recs = []
    for rnd in range(1, a.rounds + 1):
        for wl in a.workloads:
            for tool, processes in (("nnrun", 1), ("nnrun", 2), ("torch", 1), ("torch", 2)):
                rec = nnrun(binary, wl, rnd, processes) if tool == "nnrun" else torch(a.python, wl, rnd, processes)
                recs.append(rec)
                line = json.dumps(rec)
                print(line, flush=True)
                if out:
                    out.write(line + "\n")
                    out.flush()
                log(f"[scaling] round {rnd} {wl} {tool} {processes}x{rec['threads']}: {rec['train_samples_per_s']} samples/s")
    med = lambda rs, k: statistics.median(r[k] for r in rs) if rs and all(r.get(k) is not None for r in rs) else None
    log(f"\nmedians of {a.rounds} interleaved rounds")
    log("| workload | tool | processes x threads | samples/s | after epoch 1 | 2x1 / 1x2 | allreduces | ms per allreduce | test accuracy |")
    log("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for wl in a.workloads:
        for tool in ("nnrun", "torch"):
            one = [r for r in recs if r["workload"] == wl and r["tool"] == tool and r["processes"] == 1]
            for p in (1, 2):
                rs = [r for r in recs if r["workload"] == wl and r["tool"] == tool and r["processes"] == p]
                sps, base = med(rs, "train_samples_per_s"), med(one, "train_samples_per_s")
                ratio = f"{sps / base:.2f}" if p == 2 else ""
                ms = med(rs, "allreduce_ms")
                n_ar = med(rs, "allreduces")
                log(f"| {wl} | {tool} | {p} x {2 // p} | {sps:,.0f} | {med(rs, 'steady_samples_per_s') or 0:,.0f} | {ratio} | "
                    f"{'' if n_ar is None else int(n_ar)} | {'' if ms is None else f'{ms:.3f}'} | {med(rs, 'test_accuracy'):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
