#!/usr/bin/env python3
"""nnrun's benchmark harness (python3 standard library only). Run it through
bench/run.sh, which builds the binary; see bench/README.md for the keys.

Trains the peer workloads (mlp, cnn, lstm, tabular, ctc) with the peers'
hyperparameters (shared/peers/common.py HP), each run a fresh process, reps
interleaved like the peers (rep 1: every workload, then rep 2, ...), rep k
with seed 1233 + k like the peers. Prints one JSON line per run, one median
line per workload with the peers' figures beside it, and one line timing
`nnrun validate` and `nnrun --help`.

Each workload's FLOPs per training sample come from bench/flops.py (the
spec's `nnrun validate --format json`); a full run first measures the sgemm
ceiling (examples/roofline.rs, and numpy/torch with --python) and reports
every workload's GFLOP/s as a share of it.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # importing flops.py leaves no bench/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Peer hyperparameters (shared/peers/common.py HP) and the spec each maps to.
# They are passed as overrides on every run, so the harness trains with the
# peers' values even if a spec drifts; the specs currently hold the same ones.
WORKLOADS = {
    "mlp": dict(spec="specs/mnist_mlp.yaml", epochs=5, batch=128, lr=1e-3, optimizer="rmsprop",
                metric="test_accuracy", n_train=8000),
    "cnn": dict(spec="specs/mnist_cnn.yaml", epochs=3, batch=64, lr=1e-3, optimizer="adam",
                metric="test_accuracy", n_train=8000),
    "lstm": dict(spec="specs/sunspots_lstm.yaml", epochs=50, batch=32, lr=5e-3, optimizer="adam",
                 metric="test_mse", n_train=238,
                 # The peers hold out int(0.2 * 297) = 59 windows (238 train); nnrun's
                 # test_split follows Keras's validation_split, floor(297 * 0.8) = 237
                 # train and 60 test. 0.1985 gives floor(297 * 0.8015) = 238: the
                 # peers' exact train and test windows.
                 extra_sets=["data.window.size=12", "data.scale=0.005", "data.test_split=0.1985",
                             "data.shuffle_split=false"]),
    "tabular": dict(spec="specs/breast_cancer.yaml", epochs=50, batch=32, lr=1e-3, optimizer="adam",
                    metric="test_accuracy", n_train=455,
                    # The spec also tracks AUC, which sorts the predictions after
                    # every step; the peers track no training metric, so only the
                    # accuracy the test metric needs is kept.
                    extra_sets=["data.normalize=standard", "data.test_split=0.2",
                                "training.metrics=[accuracy]"]),
    # The CTC issue's workload: digit strings from 28x112 images (the peers'
    # ctc section, added to RESULTS.md after the other four).
    "ctc": dict(spec="specs/ocr_crnn.yaml", epochs=15, batch=32, lr=1e-3, optimizer="adam",
                metric="test_sequence_accuracy", n_train=3215),
}
# Smoke runs: one epoch on the first N training samples.
SMOKE_LIMIT = {"mlp": 512, "cnn": 128, "lstm": 128, "tabular": 128, "ctc": 64}
# The peers' raw lines: shared/peers in the repository, or beside it (worktrees).
PEERS_CANDIDATES = [os.path.join(ROOT, "shared", "peers", "results.jsonl"),
                    os.path.join(os.path.dirname(ROOT), "shared", "peers", "results.jsonl")]
PEERS_FILE = next((p for p in PEERS_CANDIDATES if os.path.exists(p)), PEERS_CANDIDATES[0])
PEER_SEED0 = 1233  # rep k trains with seed 1233 + k, as the peers do
# shared/peers/roofline.py (numpy, torch): in the repository, or beside it.
ROOFLINE_PY_CANDIDATES = [os.path.join(ROOT, "shared", "peers", "roofline.py"),
                          os.path.join(os.path.dirname(ROOT), "shared", "peers", "roofline.py")]
ROOFLINE_N = 2048

RUN_KEYS = ["kind", "workload", "spec", "rep", "seed", "threads", "epochs", "batch_size", "n_train",
            "train_seconds", "fit_seconds", "between_epochs_seconds", "train_samples_per_s",
            "fit_samples_per_s", "steady_samples_per_s", "first_epoch_seconds", "metric",
            "metric_value", "final_train_loss", "peak_rss_mb", "process_wall_seconds",
            "cpu_seconds", "cpu_util", "rss_source", "flops_per_sample", "gflops", "steady_gflops",
            "ceiling_share", "steady_ceiling_share"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine():
    info = {"platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["model_name"] = fields.get("Model name")
        info["cpu_family_model"] = f"{fields.get('CPU family')}/{fields.get('Model')}"
        info["threads_per_core"] = fields.get("Thread(s) per core")
        info["hypervisor"] = fields.get("Hypervisor vendor")
        info["caches"] = ";".join(f"{k}: {fields[k]}" for k in ("L1d cache", "L2 cache", "L3 cache") if k in fields)
        flags = fields.get("Flags", "").split()
        info["avx512"] = " ".join(f for f in flags if f.startswith("avx512")) or "none"
        info["avx2"] = "avx2" in flags
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
        info["mem_total_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, AttributeError):
        pass
    info["kernel"] = platform.release()
    return info


def machine_slug(m):
    name = (m.get("model_name") or platform.processor() or "cpu").lower()
    name = re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return f"{name}-{m.get('cpus')}cpu"


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def run_process(cmd, capture=True):
    """Runs cmd; returns (exit code, stdout, stderr, wall s, peak RSS MB, cpu s, rss source).
    Peak RSS and CPU time come from GNU time -v when present, else from the
    child's own rusage (os.wait4), never from RUSAGE_CHILDREN (a max over all
    children so far)."""
    gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
    tfile = None
    if gnu_time:
        fd, tfile = tempfile.mkstemp(prefix="nnrun-bench-time-")
        os.close(fd)
        cmd = [gnu_time, "-v", "-o", tfile, *cmd]
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=out_f, stderr=err_f, env={**os.environ, "NO_COLOR": "1"})
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    stdout, stderr = out_f.read().decode(errors="replace"), err_f.read().decode(errors="replace")
    rss, cpu, source = ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime, "wait4-rusage"
    if tfile:
        with open(tfile) as f:
            text = f.read()
        os.unlink(tfile)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        u = re.search(r"User time \(seconds\): ([\d.]+)", text)
        s = re.search(r"System time \(seconds\): ([\d.]+)", text)
        if m:
            rss, source = int(m.group(1)) / 1024.0, "gnu-time"
        if u and s:
            cpu = float(u.group(1)) + float(s.group(1))
    return p.returncode, stdout, stderr, wall, rss, cpu, source


# `--set KEY=VALUE` of the command line, passed to every run after the
# workload's own (e.g. training.mixed_precision=mixed_bfloat16).
USER_SETS = []


def train_cmd(binary, wl, rep, threads, smoke, out_dir, epochs=None):
    """The `nnrun train` command line of one run (bench/profile.sh uses it too)."""
    w = WORKLOADS[wl]
    epochs = epochs or (1 if smoke else w["epochs"])
    sets = [f"training.optimizer.type={w['optimizer']}", f"training.optimizer.learning_rate={w['lr']}",
            *w.get("extra_sets", []), *USER_SETS]
    cmd = [binary, "train", w["spec"], "--out", out_dir, "--log-format", "json", "--threads", str(threads),
           "--seed", str(PEER_SEED0 + rep), "--epochs", str(epochs), "--batch-size", str(w["batch"])]
    for s in sets:
        cmd += ["--set", s]
    if smoke:
        cmd += ["--limit", str(SMOKE_LIMIT[wl])]
    return cmd


def throughput(rec, flops_per_sample, ceiling):
    """GFLOP/s from samples/s (whole fit, and after epoch 1) and their share of the ceiling."""
    sig = lambda v: float(f"{v:.4g}")  # 4 significant digits: tabular's figures are 1000x below cnn's
    g = lambda sps: None if sps is None or flops_per_sample is None else sig(sps * flops_per_sample / 1e9)
    share = lambda gf: None if gf is None or not ceiling else sig(gf / ceiling)
    rec["flops_per_sample"] = flops_per_sample
    rec["gflops"] = g(rec["train_samples_per_s"])
    rec["steady_gflops"] = g(rec["steady_samples_per_s"])
    rec["ceiling_share"] = share(rec["gflops"])
    rec["steady_ceiling_share"] = share(rec["steady_gflops"])
    return rec


def workload_flops(binary, wl):
    """bench/flops.py's count for a workload's spec. The bench's overrides
    (optimizer, data, metrics) change no layer shape, and `nnrun validate`
    takes none: the spec as written is what trains."""
    w = WORKLOADS[wl]
    assert not any(s.startswith("model.") for s in w.get("extra_sets", [])), "a model override would change the count"
    res = flops.count(flops.validate_json(binary, w["spec"]))
    if res["uncounted"]:
        log(f"[bench] warning: {wl}: flops.py counts no work for {', '.join(res['uncounted'])}")
    return res


def run_roofline(cmd, lib, threads):
    """One roofline measurement: a JSON line with best_gflops and median_gflops
    (roofline.py's gflops_best / gflops_median are copied to those names), or
    a record with `error`."""
    log(f"[bench] roofline {lib}: {' '.join(cmd)}")
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        log(f"[bench] warning: roofline {lib} failed: {e}")
        return {"kind": "roofline", "lib": lib, "error": str(e)}
    line = next((l for l in reversed(r.stdout.splitlines()) if l.startswith("{")), None)
    if r.returncode != 0 or line is None:
        err = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        log(f"[bench] warning: roofline {lib} failed (exit {r.returncode}): {err}")
        return {"kind": "roofline", "lib": lib, "error": err}
    rec = {"kind": "roofline", **json.loads(line)}
    rec["lib"] = lib
    rec.setdefault("best_gflops", rec.get("gflops_best"))
    rec.setdefault("median_gflops", rec.get("gflops_median"))
    return rec


def measure_ceiling(roofline_bin, python, threads, n, reps):
    """The sgemm ceiling of this run: nnrun's matmul (examples/roofline.rs) and,
    with a Python, numpy's and torch's (shared/peers/roofline.py); returns
    (every measurement, the highest median GFLOP/s, its lib)."""
    results = []
    if roofline_bin:
        results.append(run_roofline([roofline_bin, "--n", str(n), "--reps", str(reps), "--threads", str(threads)],
                                    "nnrun", threads))
    if python:
        script = next((p for p in ROOFLINE_PY_CANDIDATES if os.path.exists(p)), None)
        if script is None:
            log(f"[bench] warning: no shared/peers/roofline.py in {' or '.join(ROOFLINE_PY_CANDIDATES)}: numpy/torch skipped")
        else:
            if threads != 2:
                log("[bench] warning: shared/peers/roofline.py runs torch on 2 threads whatever --threads says")
            for lib in ("numpy", "torch"):
                results.append(run_roofline([python, script, lib, "--n", str(n), "--reps", str(reps)], lib, threads))
    ok = [r for r in results if r.get("median_gflops")]
    if not ok:
        return results, None, None
    best = max(ok, key=lambda r: r["median_gflops"])
    return results, best["median_gflops"], best["lib"]


def train_once(binary, wl, rep, threads, smoke, keep, flops_per_sample=None, ceiling=None):
    w = WORKLOADS[wl]
    seed = PEER_SEED0 + rep
    epochs = 1 if smoke else w["epochs"]
    out_dir = tempfile.mkdtemp(prefix=f"nnrun-bench-{wl}-")
    cmd = train_cmd(binary, wl, rep, threads, smoke, out_dir)
    log(f"[bench] {wl} rep {rep}: {' '.join(cmd[1:])}")
    code, stdout, stderr, wall, rss, cpu, source = run_process(cmd)
    if not keep:
        shutil.rmtree(out_dir, ignore_errors=True)
    if code != 0:
        raise SystemExit(f"bench: {wl} rep {rep} failed with exit code {code}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    events = []
    for line in stdout.splitlines():
        # nnrun prints a plain "Training '...'" banner before the JSON lines
        if line.startswith("{"):
            events.append(json.loads(line))
    epochs_ev = [e for e in events if e.get("event") == "epoch"]
    test = [e for e in events if e.get("event") == "test"]
    if len(epochs_ev) != epochs or not test:
        raise SystemExit(f"bench: {wl}: expected {epochs} epoch lines and a test line, got:\n{stdout}")
    secs = [e["seconds"] for e in epochs_ev]
    n_train = epochs_ev[0]["samples"]
    train_seconds = sum(secs)
    fit_seconds = epochs_ev[-1]["fit_seconds"]
    steady = (len(secs) - 1) * n_train / sum(secs[1:]) if len(secs) > 1 else None
    rec = {
        "kind": "run", "tool": "nnrun", "workload": wl, "spec": w["spec"], "rep": rep, "seed": seed,
        "threads": threads, "epochs": epochs, "batch_size": w["batch"], "n_train": n_train,
        # the peers' train_seconds: the training loop, no evaluation, no checkpoints
        "train_seconds": round(train_seconds, 4),
        # first epoch start -> last epoch end, with the checkpoints written between epochs
        "fit_seconds": round(fit_seconds, 4),
        "between_epochs_seconds": round(max(fit_seconds - train_seconds, 0.0), 4),
        "train_samples_per_s": round(epochs * n_train / train_seconds, 1),
        "fit_samples_per_s": round(epochs * n_train / fit_seconds, 1),
        "steady_samples_per_s": None if steady is None else round(steady, 1),
        "first_epoch_seconds": round(secs[0], 4),
        "metric": w["metric"], "metric_value": test[-1][w["metric"]], w["metric"]: test[-1][w["metric"]],
        "final_train_loss": epochs_ev[-1]["loss"],
        "peak_rss_mb": round(rss, 1), "process_wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3), "cpu_util": round(cpu / wall, 2) if wall > 0 else None,
        "rss_source": source, "smoke": smoke,
    }
    if not smoke and n_train != w["n_train"]:
        log(f"[bench] warning: {wl} trained on {n_train} samples, the peers on {w['n_train']}")
    rec["peer_n_train"] = w["n_train"]
    return throughput(rec, flops_per_sample, ceiling)


def time_startup(binary, n):
    """Whole-process wall time of `nnrun validate specs/mnist_cnn.yaml` and `nnrun --help`, ms."""
    out = {"kind": "startup", "n": n, "validate_spec": "specs/mnist_cnn.yaml", "target_ms": 20}
    for key, args in (("validate", ["validate", "specs/mnist_cnn.yaml"]), ("help", ["--help"])):
        ms = []
        subprocess.run([binary, *args], cwd=ROOT, capture_output=True)  # warm the page cache
        for _ in range(n):
            t0 = time.perf_counter()
            r = subprocess.run([binary, *args], cwd=ROOT, capture_output=True)
            ms.append((time.perf_counter() - t0) * 1000)
            if r.returncode != 0:
                raise SystemExit(f"bench: nnrun {' '.join(args)} exited {r.returncode}: {r.stderr.decode()}")
        out[f"{key}_ms_median"] = round(statistics.median(ms), 2)
        out[f"{key}_ms_min"] = round(min(ms), 2)
        out[f"{key}_ms_max"] = round(max(ms), 2)
    return out


def peer_figures(path):
    """Median per (workload, peer) of the peers' runs in results.jsonl."""
    try:
        with open(path) as f:
            rows = [json.loads(l) for l in f if l.strip()]
    except OSError:
        return {}
    by = {}
    for r in rows:
        if r.get("kind") == "bench":
            by.setdefault(r["workload"], {}).setdefault(r["peer_key"], []).append(r)
    out = {}
    for wl, peers in by.items():
        metric = "test_mse" if wl == "lstm" else ("test_seq_accuracy" if wl == "ctc" else "test_accuracy")
        out[wl] = {}
        for peer, rs in peers.items():
            med = lambda k: statistics.median([r[k] for r in rs if r.get(k) is not None]) if any(r.get(k) is not None for r in rs) else None
            out[wl][peer] = {"runs": len(rs), "train_samples_per_s": med("train_samples_per_s"),
                             "steady_samples_per_s": med("steady_samples_per_s"), "metric_value": med(metric),
                             "peak_rss_mb": med("peak_rss_mb"), "process_wall_seconds": med("process_wall_seconds")}
    return out


def summarize(wl, runs, peers, flops_res=None, ceiling=None, ceiling_lib=None):
    med = lambda k: None if any(r[k] is None for r in runs) else round(statistics.median(r[k] for r in runs), 4)
    s = {"kind": "summary", "workload": wl, "spec": WORKLOADS[wl]["spec"], "runs": len(runs),
         "smoke": runs[0]["smoke"], "epochs": runs[0]["epochs"], "n_train": runs[0]["n_train"]}
    for k in ("train_samples_per_s", "fit_samples_per_s", "steady_samples_per_s", "train_seconds",
              "fit_seconds", "between_epochs_seconds", "first_epoch_seconds", "metric_value",
              "peak_rss_mb", "process_wall_seconds", "cpu_util"):
        s[k] = med(k)
    s["metric"] = WORKLOADS[wl]["metric"]
    s["metric_runs"] = [r["metric_value"] for r in runs]
    # GFLOP/s of the median samples/s, and their share of the sgemm ceiling
    throughput(s, flops_res and flops_res["train_flops_per_sample"], ceiling)
    s["forward_flops_per_sample"] = flops_res and flops_res["forward_flops_per_sample"]
    s["ceiling_gflops"] = ceiling
    s["ceiling_lib"] = ceiling_lib
    p = peers.get(wl, {})
    s["peers"] = p
    # the keys are always there (null without the peers' file), for tools and tests
    for k in ("best_peer", "best_peer_train_samples_per_s", "ratio_train_vs_best_peer", "best_peer_steady",
              "best_peer_steady_samples_per_s", "ratio_steady_vs_best_peer", "least_rss_peer",
              "least_peer_rss_mb", "ratio_rss_vs_least_peer"):
        s[k] = None
    if p:
        best = max(p.items(), key=lambda kv: kv[1]["train_samples_per_s"] or 0)
        best_st = max(p.items(), key=lambda kv: kv[1]["steady_samples_per_s"] or 0)
        least_rss = min(p.items(), key=lambda kv: kv[1]["peak_rss_mb"] or float("inf"))
        s["best_peer"] = best[0]
        s["best_peer_train_samples_per_s"] = best[1]["train_samples_per_s"]
        s["ratio_train_vs_best_peer"] = round(s["train_samples_per_s"] / best[1]["train_samples_per_s"], 3)
        s["best_peer_steady"] = best_st[0]
        s["best_peer_steady_samples_per_s"] = best_st[1]["steady_samples_per_s"]
        if s["steady_samples_per_s"] is not None:
            s["ratio_steady_vs_best_peer"] = round(s["steady_samples_per_s"] / best_st[1]["steady_samples_per_s"], 3)
        else:
            s["ratio_steady_vs_best_peer"] = None
        s["least_rss_peer"] = least_rss[0]
        s["least_peer_rss_mb"] = least_rss[1]["peak_rss_mb"]
        s["ratio_rss_vs_least_peer"] = round(s["peak_rss_mb"] / least_rss[1]["peak_rss_mb"], 3)
        for peer in ("torch", "keras-jax"):
            if peer in p:
                s[f"ratio_train_vs_{peer}"] = round(s["train_samples_per_s"] / p[peer]["train_samples_per_s"], 3)
    return s


def write_markdown(path, meta, runs, summaries, startup):
    """The results table next to the .jsonl; notes are added by hand below it."""
    f = lambda v, d=0: "-" if v is None else (f"{v:,.{d}f}")
    # GFLOP/s and MFLOP: 3-4 significant digits (tabular's are 1000x below cnn's)
    gfl = lambda v: "-" if v is None else (f"{v:,.1f}" if v >= 100 else f"{v:.3g}")
    pct = lambda v: "-" if v is None else (f"{100 * v:.2f}%" if v >= 0.001 else f"{100 * v:.3f}%")
    ceiling = meta.get("ceiling_gflops")
    measured = "; ".join(
        f"{r['lib']} {r['median_gflops']} median / {r['best_gflops']} best" if r.get("median_gflops")
        else f"{r['lib']} failed ({r.get('error')})" for r in meta.get("roofline", []))
    ceiling_line = (f"- sgemm ceiling: **{ceiling} GFLOP/s** ({meta.get('ceiling_lib')}, the highest median), "
                    f"measured at the start of this run: {measured} (f32 C = A @ B, n = "
                    f"{next((r.get('n') for r in meta.get('roofline', []) if r.get('n')), '?')}, "
                    f"GFLOP/s over {next((r.get('reps') for r in meta.get('roofline', []) if r.get('reps')), '?')} products)"
                    if ceiling else "- sgemm ceiling: not measured in this run (`% ceiling` is blank)")
    lines = [f"# nnrun benchmark, {meta['date']}", "",
             f"- Machine: `{meta['machine'].get('model_name')}` family/model {meta['machine'].get('cpu_family_model')}, "
             f"{meta['machine'].get('cpus')} CPUs ({meta['machine'].get('threads_per_core')} thread per core), "
             f"hypervisor {meta['machine'].get('hypervisor')}, {meta['machine'].get('mem_total_gib')} GiB RAM, "
             f"AVX-512: {meta['machine'].get('avx512')}, kernel {meta['machine'].get('kernel')}",
             f"- Caches: {meta['machine'].get('caches')}",
             f"- nnrun {meta['git_sha']}{' (dirty tree)' if meta['git_dirty'] else ''}, {meta['rustc']}, binary `{meta['binary']}`",
             f"- {meta['reps']} rep(s) per workload, interleaved, fresh process each, --threads {meta['threads']}, "
             f"seeds 1234.. like the peers; load average {meta['loadavg_start']} at start, {meta['loadavg_end']} at end",
             f"- Command: `{meta['command']}`; raw lines: `{os.path.basename(path)[:-3]}.jsonl`",
             ceiling_line,
             "",
             "samples/s = epochs x n_train / training time (sum of nnrun's per-epoch `seconds`, the peers' "
             "`train_seconds`); after epoch 1 = epochs 2..N (peers' `steady`); RSS = peak resident set of the "
             f"whole process (MB). Peers: medians of their runs in `{meta.get('peers_file')}`"
             + (" (measured on another machine: compare with care)." if "shared" in str(meta.get('peers_file')) else " (measured on this machine, side by side)."),
             "GFLOP/s = samples/s x training MFLOP per sample (forward + backward, bench/flops.py: multiply-add = 2, "
             "matmul work only, no input gradient for the layer reading the data) / 1000, whole fit and after epoch 1; "
             "`% ceiling` = GFLOP/s / the sgemm ceiling above (the peers' figures are divided by this run's ceiling too).",
             "",
             "| workload | tool | samples/s | after epoch 1 | vs nnrun | test metric | peak RSS MB | process wall s "
             "| MFLOP/sample | GFLOP/s | after epoch 1 | % ceiling | after epoch 1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    gf = lambda sps, fps: None if sps is None or fps is None else sps * fps / 1e9
    share = lambda g: None if g is None or not ceiling else g / ceiling
    for s in summaries:
        wl = s["workload"]
        fps = s.get("flops_per_sample")
        mflop = "-" if fps is None else f"{fps / 1e6:.4g}"
        lines.append(f"| {wl} | **nnrun** | {f(s['train_samples_per_s'])} | {f(s['steady_samples_per_s'])} | 1.00 | "
                     f"{s['metric']} {f(s['metric_value'], 4)} | {f(s['peak_rss_mb'])} | {f(s['process_wall_seconds'], 2)} | "
                     f"{mflop} | {gfl(s.get('gflops'))} | {gfl(s.get('steady_gflops'))} | {pct(s.get('ceiling_share'))} | "
                     f"{pct(s.get('steady_ceiling_share'))} |")
        for peer in ("torch", "keras-jax", "keras-tensorflow", "keras-torch"):
            p = s["peers"].get(peer)
            if not p:
                continue
            rel = "-" if not p["train_samples_per_s"] else f"{p['train_samples_per_s'] / s['train_samples_per_s']:.2f}x"
            g, gs = gf(p["train_samples_per_s"], fps), gf(p["steady_samples_per_s"], fps)
            lines.append(f"| {wl} | {peer} | {f(p['train_samples_per_s'])} | {f(p['steady_samples_per_s'])} | {rel} | "
                         f"{f(p['metric_value'], 4)} | {f(p['peak_rss_mb'])} | {f(p['process_wall_seconds'], 2)} | "
                         f"{mflop} | {gfl(g)} | {gfl(gs)} | {pct(share(g))} | {pct(share(gs))} |")
    lines += ["", "`vs nnrun` = peer samples/s / nnrun samples/s (above 1: the peer is faster).", ""]
    lines += ["FLOPs per sample (bench/flops.py), per layer with matmul work:", "",
              "| workload | layer | type | forward | backward | train | input gradient |", "|---|---|---|---|---|---|---|"]
    for wl, layers in meta.get("flops", {}).items():
        for l in layers:
            if l["train_flops"]:
                ig = "yes" if l["input_grad"] else "no (reads the data)"
                lines.append(f"| {wl} | {l['name']} | {l['type']} | {l['forward_flops']:,} | {l['backward_flops']:,} | "
                             f"{l['train_flops']:,} | {ig} |")
        lines.append(f"| {wl} | **total** | | {meta['forward_flops_per_sample'][wl]:,} | "
                     f"{meta['flops_per_sample'][wl] - meta['forward_flops_per_sample'][wl]:,} | "
                     f"{meta['flops_per_sample'][wl]:,} | |")
    lines.append("")
    lines += ["Per run (nnrun):", "", "| workload | rep | seed | samples/s | with checkpoints | after epoch 1 | first epoch s | metric | RSS MB | wall s | cpu util | GFLOP/s | % ceiling |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['workload']} | {r['rep']} | {r['seed']} | {f(r['train_samples_per_s'])} | {f(r['fit_samples_per_s'])} | "
                     f"{f(r['steady_samples_per_s'])} | {f(r['first_epoch_seconds'], 2)} | {f(r['metric_value'], 4)} | "
                     f"{f(r['peak_rss_mb'])} | {f(r['process_wall_seconds'], 2)} | {f(r['cpu_util'], 2)} | "
                     f"{gfl(r.get('gflops'))} | {pct(r.get('ceiling_share'))} |")
    if startup:
        lines += ["", f"Startup (whole process, median of {startup['n']}): `nnrun validate {startup['validate_spec']}` "
                  f"{startup['validate_ms_median']} ms (min {startup['validate_ms_min']}), `nnrun --help` "
                  f"{startup['help_ms_median']} ms (min {startup['help_ms_min']}); target < {startup['target_ms']} ms."]
    lines += ["", "## Notes", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="*", help=f"default: all of {', '.join(WORKLOADS)}")
    ap.add_argument("--bin", required=True, help="the nnrun binary (run.sh builds and passes it)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override for every run (repeatable), e.g. training.mixed_precision=mixed_bfloat16")
    ap.add_argument("--smoke", action="store_true", help="1 epoch on a few samples, 1 rep: checks the pipeline")
    ap.add_argument("--threads", type=int, default=2, help="nnrun --threads (the peers used 2)")
    ap.add_argument("--startup-n", type=int, default=None, help="runs of validate/--help (default 20, smoke 3)")
    ap.add_argument("--no-startup", action="store_true")
    ap.add_argument("--save", action="store_true", help="also write bench/results/<date>-<machine>.jsonl and .md")
    ap.add_argument("--peers", default=PEERS_FILE, help="the peers' results.jsonl (default: %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    ap.add_argument("--roofline-bin", help="examples/roofline built in release (default: examples/roofline beside "
                                           "--bin, skipped when it is not there)")
    ap.add_argument("--python", help="a Python with numpy and torch: also measure their sgemm ceiling "
                                     "(shared/peers/roofline.py)")
    ap.add_argument("--no-roofline", action="store_true", help="skip the ceiling measurement (ceiling_share is null)")
    ap.add_argument("--roofline-only", action="store_true",
                    help="measure the ceiling (even with --smoke), print the meta line and exit")
    ap.add_argument("--roofline-n", type=int, default=ROOFLINE_N, help="matrix size of the ceiling product (%(default)s)")
    ap.add_argument("--roofline-reps", type=int, default=10, help="timed products per library (%(default)s)")
    ap.add_argument("--print-cmd", action="store_true",
                    help="print rep 1's nnrun command of the one workload, one argument a line, and exit")
    ap.add_argument("--out-dir", help="with --print-cmd: the run directory")
    ap.add_argument("--epochs", type=int, help="with --print-cmd: train this many epochs instead")
    a = ap.parse_args()
    USER_SETS.extend(a.set)
    if a.print_cmd:
        if len(a.workloads) != 1 or a.workloads[0] not in WORKLOADS:
            ap.error("--print-cmd takes one workload")
        out_dir = a.out_dir or tempfile.mkdtemp(prefix=f"nnrun-bench-{a.workloads[0]}-")
        print("\n".join(train_cmd(os.path.abspath(a.bin), a.workloads[0], 1, a.threads, a.smoke, out_dir, a.epochs)))
        return 0
    wls = a.workloads or list(WORKLOADS)
    for wl in wls:
        if wl not in WORKLOADS:
            ap.error(f"unknown workload {wl!r}; choose from {', '.join(WORKLOADS)}")
    reps = 1 if a.smoke else a.reps
    binary = os.path.abspath(a.bin)
    # FLOPs per training sample of each workload (the spec's validate JSON).
    flops_by = {wl: workload_flops(binary, wl) for wl in wls}
    # The ceiling, measured in this run before any training (not under --smoke:
    # a debug build and a loaded machine give no ceiling worth dividing by).
    if a.roofline_bin and not os.access(a.roofline_bin, os.X_OK):
        ap.error(f"--roofline-bin {a.roofline_bin} is not an executable")
    roofline, ceiling, ceiling_lib = [], None, None
    if a.roofline_only or not (a.smoke or a.no_roofline):
        roofline_bin = os.path.abspath(a.roofline_bin or os.path.join(os.path.dirname(binary), "examples", "roofline"))
        if not os.access(roofline_bin, os.X_OK):
            log(f"[bench] no {os.path.relpath(roofline_bin, ROOT)} (cargo build --release --example roofline): "
                "nnrun's ceiling skipped")
            roofline_bin = None
        roofline, ceiling, ceiling_lib = measure_ceiling(roofline_bin, a.python, a.threads, a.roofline_n, a.roofline_reps)
        if ceiling is None:
            log("[bench] warning: no ceiling measured: ceiling_share is null")
    m = machine()
    meta = {"kind": "meta", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": m, "machine_slug": machine_slug(m), "git_sha": git("rev-parse", "--short=12", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "rustc": (subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
                      if shutil.which("rustc") else None),
            "binary": os.path.relpath(binary, ROOT), "reps": reps, "threads": a.threads, "smoke": a.smoke,
            "workloads": wls, "sets": USER_SETS, "loadavg_start": loadavg(), "command": "bench/run.sh " + " ".join(sys.argv[1:]),
            "peers_file": os.path.relpath(a.peers, ROOT) if a.peers else None,
            "flops_per_sample": {wl: f["train_flops_per_sample"] for wl, f in flops_by.items()},
            "forward_flops_per_sample": {wl: f["forward_flops_per_sample"] for wl, f in flops_by.items()},
            "flops": {wl: f["layers"] for wl, f in flops_by.items()},
            "roofline": roofline, "ceiling_gflops": ceiling, "ceiling_lib": ceiling_lib}
    lines = [meta]
    print(json.dumps(meta), flush=True)
    if a.roofline_only:
        return 0
    runs = []
    for rep in range(1, reps + 1):
        for wl in wls:
            r = train_once(binary, wl, rep, a.threads, a.smoke, a.keep,
                           flops_by[wl]["train_flops_per_sample"], ceiling)
            runs.append(r)
            lines.append(r)
            print(json.dumps(r), flush=True)
    peers = peer_figures(a.peers)
    summaries = []
    for wl in wls:
        s = summarize(wl, [r for r in runs if r["workload"] == wl], peers, flops_by[wl], ceiling, ceiling_lib)
        summaries.append(s)
        lines.append(s)
        print(json.dumps(s), flush=True)
    startup = None
    if not a.no_startup:
        startup = time_startup(binary, a.startup_n or (3 if a.smoke else 20))
        lines.append(startup)
        print(json.dumps(startup), flush=True)
    meta["loadavg_end"] = loadavg()
    if a.save:
        day = meta["date"][:10]
        # a smoke run never overwrites the day's real results
        suffix = "-smoke" if a.smoke else ""
        base = os.path.join(ROOT, "bench", "results", f"{day}-{meta['machine_slug']}{suffix}")
        # nor an earlier run of the same day: -2, -3, ...
        n, first = 2, base
        while os.path.exists(base + ".jsonl") or os.path.exists(base + ".md"):
            base, n = f"{first}-{n}", n + 1
        os.makedirs(os.path.dirname(base), exist_ok=True)
        with open(base + ".jsonl", "w") as fh:
            for l in lines:
                fh.write(json.dumps(l) + "\n")
        write_markdown(base + ".md", meta, runs, summaries, startup)
        log(f"[bench] wrote {os.path.relpath(base, ROOT)}.jsonl and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
