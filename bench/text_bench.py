#!/usr/bin/env python3
"""The text-pipeline benchmark behind bench/text.sh (python3, standard library
only): nnrun against Keras (TensorFlow backend, bench/text_peers.py) on
specs/debian_text.yaml (TextVectorization multi_hot -> MLP) and
specs/debian_text_cnn.yaml (int sequences -> Embedding -> Conv1D).

Round k (seed k): nnrun text, keras text, nnrun cnn, keras cnn, each a fresh
process; after each nnrun training run, `nnrun validate SPEC` (median of 5)
and `nnrun predict MODEL --input CSV --output FILE` on all rows. One JSON line
per run, one summary line per workload and tool, and with --save (bench/text.sh
passes it) a markdown table in bench/results/. See bench/README.md.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # importing bench.py leaves no bench/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, git, loadavg, log, machine, run_process  # noqa: E402

CSV = "data/tabular/debian_sections.csv"
WORKLOADS = {
    "text_multi_hot": dict(spec="specs/debian_text.yaml", epochs=8, batch=32),
    "text_cnn": dict(spec="specs/debian_text_cnn.yaml", epochs=6, batch=32),
}
DEFAULT_PYTHON = os.path.expanduser("~/.cache/nnrun-peers/tfvenv/bin/python")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def timed(cmd):
    """Wall seconds of one whole process (stdout/stderr discarded); fails loudly."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"text bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return wall


def nnrun_run(binary, wl, rep, threads, validate_n):
    w = WORKLOADS[wl]
    out_dir = tempfile.mkdtemp(prefix=f"nnrun-text-{wl}-")
    try:
        cmd = [binary, "train", w["spec"], "--out", out_dir, "--log-format", "json",
               "--threads", str(threads), "--seed", str(rep)]
        log(f"[text] nnrun {wl} rep {rep}: {' '.join(cmd[1:])}")
        code, stdout, stderr, wall, rss, cpu, source = run_process(cmd)
        if code != 0:
            raise SystemExit(f"text bench: nnrun {wl} rep {rep} failed ({code}):\n{stdout}\n{stderr}")
        events = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
        ep = [e for e in events if e.get("event") == "epoch"]
        test = [e for e in events if e.get("event") == "test"]
        if len(ep) != w["epochs"] or not test:
            raise SystemExit(f"text bench: nnrun {wl}: expected {w['epochs']} epoch lines and a test line:\n{stdout}")
        secs = [e["seconds"] for e in ep]
        n_train = ep[0]["samples"]
        fit_seconds = ep[-1]["fit_seconds"]
        # Preprocessing: `validate` reads the CSV and fits the vocabulary (whole
        # process, median of validate_n); `predict` reads the CSV, vectorizes
        # and runs the forward pass on every row (whole process, one run).
        val = [timed([binary, "validate", w["spec"]]) for _ in range(validate_n)]
        pred_out = os.path.join(out_dir, "predictions.csv")
        pred = timed([binary, "predict", os.path.join(out_dir, "model.safetensors"),
                      "--input", CSV, "--output", pred_out])
        with open(os.path.join(ROOT, CSV)) as f:
            n_rows = sum(1 for _ in f) - 1
        with open(pred_out) as f:
            n_pred = sum(1 for _ in f) - 1
        if n_pred != n_rows:
            raise SystemExit(f"text bench: predict wrote {n_pred} rows, the CSV has {n_rows}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "kind": "run", "tool": "nnrun", "workload": wl, "spec": w["spec"], "rep": rep, "seed": rep,
        "threads": threads, "epochs": len(ep), "batch_size": w["batch"], "n_train": n_train,
        # the sum of the epochs' `seconds` (bench/run.sh's train_seconds)
        "train_seconds": sum(secs),
        "fit_seconds": fit_seconds,  # first epoch start to last epoch end, checkpoints included
        "epoch_seconds": secs,
        "first_epoch_seconds": secs[0],
        "train_samples_per_s": len(ep) * n_train / sum(secs),
        "fit_samples_per_s": len(ep) * n_train / fit_seconds,
        "steady_samples_per_s": (len(ep) - 1) * n_train / sum(secs[1:]) if len(ep) > 1 else None,
        "final_train_loss": ep[-1]["loss"],
        "test_accuracy": test[0]["test_accuracy"],
        "test_loss": test[0].get("test_loss"),
        "validate_seconds": statistics.median(val),
        "validate_seconds_runs": val,
        "predict_seconds": pred,
        "predict_rows": n_pred,
        # whole `train` process minus the fit: startup, CSV, vocabulary,
        # vectorizing, test evaluation, writing the run directory
        "outside_fit_seconds": wall - fit_seconds,
        "peak_rss_mb": rss,
        "process_wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_util": cpu / wall if wall > 0 else None,
        "rss_source": source,
    }


