#!/usr/bin/env bash
# Times `nnrun validate` (release build, whole process) on a 30-layer spec.
# Prints the median and the fastest of N runs in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100}
cargo build --release --quiet
bin=target/release/nnrun
spec=${1:-bench/validate_30_layers.yaml}
"$bin" validate "$spec" >/dev/null
for _ in $(seq "$N"); do
  s=$(date +%s%N); "$bin" validate "$spec" >/dev/null; e=$(date +%s%N)
  echo $(( (e - s) / 1000 ))
done | sort -n | awk -v n="$N" '{ a[NR] = $1 } END {
  printf "validate %s: median %.2f ms, min %.2f ms over %d runs\n", "'"$spec"'", a[int((n + 1) / 2)] / 1000, a[1] / 1000, n }'
