#!/usr/bin/env bash
# Runs the cargo-fuzz targets for MINUTES each, two at a time (one per core
# of a 2-core machine), then prints each target's executions, coverage and
# findings. Needs a nightly toolchain and cargo-fuzz (see README.md).
#
#   fuzz/run_all.sh [MINUTES] [TARGET...]     default: 15 minutes, every target
#   JOBS=1 fuzz/run_all.sh 3 spec             one at a time (JOBS, default 2)
#
# Fork mode: a crash, OOM or timeout is saved and fuzzing goes on, so one
# run lists every kind of finding rather than stopping at the first.
# New inputs go to fuzz/artifacts/<target>/corpus/ (ignored by git), crashes,
# OOMs and timeouts to fuzz/artifacts/<target>/, the log to
# fuzz/artifacts/<target>/fuzz.log. Exit status 1 when anything was found.
# SUMMARY_ONLY=1 prints the table of the last run without fuzzing.
set -euo pipefail
cd "$(dirname "$0")"
minutes=${1:-15}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(spec run model_file checkpoint idx csv)
fi
case $minutes in '' | *[!0-9]*) echo "MINUTES must be a whole number, got '$minutes'" >&2; exit 2 ;; esac

run_one() {
  local t=$1 dir=artifacts/$1
  mkdir -p "$dir/corpus"
  # -close_fd_mask=1: predict/evaluate/inspect print to stdout; -detect_leaks=0:
  # a process-lifetime pool and caches are not leaks worth a stop.
  cargo +nightly fuzz run "$t" "$dir/corpus" "corpus/$t" "corpus-cov/$t" -- \
    -max_total_time=$((minutes * 60)) -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -close_fd_mask=1 -detect_leaks=0 -artifact_prefix="$dir/" \
    >"$dir/fuzz.log" 2>&1 || true
}

jobs=${JOBS:-2}
if [ -z "${SUMMARY_ONLY:-}" ]; then
  # Debug assertions and overflow checks stay on (cargo fuzz's default): an
  # overflow in shape arithmetic is a finding.
  cargo +nightly fuzz build

  for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    echo "$(date +%T) fuzzing $t for $minutes min"
    run_one "$t" &
  done
  wait
fi

found=0
printf '\n%-11s %12s %8s %8s  %s\n' target executions cov ft findings
for t in "${targets[@]}"; do
  log=artifacts/$t/fuzz.log
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  kinds=""
  for k in crash oom timeout slow-unit leak; do
    n=$(find "artifacts/$t" -maxdepth 1 -type f -name "$k-*" | wc -l)
    [ "$n" -gt 0 ] && kinds="$kinds $n $k" && found=1
  done
  printf '%-11s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${kinds:- none}"
done
exit $found
