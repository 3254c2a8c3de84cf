#!/usr/bin/env bash
# nnrun's benchmark harness: trains the peer workloads (mlp, cnn, lstm,
# tabular, ctc) with the peers' hyperparameters and prints one JSON line per run,
# one median line per workload (with the Keras/PyTorch figures and ratios),
# and one line timing `nnrun validate` and `nnrun --help`. See bench/README.md.
#
# Usage: bench/run.sh [--reps N] [--smoke] [--bin PATH] [--threads N] [--save] [workload...]
#   --reps N     runs per workload, interleaved (default 3)
#   --smoke      1 epoch on a few samples, 1 rep: checks the pipeline and keys
#   --bin PATH   use this nnrun binary instead of building one
#   --save       write bench/results/<date>-<machine>.jsonl and .md
# Without --bin it builds `cargo build --release` (or a debug build with --smoke).
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
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -z "$bin" ]; then
  if [ "$smoke" = 1 ]; then
    cargo build --quiet >&2
    bin=target/debug/nnrun
  else
    cargo build --release --quiet >&2
    bin=target/release/nnrun
  fi
  args+=(--bin "$bin")
fi
[ -x "$bin" ] || { echo "bench: $bin is not an executable" >&2; exit 2; }
exec python3 bench/bench.py "${args[@]}"
