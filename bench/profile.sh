#!/usr/bin/env bash
# Profiles the four bench workloads with `perf record -g` (release binary) and
# prints, per workload, the share of samples per group of symbols (gemm
# microkernel, candle elementwise maps, memset/memmove/alloc, thread
# spin/barrier, conv, kernel, nnrun code) and the top symbols.
# Usage: bench/profile.sh [--bin PATH] [--top N] [--epochs N | --epochs-x K] [workload...]   (default: all four)
#   --epochs N    train N epochs (e.g. 1 for cnn)
#   --epochs-x K  train K times the peers' epochs, so that the fit outweighs
#                 process start, data loading and the test evaluation (lstm
#                 and tabular train for well under a second)
# Needs perf (perf_event_paranoid <= 2 is enough for user + kernel samples of
# its own process). Same hyperparameters and --threads 2 as bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
top=25
ex=1
fixed=""
wls=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --top) top="$2"; shift 2 ;;
    --epochs-x) ex="$2"; shift 2 ;;
    --epochs) fixed="$2"; shift 2 ;;
    *) wls+=("$1"); shift ;;
  esac
done
if [ -z "$bin" ]; then cargo build --release --quiet >&2; bin=target/release/nnrun; fi
[ ${#wls[@]} -gt 0 ] || wls=(mlp cnn lstm tabular)
dir=$(mktemp -d)
for wl in "${wls[@]}"; do
  # the same command line bench/run.sh uses (rep 1)
  [ -n "$fixed" ] && epochs=$fixed || epochs=$(( $(python3 -B -c "import sys; sys.path.insert(0, 'bench'); import bench; print(bench.WORKLOADS['$wl']['epochs'])") * ex ))
  mapfile -t cmd < <(python3 bench/bench.py --print-cmd "$wl" --bin "$bin" --out-dir "$dir/$wl" --epochs "$epochs")
  echo "### $wl: ${cmd[*]:1}" >&2
  perf record -q -g -o "$dir/$wl.perf" -- "${cmd[@]}" > "$dir/$wl.log" 2>&1
  perf report -i "$dir/$wl.perf" --no-children --sort dso,symbol --stdio -g none --percent-limit 0 2>/dev/null > "$dir/$wl.txt"
  python3 bench/perf_groups.py "$wl" "$dir/$wl.txt" "$top"
done
rm -rf "$dir"
