#!/usr/bin/env bash
# Trains the full workloads of specs/ (the training issue's list) and prints
# each one's test metric against its target, with the wall time.
# Usage: bench/workloads.sh [spec-name ...]   (default: all seven)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/nnrun
# name  metric  comparison  target
targets="mnist_mlp test_accuracy >= 0.92
mnist_cnn test_accuracy >= 0.95
sunspots_lstm test_mse <= 0.011
breast_cancer test_accuracy >= 0.96
iris_named test_accuracy >= 0.9
digits_dag test_digit_accuracy >= 0.9
ocr_crnn test_sequence_accuracy >= 0.85"
want=("$@")
status=0
while read -r name metric cmp target; do
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  out=$(mktemp -d)
  start=$(date +%s.%N)
  "$bin" train "specs/$name.yaml" --out "$out" --log-format json > "$out/log.jsonl"
  end=$(date +%s.%N)
  value=$(python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if '\"test\"' in l][-1][sys.argv[2]])" "$out/log.jsonl" "$metric")
  ok=$(python3 -c "import sys; v,t=float(sys.argv[1]),float(sys.argv[3]); print('ok' if (v>=t if sys.argv[2]=='>=' else v<=t) else 'MISSED')" "$value" "$cmp" "$target")
  [ "$ok" = ok ] || status=1
  printf '%-14s %-20s %.4f (target %s %s) %s  %.1fs\n' "$name" "$metric" "$value" "$cmp" "$target" "$ok" "$(echo "$end - $start" | bc)"
  rm -rf "$out"
done <<< "$targets"
exit $status
