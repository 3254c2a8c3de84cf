#!/usr/bin/env bash
# Text pipeline benchmark: nnrun against Keras (TensorFlow backend) on
# specs/debian_text.yaml (multi_hot -> MLP) and specs/debian_text_cnn.yaml
# (int sequences -> Embedding -> Conv1D), interleaved rounds, one JSON line
# per run, then the medians; writes bench/results/<date>-text-<cpu>.md/.jsonl.
# See bench/README.md ("bench/text.sh").
#
# Usage: bench/text.sh [--bin PATH] [--reps N] [--python PY] [--threads N] [--no-save]
#   --bin PATH   the nnrun binary (default target/release/nnrun; nothing is built)
#   --reps N     rounds (default 3)
#   --python PY  python of a keras 3 + tensorflow venv
#                (default $TFVENV_PYTHON or ~/.cache/nnrun-peers/tfvenv/bin/python)
#   --no-save    print the JSON lines only
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/nnrun
save=(--save)
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --bin=*) bin="${1#--bin=}"; shift ;;
    --no-save) save=(); shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -x "$bin" ] || { echo "text.sh: $bin is not an executable (cargo build --release first)" >&2; exit 2; }
exec python3 bench/text_bench.py --bin "$bin" "${save[@]}" "${args[@]}"
