#!/usr/bin/env python3
"""Groups a `perf report --no-children --sort dso,symbol --stdio -g none` listing.
Usage: perf_groups.py WORKLOAD REPORT.txt [TOP]  -> markdown on stdout."""
import re
import sys

# first match wins; order matters (conv before candle generic, etc.)
GROUPS = [
    ("gemm microkernel", r"gemm_f32::|gemm_common::|nano_gemm|gemm::|gemm_f64::|sgemm|matrixmultiply"),
    # candle's CPU pool: workers spin on a barrier between ops; the worker loop
    # is inlined into the thread's entry (__rust_begin_short_backtrace)
    ("thread spin / barrier (candle BarrierPool, rayon)", r"BarrierGuard|BarrierPool|call_trampoline|__rust_begin_short_backtrace|rayon|crossbeam|sched_yield|futex|spin_loop|parking_lot|__lll_lock|pthread_cond"),
    # candle's conv2d (tiled im2col) and conv_transpose2d (vec_dot loops) run as
    # anonymous rayon closures; a dwarf call graph (bench/profile.sh --dwarf)
    # shows them under conv2d_single_group / conv_transpose2d
    ("conv kernels (candle conv2d tiled im2col, conv_transpose2d vec_dot; rayon closures)", r"vec_dot|FnMut<A> for &F>::call_mut|[Ii]m2[Cc]ol|[Cc]onv[Tt]ranspose|conv_transpose|Conv[12][Dd]|conv[12]d|copy2d"),
    ("memset / memmove / alloc", r"mem(set|move|cpy)|malloc|calloc|realloc|_int_free|cfree|\bfree\b|__libc_free|alloc::|__rust_(alloc|dealloc|realloc)|unlink_chunk|sysmalloc|_mid_memalign"),
    ("candle elementwise / reduce / index maps", r"candle_core::|candle_nn::|half::"),
    ("nnrun code", r"nnrun::|^nnrun"),
    ("kernel (page faults, syscalls, scheduler)", r"^\[k\]"),
    ("libm / libc other", r"libm|libc|exp|tanh|log"),
]


def main():
    wl, path = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    rows = []
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$", line)
        if m:
            pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
            rows.append((pct, dso, kind, sym))
    totals = {}
    others = []
    for pct, dso, kind, sym in rows:
        key = ("[k] " if kind == "k" else "") + sym
        group = "other"
        for name, rx in GROUPS:
            if re.search(rx, key):
                group = name
                break
        totals[group] = totals.get(group, 0.0) + pct
        if group == "other":
            others.append((pct, dso, sym))
    print(f"### {wl}\n")
    print(f"{len(rows)} symbols; share of all samples (user + kernel, all threads):\n")
    print("| group | % |\n|---|---|")
    for g, p in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {g} | {p:.1f} |")
    if others:
        print("\nLargest in `other`: " + "; ".join(f"`{sym[:80]}` ({dso}) {pct:.1f}" for pct, dso, sym in others[:5]))
    print(f"\nTop {top} symbols:\n")
    print("| % | dso | symbol |\n|---|---|---|")
    for pct, dso, kind, sym in rows[:top]:
        s = sym if len(sym) < 140 else sym[:137] + "..."
        print(f"| {pct:.2f} | {dso} | `{s.replace('|', '/')}` |")
    print()


if __name__ == "__main__":
    main()
