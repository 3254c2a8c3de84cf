#!/usr/bin/env bash
# Measures the Keras (jax backend) and PyTorch peers on THIS machine, with the
# scripts in ../shared/peers, so nnrun's figures can be compared side by side
# rather than against another CPU's. Writes JSON lines in the format of
# shared/peers/results.jsonl, for `bench/run.sh --peers FILE`.
#
# Usage: bench/peers_here.sh PYTHON OUT.jsonl [--reps N] [peer...]
#   PYTHON: a venv with numpy 2.4.6, torch 2.15.0, jax/jaxlib 0.10.2 and
#   keras 3.15.1 (shared/peers/requirements-venv.txt; shared/peers/setup.sh
#   builds one). Peers: torch, keras-jax (default both). WORKLOADS="cnn ctc"
#   limits the workloads (default: mlp cnn lstm tabular ctc).
set -euo pipefail
cd "$(dirname "$0")/.."
py=$1 out=$2; shift 2
reps=3
if [ "${1:-}" = --reps ]; then reps=$2; shift 2; fi
peers=("$@"); [ ${#peers[@]} -gt 0 ] || peers=(torch keras-jax)
peers_dir=../shared/peers
: > "$out"
for rep in $(seq 1 "$reps"); do
  for wl in ${WORKLOADS:-mlp cnn lstm tabular ctc}; do
    for peer in "${peers[@]}"; do
      case $peer in
        torch) line=$("$py" "$peers_dir/bench_torch.py" "$wl" --seed $((1233 + rep)) 2>/dev/null | tail -1) ;;
        keras-jax) line=$(KERAS_BACKEND=jax "$py" "$peers_dir/bench_keras.py" "$wl" --seed $((1233 + rep)) 2>/dev/null | tail -1) ;;
        *) echo "unknown peer $peer" >&2; exit 2 ;;
      esac
      python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(kind="bench", peer_key=sys.argv[2], rep=int(sys.argv[3])); print(json.dumps(d))' "$line" "$peer" "$rep" >> "$out"
      echo "$peer $wl rep $rep done" >&2
    done
  done
done
