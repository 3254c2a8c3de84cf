#!/usr/bin/env python3
"""FLOPs per sample of a spec's model, forward and training (python3 standard
library only), from `nnrun validate SPEC --format json` (each layer's
`output_shape` and `weights`).

  bench/flops.py SPEC... [--bin PATH] [--table] [--validate-json FILE]

Prints one JSON line per spec (`kind: "flops"`): per layer `forward_flops`,
`backward_flops`, `train_flops`, `input_grad` (whether the gradient with
respect to the layer's input is computed), and the totals
`forward_flops_per_sample`, `backward_flops_per_sample`,
`train_flops_per_sample`. `--table` prints a table instead.

Convention (the matmul work; everything is per sample, batch axis left out):

- A multiply-add is 2 FLOPs.
- Dense: 2 * in * units per position; positions = the product of the output
  shape without its last axis (1 for a vector, T for a Dense on (T, F)).
- Conv1D / Conv2D: 2 * prod(kernel shape) * output positions (the output
  shape without its channel axis). The kernel shape is (k..., in / groups,
  filters), so groups and strides are counted; `padding: same` counts the
  taps over the zero border too (the im2col product computes them).
- SimpleRNN / LSTM / GRU: 2 * T * (in + units) * gates * units, T = the
  input's sequence length (the producing layer's output shape, or the
  model input's), gates 1 / 4 / 3: the input projection
  2 * T * prod(kernel) plus the recurrence 2 * T * prod(recurrent_kernel).
  GRU's reset_after changes where r multiplies, not the products' sizes
  (true: h @ U (units x 3 units), then r * the candidate's part; false:
  h @ U_zr (units x 2 units) and (r * h) @ U_h (units x units)): the same
  count. All T steps are counted, although nnrun's LSTM kernel skips the
  product with h_0 = 0 (forward, and the step-1 input gradient): this is
  the model's work, the same for every tool.
- Bidirectional: both directions (the sum over its forward_layer.* and
  backward_layer.* weights).
- Zero: Embedding (a gather; its backward a scatter-add), pooling,
  activations, Dropout, normalization, merges, reshapes, the loss and the
  optimizer update. Their work is element-wise, a few FLOPs per value, and
  memory-bound; the point here is the matmul work. A layer type with weights
  that this script does not know is counted as 0 and listed in `uncounted`.
- Training = forward + backward. Backward, per layer with weights: the
  weight gradient (as many FLOPs as the forward product) plus the input
  gradient (as many again), and for a recurrent layer the gradient through
  time, dh = dz @ U^T (as many as the recurrence's forward). So backward = 2x
  forward, except where the layer's input needs no gradient: nnrun's Dense
  and Conv kernels skip it for a tensor that is neither a variable nor
  computed from one (src/kernels/dense.rs `input_grad: x.track_op()`,
  src/kernels/conv.rs `need_dx: x.track_op()`; the recurrent layers' input
  projection is that Dense kernel). That is a layer reading the data, directly
  or through layers without weights (Flatten, Reshape, Dropout, pooling:
  candle records no op for those on a data leaf): its backward is the weight
  gradient only (1x forward; for an RNN, 1x forward minus the input
  projection's input gradient). Every weight is a candle Var, frozen ones too,
  so any layer with weights (Embedding, BatchNormalization included) makes
  the layers after it compute their input gradient; frozen layers are counted
  like trainable ones (nnrun still computes their gradients).

Checked by hand:

mnist_mlp (784 -> Dense 512 relu -> Dense 10 softmax):
  dense    forward 2 * 784 * 512 = 802,816; backward: weight gradient only
           (reads the data) = 802,816; train 1,605,632
  dense_1  forward 2 * 512 * 10 = 10,240; backward 2 * 10,240 = 20,480;
           train 30,720
  total    forward 813,056; backward 823,296; train 1,636,352 (1.64 MFLOP)

mnist_cnn (28x28x1 -> Conv2D 32 3x3 -> pool -> Conv2D 64 3x3 -> pool ->
Flatten -> Dense 10):
  conv2d    forward 2 * (3*3*1*32 = 288) * 26*26 = 389,376; backward: weight
            gradient only (reads the data) = 389,376; train 778,752
  conv2d_1  forward 2 * (3*3*32*64 = 18,432) * 11*11 = 4,460,544;
            backward 8,921,088; train 13,381,632
  dense     forward 2 * 1,600 * 10 = 32,000; backward 64,000; train 96,000
  total     forward 4,881,920; backward 9,374,464; train 14,256,384
            (14.26 MFLOP)
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECURRENT = {"SimpleRNN", "LSTM", "GRU", "Bidirectional"}
# Weighted layers whose work is element-wise or a gather: counted as 0.
ZERO_WORK = {"Embedding": "gather (backward: scatter-add), element-wise: not counted",
             "BatchNormalization": "element-wise: not counted",
             "LayerNormalization": "element-wise: not counted"}


def validate_json(binary, spec):
    """The first JSON line of `nnrun validate SPEC --format json` (exit 1, an
    invalid spec, still lists the layers it could build)."""
    r = subprocess.run([binary, "validate", spec, "--format", "json"], cwd=ROOT, capture_output=True, text=True)
    line = next((l for l in r.stdout.splitlines() if l.startswith("{")), None)
    if line is None:
        raise SystemExit(f"flops: nnrun validate {spec} printed no JSON (exit {r.returncode}): {r.stderr.strip()}")
    report = json.loads(line)
    if not report.get("valid"):
        first = (report.get("errors") or [{}])[0]
        where = f"{spec}:{first['line']}:{first.get('column')}" if first.get("line") else spec
        msg = f"{where}: {first.get('message')}"
        if not report.get("layers"):
            raise SystemExit(f"flops: invalid spec, no layers to count: {msg}")
        print(f"flops: warning: invalid spec, counting the layers whose shapes are known: {msg}", file=sys.stderr)
    return report


def prod(xs):
    return math.prod(xs) if xs else 1


def needs_grad_of(report):
    """name -> whether that tensor carries a gradient: a model input does not;
    a layer's output does when it has weights (each a candle Var) or any of
    its inputs does."""
    inputs = {i["name"] for i in report.get("inputs", [])}
    layers = {l["name"]: l for l in report.get("layers", [])}
    memo = {name: False for name in inputs}

    def resolve(name):
        # Iterative depth-first: a 100,000-layer chain must not recurse. An
        # edge back into the path (a cycle, in an invalid spec) counts as none.
        stack, on_path = [name], set()
        while stack:
            n = stack[-1]
            if n in memo:
                stack.pop()
                on_path.discard(n)
                continue
            on_path.add(n)
            l = layers.get(n)
            if l is None:
                memo[n] = False
                stack.pop()
                continue
            if l.get("weights"):
                memo[n] = True
                stack.pop()
                continue
            todo = [s for s in l.get("inputs", []) if s not in memo and s not in on_path]
            if todo:
                stack.extend(todo)
                continue
            memo[n] = any(memo.get(s, False) for s in l.get("inputs", []))
            stack.pop()
            on_path.discard(n)
        return memo[name]

    return resolve


def count(report):
    """Per-layer and total FLOPs per sample (the module docstring's convention)."""
    shapes = {i["name"]: i["shape"] for i in report.get("inputs", [])}
    for l in report.get("layers", []):
        shapes[l["name"]] = l.get("output_shape")
    needs_grad = needs_grad_of(report)
    rows, uncounted = [], []
    for l in report.get("layers", []):
        weights = {w["name"]: w["shape"] for w in l.get("weights", [])}
        srcs = l.get("inputs", [])
        in_shape = shapes.get(srcs[0]) if srcs else None
        out_shape = l.get("output_shape")
        input_grad = any(needs_grad(s) for s in srcs)
        fwd = bwd = 0
        note = None
        t = l["type"]
        if out_shape is None:
            note = "shape unknown (invalid spec): not counted"
            uncounted.append(l["name"])
        elif not weights:
            pass
        elif t in ZERO_WORK:
            note = ZERO_WORK[t]
        elif t in RECURRENT or any(k.endswith("recurrent_kernel") for k in weights):
            if not in_shape or len(in_shape) < 2:
                note = "input shape unknown: not counted"
                uncounted.append(l["name"])
            else:
                steps = in_shape[0]
                prefixes = [k[: -len("recurrent_kernel")] for k in weights if k.endswith("recurrent_kernel")]
                for p in prefixes:
                    proj = 2 * steps * prod(weights.get(p + "kernel", []))
                    rec = 2 * steps * prod(weights[p + "recurrent_kernel"])
                    fwd += proj + rec
                    # the weight gradients (kernel, recurrent kernel), dh through
                    # time, and the input projection's input gradient when wanted
                    bwd += proj + rec + rec + (proj if input_grad else 0)
                note = f"T={steps}" + (", both directions" if len(prefixes) == 2 else "")
        elif (t == "Dense" or t.startswith("Conv")) and "kernel" in weights:
            # Dense: per position; Conv: per output position. Both: the output
            # shape without its last (units / channels) axis.
            positions = prod(out_shape[:-1])
            fwd = 2 * prod(weights["kernel"]) * positions
            bwd = fwd + (fwd if input_grad else 0)
            if positions > 1:
                note = f"{positions:,} positions"
        else:
            note = "weighted layer type or shape not known here: not counted"
            uncounted.append(l["name"])
        row = {"name": l["name"], "type": t, "forward_flops": fwd, "backward_flops": bwd, "train_flops": fwd + bwd,
               "input_grad": input_grad if weights else None}
        if note:
            row["note"] = note
        rows.append(row)
    fwd = sum(r["forward_flops"] for r in rows)
    bwd = sum(r["backward_flops"] for r in rows)
    return {"kind": "flops", "spec": report.get("file"), "model": report.get("name"), "valid": report.get("valid"),
            "convention": "bench/flops.py: multiply-add = 2 FLOPs, matmul work only; backward = weight + input "
                          "gradients, no input gradient for a layer reading the data",
            "forward_flops_per_sample": fwd, "backward_flops_per_sample": bwd, "train_flops_per_sample": fwd + bwd,
            "uncounted": uncounted, "layers": rows}


def table(res):
    head = ("layer", "type", "forward", "backward", "train", "input grad", "note")
    rows = [(r["name"], r["type"], f"{r['forward_flops']:,}", f"{r['backward_flops']:,}", f"{r['train_flops']:,}",
             "-" if r["input_grad"] is None else ("yes" if r["input_grad"] else "no (data)"), r.get("note", ""))
            for r in res["layers"]]
    rows.append(("total", "", f"{res['forward_flops_per_sample']:,}", f"{res['backward_flops_per_sample']:,}",
                 f"{res['train_flops_per_sample']:,}", "", ""))
    width = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    right = {2, 3, 4}
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, width))).rstrip()
    out = [f"{res['model']} ({res['spec']}): FLOPs per sample", fmt(head), fmt(tuple("-" * w for w in width))]
    out += [fmt(r) for r in rows]
    if res["uncounted"]:
        out.append(f"not counted: {', '.join(res['uncounted'])}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="*", help="spec files (relative to the repository root or absolute)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "nnrun"),
                    help="the nnrun binary (default: %(default)s)")
    ap.add_argument("--validate-json", help="read this file of validate JSON lines instead of running nnrun")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="accepted for the bench's command lines; `nnrun validate` takes no overrides, so a "
                         "`model.*` one is refused and the others (optimizer, data, metrics) are ignored")
    ap.add_argument("--table", action="store_true", help="a table per spec instead of JSON")
    a = ap.parse_args()
    if any(s.startswith("model.") for s in a.set):
        ap.error("`nnrun validate` takes no --set, so a model.* override cannot be counted; edit the spec instead")
    if a.set:
        print("flops: nnrun validate takes no --set: counting the spec as written", file=sys.stderr)
    if a.validate_json:
        with open(a.validate_json) as f:
            reports = [json.loads(l) for l in f if l.startswith("{")]
    else:
        if not a.specs:
            ap.error("give SPEC... or --validate-json FILE")
        binary = os.path.abspath(a.bin)
        if not os.access(binary, os.X_OK):
            ap.error(f"--bin {a.bin} is not an executable (cargo build --release, or --bin target/debug/nnrun)")
        # Paths as given from here; validate runs from the repository root.
        reports = [validate_json(binary, os.path.relpath(os.path.abspath(s), ROOT)) for s in a.specs]
    for i, rep in enumerate(reports):
        res = count(rep)
        if a.table:
            print(("\n" if i else "") + table(res))
        else:
            print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
