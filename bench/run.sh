#!/usr/bin/env bash
# nnrun's benchmark harness: trains the peer workloads (mlp, cnn, lstm,
# tabular, ctc) with the peers' hyperparameters and prints one JSON line per run,
# one median line per workload (with the Keras/PyTorch figures and ratios,
# FLOPs per sample, GFLOP/s and their share of the sgemm ceiling measured
# first), and one line timing `nnrun validate` and `nnrun --help`. See bench/README.md.
#
# Usage: bench/run.sh [--reps N] [--smoke] [--bin PATH] [--threads N] [--save]
#                     [--python PY] [--roofline-bin PATH] [workload...]
#   --reps N     runs per workload, interleaved (default 3)
#   --smoke      1 epoch on a few samples, 1 rep, no ceiling: checks the pipeline and keys
#   --bin PATH   use this nnrun binary instead of building one
#   --save       write bench/results/<date>-<machine>.jsonl and .md
#   --python PY  also measure numpy's and torch's sgemm ceiling (shared/peers/roofline.py)
#   --roofline-bin PATH  examples/roofline to time (default: beside the binary; skipped if absent)
# Without --bin it builds `cargo build --release` and examples/roofline (or a
# debug build of nnrun alone with --smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
smoke=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; args+=("$1" "$2"); shift 2 ;;
    --bin=*) bin="${1#--bin=}"; args+=("$1"); shift ;;
    --smoke) smoke=1; args+=("$1"); shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -z "$bin" ]; then
  if [ "$smoke" = 1 ]; then
    cargo build --quiet >&2
    bin=target/debug/nnrun
  else
    # the ceiling step times examples/roofline (bench.py finds it beside the binary)
    cargo build --release --quiet --bins --example roofline >&2
    bin=target/release/nnrun
  fi
  args+=(--bin "$bin")
fi
[ -x "$bin" ] || { echo "bench: $bin is not an executable" >&2; exit 2; }
exec python3 bench/bench.py "${args[@]}"