def keras_run(python, wl, rep, threads):
    cmd = [python, "bench/text_peers.py", "--workload", wl, "--seed", str(rep), "--rep", str(rep),
           "--threads", str(threads)]
    log(f"[text] keras-tf {wl} rep {rep}")
    env_cmd = ["env", "KERAS_BACKEND=tensorflow", "TF_CPP_MIN_LOG_LEVEL=2", *cmd]
    code, stdout, stderr, wall, rss, cpu, source = run_process(env_cmd)
    if code != 0:
        raise SystemExit(f"text bench: keras {wl} rep {rep} failed ({code}):\n{stdout}\n{stderr}")
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise SystemExit(f"text bench: keras {wl} rep {rep} printed no JSON line:\n{stdout}\n{stderr}")
    rec = json.loads(lines[-1])
    rec["outer_wall_seconds"] = wall
    rec["outer_peak_rss_mb"] = rss
    rec["cpu_seconds"] = cpu
    rec["cpu_util"] = cpu / wall if wall > 0 else None
    # model.fit's wall time is the peers' train_seconds; the epochs alone as well
    rec["epochs_samples_per_s"] = rec["epochs"] * rec["n_train"] / rec["train_seconds"]
    return rec


SUMMARY_KEYS = {
    "nnrun": ["train_samples_per_s", "fit_samples_per_s", "steady_samples_per_s", "first_epoch_seconds",
              "test_accuracy", "validate_seconds", "predict_seconds", "outside_fit_seconds", "peak_rss_mb",
              "process_wall_seconds", "cpu_util"],
    "keras-tf": ["train_samples_per_s", "epochs_samples_per_s", "steady_samples_per_s", "first_epoch_seconds",
                 "test_accuracy", "read_csv_seconds", "adapt_seconds", "vectorize_seconds",
                 "vectorize_warm_seconds", "preprocess_seconds", "import_seconds", "peak_rss_mb",
                 "process_wall_seconds", "cpu_util"],
}


def summarize(tool, wl, runs):
    rs = [r for r in runs if r["tool"] == tool and r["workload"] == wl]
    s = {"kind": "summary", "tool": tool, "workload": wl, "runs": len(rs)}
    for k in SUMMARY_KEYS[tool]:
        s[k] = median([r.get(k) for r in rs])
    s["test_accuracy_runs"] = [r["test_accuracy"] for r in rs]
    return s


def fmt(x, nd=0):
    if x is None:
        return "-"
    return f"{x:,.{nd}f}"


