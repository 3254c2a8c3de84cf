#!/usr/bin/env bash
# nnrun beside the peers on THIS machine, interleaved: for each round, each
# workload runs nnrun (bench/bench.py, one rep), then PyTorch and Keras on jax
# (bench/peers_here.sh, one rep), back to back, so the machine's drift hits
# every tool alike. With --bf16, each round also runs nnrun with
# `training.mixed_precision=mixed_bfloat16` and PyTorch under bf16 autocast
# (bench/torch_autocast.py) on mlp and cnn. Then prints the medians.
#
# Usage: bench/interleaved.sh PYTHON OUT.jsonl [--rounds N] [--bf16] [--bin PATH] [workload...]
#   OUT.jsonl is truncated first: give each run its own file.
#   PYTHON: the peers' venv (shared/peers/setup.sh); default workloads: mlp cnn lstm tabular
#   (ctc takes ~5 minutes a round: name it to include it).
set -euo pipefail
cd "$(dirname "$0")/.."
py=$1 out=$2; shift 2
rounds=3 bf16=0 bin=target/release/nnrun wls=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --bf16) bf16=1; shift ;;
    --bin) bin=$2; shift 2 ;;
    *) wls+=("$1"); shift ;;
  esac
done
[ ${#wls[@]} -gt 0 ] || wls=(mlp cnn lstm tabular)
[ -x "$bin" ] || { echo "interleaved: $bin is not an executable (cargo build --release)" >&2; exit 2; }
: > "$out"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for round in $(seq 1 "$rounds"); do
  for wl in "${wls[@]}"; do
    python3 bench/bench.py --bin "$bin" --reps 1 --no-startup --no-roofline "$wl" 2>/dev/null \
      | python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l)
    if d.get("kind") in ("meta","run"): d.update(round=int(sys.argv[1]), variant="float32"); print(json.dumps(d))' "$round" >> "$out"
    WORKLOADS=$wl bench/peers_here.sh "$py" "$tmp" --reps 1 2>/dev/null
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l); d.update(round=int(sys.argv[2]), variant="float32"); print(json.dumps(d))' "$tmp" "$round" >> "$out"
    if [ "$bf16" = 1 ] && { [ "$wl" = mlp ] || [ "$wl" = cnn ]; }; then
      python3 bench/bench.py --bin "$bin" --reps 1 --no-startup --no-roofline --set training.mixed_precision=mixed_bfloat16 "$wl" 2>/dev/null \
        | python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l)
    if d.get("kind")=="run": d.update(round=int(sys.argv[1]), variant="mixed_bfloat16"); print(json.dumps(d))' "$round" >> "$out"
      "$py" bench/torch_autocast.py "$wl" 2>/dev/null | tail -1 | python3 -c 'import json,sys
d=json.loads(sys.stdin.read()); d.update(kind="bench", peer_key="torch", round=int(sys.argv[1]), variant="mixed_bfloat16"); print(json.dumps(d))' "$round" >> "$out"
    fi
    echo "round $round: $wl done" >&2
  done
done
python3 bench/interleaved_table.py "$out"
