#!/usr/bin/env python3
"""Builds tabular/digits_dag.csv from tabular/digits.csv for two-input,
two-output (DAG) models: the 8x8 pixels p0..p63, four ink features and the
digit plus its parity as targets.

ink_top/ink_bottom: sum of the pixels in the top/bottom 4 rows, / 512;
ink_left/ink_right: sum of the pixels in the left/right 4 columns, / 512;
odd: target % 2. Run from anywhere: python3 data/make_digits_dag.py
"""
import csv
import os

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "tabular", "digits.csv")
dst = os.path.join(here, "tabular", "digits_dag.csv")


def num(x):
    # Shortest round-trip decimal, integers without ".0" (the data/ convention).
    return str(int(x)) if float(x).is_integer() else repr(float(x))


with open(src, newline="") as f:
    rows = list(csv.DictReader(f))

pixels = [f"p{i}" for i in range(64)]
header = pixels + ["ink_top", "ink_bottom", "ink_left", "ink_right", "target", "odd"]
with open(dst, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        p = [int(r[c]) for c in pixels]
        at = lambda row, col: p[8 * row + col]
        top = sum(at(i, j) for i in range(4) for j in range(8))
        bottom = sum(at(i, j) for i in range(4, 8) for j in range(8))
        left = sum(at(i, j) for i in range(8) for j in range(4))
        right = sum(at(i, j) for i in range(8) for j in range(4, 8))
        t = int(r["target"])
        w.writerow(p + [num(top / 512), num(bottom / 512), num(left / 512), num(right / 512), t, t % 2])
print(f"wrote {dst}: {len(rows)} rows")
