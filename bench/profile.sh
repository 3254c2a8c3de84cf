#!/usr/bin/env bash
# Profiles the four bench workloads with `perf record -g` (release binary) and
# prints, per workload, the share of samples per group of symbols (gemm
# microkernel, candle elementwise maps, memset/memmove/alloc, thread
# spin/barrier, conv, kernel, nnrun code) and the top symbols.
# Usage: bench/profile.sh [--bin PATH] [--top N] [--epochs N | --epochs-x K] [--dwarf] [--limit N] [workload...]   (default: all four)
#   --epochs N    train N epochs (e.g. 1 for cnn)
#   --dwarf       unwind with DWARF (.eh_frame; the release build has no frame
#                 pointers) and also list the inclusive time of candle/nnrun
#                 functions: which op the anonymous rayon closures belong to
#   --limit N     train on the first N samples (keeps --dwarf data small)
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
callgraph=(-g)
dwarf=0
limit=()
wls=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --top) top="$2"; shift 2 ;;
    --epochs-x) ex="$2"; shift 2 ;;
    --epochs) fixed="$2"; shift 2 ;;
    --dwarf) dwarf=1; callgraph=(--call-graph dwarf,16384 -F 499); shift ;;
    --limit) limit=(--limit "$2"); shift 2 ;;
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
  cmd+=("${limit[@]}")
  perf record -q "${callgraph[@]}" -o "$dir/$wl.perf" -- "${cmd[@]}" > "$dir/$wl.log" 2>&1
  perf report -i "$dir/$wl.perf" --no-children --sort dso,symbol --stdio -g none --percent-limit 0 2>/dev/null > "$dir/$wl.txt"
  python3 bench/perf_groups.py "$wl" "$dir/$wl.txt" "$top"
  if [ "$dwarf" = 1 ]; then
    echo "Inclusive (children) share of candle and nnrun functions, all threads:"
    echo
    echo '| incl % | self % | function |'
    echo '|---|---|---|'
    perf report -i "$dir/$wl.perf" --children --sort symbol --stdio -g none --percent-limit 1 2>/dev/null \
      | grep -E 'candle_(core|nn)::|nnrun::' | grep -v 'utils::BarrierPool\|call_trampoline' | head -n "$top" \
      | sed -E 's/^ *([0-9.]+)% +([0-9.]+)% +\[.\] (.*[^ ]) +- +- *$/| \1 | \2 | `\3` |/'
    echo
  fi
done
rm -rf "$dir"
