#!/usr/bin/env python3
"""Medians of bench/interleaved.sh's lines: per workload and variant, each
tool's samples/s over the whole fit and after epoch 1, its test metric,
and nnrun against the best peer (a markdown table on stdout).

  bench/interleaved_table.py LINES.jsonl [--ceiling GFLOPS]

With --ceiling (the machine's sgemm ceiling, `bench/run.sh --roofline-only
--python PY`), a second table gives nnrun's GFLOP/s after epoch 1 (FLOPs
per sample from bench/flops.py) and its share of the ceiling."""
import json
import statistics
import sys


def main() -> int:
    ceiling = float(sys.argv[sys.argv.index("--ceiling") + 1]) if "--ceiling" in sys.argv else None
    rows = {}
    flops = {}
    for line in open(sys.argv[1]):
        d = json.loads(line)
        if d.get("kind") == "run":
            tool, sps, steady, metric = "nnrun", d.get("train_samples_per_s"), d.get("steady_samples_per_s"), d.get("metric_value")
        elif d.get("kind") == "bench":
            tool = d["peer_key"] + (" (autocast bf16)" if d.get("variant") == "mixed_bfloat16" else "")
            sps, steady = d.get("train_samples_per_s"), d.get("steady_samples_per_s")
            metric = next((v for k, v in d.items() if k.startswith("test_") and k != "test_cer"), None)
        else:
            continue
        if d.get("kind") == "run" and d.get("flops_per_sample"):
            flops[d["workload"]] = d["flops_per_sample"]
        if tool == "nnrun" and d.get("variant") == "mixed_bfloat16":
            tool = "nnrun (mixed_bfloat16)"
        r = rows.setdefault((d["workload"], d.get("variant", "float32")), {}).setdefault(tool, {"sps": [], "steady": [], "metric": []})
        for key, v in (("sps", sps), ("steady", steady), ("metric", metric)):
            if v is not None:
                r[key].append(float(v))
    med = lambda v: statistics.median(v) if v else None
    fmt = lambda v: "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.4g}")
    print("| workload | variant | tool | runs | samples/s | after epoch 1 | test metric | nnrun vs best peer (whole / after 1) |")
    print("|---|---|---|---|---|---|---|---|")
    for (wl, variant), tools in rows.items():
        n = tools.get("nnrun") or tools.get("nnrun (mixed_bfloat16)")
        peers = {t: v for t, v in tools.items() if not t.startswith("nnrun")}
        best = max((med(v["sps"]) or 0 for v in peers.values()), default=0)
        best_steady = max((med(v["steady"]) or med(v["sps"]) or 0 for v in peers.values()), default=0)
        for tool, v in tools.items():
            ratio = ""
            if tool.startswith("nnrun") and best:
                s = med(v["steady"]) or med(v["sps"])
                ratio = f"{med(v['sps']) / best:.2f}x / {s / best_steady:.2f}x"
            print(f"| {wl} | {variant} | {tool} | {len(v['sps'])} | {fmt(med(v['sps']))} | {fmt(med(v['steady']))} | {fmt(med(v['metric']))} | {ratio} |")
        del n
    if ceiling:
        print(f"\nsgemm ceiling {ceiling:.0f} GFLOP/s\n")
        print("| workload | variant | training MFLOP per sample | nnrun GFLOP/s after epoch 1 | share of ceiling |")
        print("|---|---|---|---|---|")
        for (wl, variant), tools in rows.items():
            v = tools.get("nnrun") or tools.get("nnrun (mixed_bfloat16)")
            if v is None or wl not in flops:
                continue
            s = med(v["steady"]) or med(v["sps"])
            g = s * flops[wl] / 1e9
            print(f"| {wl} | {variant} | {flops[wl] / 1e6:.3g} | {g:.1f} | {100 * g / ceiling:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
