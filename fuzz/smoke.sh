#!/usr/bin/env bash
# CI fuzz smoke run: every target for N seconds (default 20; tests/run-all.sh
# uses 5: the regressions and seeds are replayed in full either way, and
# long runs belong to fuzz/run.sh) on the stable toolchain without a
# sanitizer (a fresh machine may have no nightly; see ../shared notes:
# `cargo +stable fuzz run -s none` finds the same panics), each starting from
# its seed corpus plus the regression corpus. Installs cargo-fuzz if
# missing. Ends with "fuzz-smoke: N passed, N failed"; exits 1 on any crash,
# 2 on a setup failure. Long runs: fuzz/run.sh (nightly, ASan).
#
# Targets run FUZZ_JOBS at a time (default: the number of cores), each as
# its own libFuzzer process started directly from the binaries that
# `cargo fuzz build` made (what `cargo fuzz run` does, without one cargo
# start-up per target); results are printed in target order.
set -uo pipefail
cd "$(dirname "$0")"
SECS=${1:-20}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
# Under the workspace's target dir (kept by CI caches and `cargo clean`):
# the sanitizer-free stable build shares nothing with the test build (other
# RUSTFLAGS) but is reused by the next smoke run.
ROOT=$(cd .. && pwd)
TD=${CARGO_TARGET_DIR:-$ROOT/target}
[[ "$TD" = /* ]] || TD=$ROOT/$TD
TD=$TD/fuzz-smoke
TARGETS=(open_file superblock object_header messages btree_v1 btree_v2 fractal_heap arrays global_heap value_decode layout_entry sns_message ofs_key netcdf3)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz@0.13.2 >/dev/null 2>&1 || { echo "fuzz-smoke: cannot install cargo-fuzz" >&2; exit 2; }
fi
rm -rf smoke/artifacts smoke/logs && mkdir -p smoke/artifacts smoke/logs smoke/status
rm -f smoke/status/*
python3 seed_corpora.py >/dev/null 2>&1 || { echo "fuzz-smoke: seeding failed" >&2; exit 2; }
cargo +stable fuzz build -s none --target-dir "$TD" >smoke/logs/build.log 2>&1 || { tail -30 smoke/logs/build.log; exit 2; }
HOST=$(rustc +stable -vV | sed -n 's/^host: //p')
BIN=$TD/$HOST/release
for t in "${TARGETS[@]}"; do
  [ -x "$BIN/$t" ] || { echo "fuzz-smoke: $BIN/$t was not built" >&2; exit 2; }
done

# One target: fuzz, then record its result for the summary.
run_one() {
  local t=$1 dirs=("corpus/$1")
  mkdir -p "smoke/artifacts/$t"
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  if "$BIN/$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="smoke/artifacts/$t/" "${dirs[@]}" >"smoke/logs/$t.log" 2>&1; then
    echo ok >"smoke/status/$t"
  else
    echo FAIL >"smoke/status/$t"
  fi
}

running=0
for t in "${TARGETS[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
  run_one "$t" &
  running=$((running + 1))
done
wait

passed=0 failed=0
for t in "${TARGETS[@]}"; do
  if [ "$(cat "smoke/status/$t" 2>/dev/null)" = ok ]; then
    passed=$((passed + 1)); echo "ok    $t ($(grep -oE '^#[0-9]+' "smoke/logs/$t.log" | tail -1 | tr -d '#') execs)"
  else
    failed=$((failed + 1)); echo "FAIL  $t: see fuzz/smoke/logs/$t.log"; tail -20 "smoke/logs/$t.log"
  fi
done
echo "fuzz-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