def write_markdown(path, meta, summaries, cmds):
    m = meta["machine"]
    S = {(s["tool"], s["workload"]): s for s in summaries}
    out = [f"# Text pipeline: nnrun vs Keras (TensorFlow), {meta['date']}", ""]
    out += [f"- CPU: {m.get('model_name')} (family/model {m.get('cpu_family_model')}, "
            f"{m.get('cpus')} CPUs, {m.get('hypervisor') or 'bare metal'} guest), {m.get('caches')}",
            f"- flags: avx2 {'yes' if m.get('avx2') else 'no'}; avx512: {m.get('avx512')}",
            f"- RAM {m.get('mem_total_gib')} GiB, kernel {m.get('kernel')}",
            f"- nnrun: `{meta['binary']}`, git {meta['git_sha']}{' (dirty tree)' if meta['git_dirty'] else ''}; "
            f"keras {meta.get('keras_versions', {}).get('keras')}, tensorflow "
            f"{meta.get('keras_versions', {}).get('tensorflow')}, python "
            f"{meta.get('keras_versions', {}).get('python')}",
            f"- {meta['reps']} interleaved rounds (round k, seed k: nnrun text, keras text, nnrun cnn, keras cnn), "
            f"{meta['threads']} threads; load average {fmt(meta['loadavg_start'], 2)} at start, "
            f"{fmt(meta['loadavg_end'], 2)} at end; {fmt(meta['total_seconds'], 0)} s in all",
            "", "Medians of the rounds.", "",
            "## Training", "",
            "| workload | tool | samples/s whole fit | samples/s after epoch 1 | epoch 1 s | test accuracy (runs) "
            "| peak RSS MiB | process s |",
            "|---|---|---:|---:|---:|---|---:|---:|"]
    for wl in WORKLOADS:
        for tool in ("nnrun", "keras-tf"):
            s = S[(tool, wl)]
            runs = ", ".join(f"{a:.3f}" for a in s["test_accuracy_runs"])
            out.append(f"| {wl} | {tool} | {fmt(s['train_samples_per_s'])} | {fmt(s['steady_samples_per_s'])} | "
                       f"{fmt(s['first_epoch_seconds'], 2)} | {fmt(s['test_accuracy'], 3)} ({runs}) | "
                       f"{fmt(s['peak_rss_mb'])} | {fmt(s['process_wall_seconds'], 1)} |")
        n, k = S[("nnrun", wl)], S[("keras-tf", wl)]
        r1 = n["train_samples_per_s"] / k["train_samples_per_s"]
        r2 = n["steady_samples_per_s"] / k["steady_samples_per_s"]
        out.append(f"| {wl} | nnrun / keras | {r1:.2f}x | {r2:.2f}x | | | "
                   f"{n['peak_rss_mb'] / k['peak_rss_mb']:.2f}x | {n['process_wall_seconds'] / k['process_wall_seconds']:.2f}x |")
    out += ["", "Whole fit: epochs x n_train over nnrun's summed epoch `seconds` (checkpoints between epochs "
            "excluded) and over Keras's `model.fit` wall time (as bench/run.sh compares with the peers). "
            "Over nnrun's `fit_seconds` (checkpoints included) and Keras's summed epoch times instead: "
            + "; ".join(f"{wl}: nnrun {fmt(S[('nnrun', wl)]['fit_samples_per_s'])}, keras "
                        f"{fmt(S[('keras-tf', wl)]['epochs_samples_per_s'])}" for wl in WORKLOADS) + ".",
            "", "## Preprocessing (seconds)", "",
            "| workload | nnrun validate (read CSV + fit vocabulary, process) | nnrun predict, all rows (process) "
            "| nnrun train outside the fit | keras read CSV | keras adapt | keras vectorize all rows (first call / second) "
            "| keras TF import |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for wl in WORKLOADS:
        n, k = S[("nnrun", wl)], S[("keras-tf", wl)]
        out.append(f"| {wl} | {fmt(n['validate_seconds'], 3)} | {fmt(n['predict_seconds'], 3)} | "
                   f"{fmt(n['outside_fit_seconds'], 2)} | {fmt(k['read_csv_seconds'], 3)} | "
                   f"{fmt(k['adapt_seconds'], 3)} | {fmt(k['vectorize_seconds'], 3)} / "
                   f"{fmt(k['vectorize_warm_seconds'], 3)} | {fmt(k['import_seconds'], 1)} |")
    out += ["", "nnrun's figures are whole processes (startup included); Keras's are timed inside one process "
            "(after `import tensorflow`). `predict` also loads the model, runs the forward pass on all 9,796 "
            "rows and writes the predictions CSV; `train outside the fit` is the `train` process's wall time "
            "minus its fit (startup, CSV, vocabulary, vectorizing, test evaluation, run directory).",
            "", "## Commands", "", "```"] + cmds + ["```", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/nnrun")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--python", default=os.environ.get("TFVENV_PYTHON", DEFAULT_PYTHON),
                    help="python of a venv with keras 3 + tensorflow (default $TFVENV_PYTHON or %(default)s)")
    ap.add_argument("--validate-n", type=int, default=5)
    ap.add_argument("--save", action="store_true", help="write bench/results/<date>-text-<cpu>.md and .jsonl")
    ap.add_argument("--no-keras", action="store_true", help="nnrun only (no summary table)")
    a = ap.parse_args()
    home = os.path.expanduser("~")
    py_shown = "~" + a.python[len(home):] if a.python.startswith(home + os.sep) else a.python
    binary = os.path.abspath(a.bin)
    m = machine()
    t_start = time.perf_counter()
    meta = {"kind": "meta", "date": datetime.date.today().isoformat(), "machine": m, "binary": a.bin,
            "git_sha": git("rev-parse", "--short", "HEAD"), "git_dirty": bool(git("status", "--porcelain")),
            "reps": a.reps, "threads": a.threads, "python": a.python, "loadavg_start": loadavg()}
    lines, runs = [], []

    def emit(rec):
        lines.append(rec)
        print(json.dumps(rec), flush=True)

    for rep in range(1, a.reps + 1):
        for wl in WORKLOADS:
            r = nnrun_run(binary, wl, rep, a.threads, a.validate_n)
            runs.append(r)
            emit(r)
            if not a.no_keras:
                r = keras_run(a.python, wl, rep, a.threads)
                runs.append(r)
                emit(r)
    meta["loadavg_end"] = loadavg()
    meta["total_seconds"] = time.perf_counter() - t_start
    kv = next((r.get("versions") for r in runs if r["tool"] == "keras-tf"), None)
    if kv:
        meta["keras_versions"] = kv
    summaries = [summarize(t, wl, runs) for wl in WORKLOADS for t in (["nnrun"] if a.no_keras else ["nnrun", "keras-tf"])]
    for s in summaries:
        emit(s)
    if a.save and not a.no_keras:
        slug = (m.get("model_name") or "cpu").lower()
        slug = "-".join("".join(c if c.isalnum() else " " for c in slug).split()) + f"-{m.get('cpus')}cpu"
        base = os.path.join(ROOT, "bench", "results", f"{meta['date']}-text-{slug}")
        stem, i = base, 2
        while os.path.exists(base + ".md") or os.path.exists(base + ".jsonl"):
            base, i = f"{stem}-{i}", i + 1
        cmds = [f"bench/text.sh --bin {a.bin} --reps {a.reps}", "# per round k, per workload:"]
        for wl, w in WORKLOADS.items():
            cmds += [f"{a.bin} train {w['spec']} --out TMP --log-format json --threads {a.threads} --seed k",
                     f"{a.bin} validate {w['spec']}    # x{a.validate_n}, median",
                     f"{a.bin} predict TMP/model.safetensors --input {CSV} --output TMP/predictions.csv",
                     f"KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2 {py_shown} bench/text_peers.py "
                     f"--workload {wl} --seed k --rep k --threads {a.threads}"]
        write_markdown(base + ".md", meta, summaries, cmds)
        with open(base + ".jsonl", "w") as f:
            for rec in [meta, *lines]:
                f.write(json.dumps(rec) + "\n")
        log(f"[text] wrote {os.path.relpath(base, ROOT)}.md and .jsonl")


if __name__ == "__main__":
    main()
