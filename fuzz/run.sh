#!/usr/bin/env bash
# Build every fuzz target with nightly (cargo-fuzz, ASan) and run each for N
# seconds (default 60), sequentially, one fuzzer process at a time.
#
#   fuzz/run.sh [seconds-per-target] [target...]
#   KEEP_GOING=1 fuzz/run.sh 60      # don't stop a target at its first crash
#
# Prints execs, exec/s and new crash artifacts per target; exits 1 if any
# target crashed (artifacts in fuzz/artifacts/<target>/, logs in fuzz/logs/),
# 2 if the build failed. Each target also replays fuzz/regressions/<target>/.
# KEEP_GOING uses libFuzzer's fork mode with one worker (-fork=1
# -ignore_crashes=1 ...), still one fuzzing process at a time.
# Needs: rustup nightly toolchain, `cargo install --locked cargo-fuzz`.
# Seeds: ./seed_corpora.sh (run automatically if corpus/ is missing).
set -uo pipefail
cd "$(dirname "$0")"
SECS="${1:-60}"
shift || true
ALL=(open_file superblock object_header messages btree_v1 btree_v2 fractal_heap arrays global_heap value_decode layout_entry sns_message ofs_key netcdf3)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

[ -d corpus ] || ./seed_corpora.sh
mkdir -p logs
echo "building ${#TARGETS[@]} targets (nightly, ASan)..."
cargo +nightly fuzz build >logs/build.log 2>&1 || { tail -40 logs/build.log; exit 2; }

mode=()
[ "${KEEP_GOING:-0}" = 1 ] && mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)

failed=0
total_secs=0
total_execs=0
printf '%-14s %12s %9s %6s  %s\n' target execs exec/s secs result
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  extra=()
  [ -d "regressions/$t" ] && extra+=("regressions/$t")
  before=$(ls "artifacts/$t" | grep -E '^(crash|oom|timeout|leak)-' | sort)
  start=$(date +%s)
  cargo +nightly fuzz run "$t" "corpus/$t" "${extra[@]}" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${mode[@]}" \
    >"logs/$t.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  total_secs=$(( total_secs + secs ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$')
  [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "logs/$t.log" | tail -1 | tr -d '#')
  execs=${execs:-0}
  total_execs=$(( total_execs + execs ))
  rate=$(( execs / (secs > 0 ? secs : 1) ))
  new=$(comm -13 <(echo "$before") <(ls "artifacts/$t" | grep -E '^(crash|oom|timeout|leak)-' | sort) | grep -c .)
  if [ "$rc" -eq 0 ] && [ "$new" -eq 0 ]; then
    result=ok
  else
    failed=1
    why=$(grep -m1 -oE 'panicked at [^ ]*|ERROR: libFuzzer: [a-z-]+|ERROR: AddressSanitizer: [a-z-]+' "logs/$t.log")
    result="CRASH x$new (${why:-exit $rc}) see logs/$t.log, artifacts/$t/"
  fi
  printf '%-14s %12s %9s %6s  %s\n' "$t" "$execs" "$rate" "$secs" "$result"
done
echo "total: ${total_execs} execs in ${total_secs}s of fuzzing (one process at a time)"
exit $failed
