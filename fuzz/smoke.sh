#!/usr/bin/env bash
# CI fuzz smoke run: every target for N seconds (default 20; tests/run-all.sh
# uses 5: the regressions and seeds are replayed in full either way, and
# long runs belong to fuzz/run.sh) on the stable
# toolchain without a sanitizer (a fresh machine may have no nightly; see
# ../shared notes: `cargo +stable fuzz run -s none` finds the same panics),
# each starting from its seed corpus plus the regression corpus. Installs
# cargo-fuzz if missing. Ends with "fuzz-smoke: N passed, N failed"; exits 1
# on any crash, 2 on a setup failure. Long runs: fuzz/run.sh (nightly, ASan).
set -uo pipefail
cd "$(dirname "$0")"
SECS=${1:-20}
# Under the workspace's target dir (kept by CI caches and `cargo clean`):
# the sanitizer-free stable build shares nothing with the test build (other
# RUSTFLAGS) but is reused by the next smoke run.
ROOT=$(cd .. && pwd)
TD=${CARGO_TARGET_DIR:-$ROOT/target}
[[ "$TD" = /* ]] || TD=$ROOT/$TD
TD=$TD/fuzz-smoke
TARGETS=(open_file superblock object_header messages btree_v1 btree_v2 fractal_heap arrays global_heap value_decode sns_message ofs_key netcdf3)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz@0.13.2 >/dev/null 2>&1 || { echo "fuzz-smoke: cannot install cargo-fuzz" >&2; exit 2; }
fi
rm -rf smoke/artifacts smoke/logs && mkdir -p smoke/artifacts smoke/logs
python3 seed_corpora.py >/dev/null 2>&1 || { echo "fuzz-smoke: seeding failed" >&2; exit 2; }
cargo +stable fuzz build -s none --target-dir "$TD" >smoke/logs/build.log 2>&1 || { tail -30 smoke/logs/build.log; exit 2; }
passed=0 failed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "smoke/artifacts/$t"
  dirs=("corpus/$t"); [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  if cargo +stable fuzz run -s none --target-dir "$TD" "$t" "${dirs[@]}" -- \
       -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="smoke/artifacts/$t/" >"smoke/logs/$t.log" 2>&1; then
    passed=$((passed + 1)); echo "ok    $t ($(grep -oE '^#[0-9]+' "smoke/logs/$t.log" | tail -1 | tr -d '#') execs)"
  else
    failed=$((failed + 1)); echo "FAIL  $t: see fuzz/smoke/logs/$t.log"; tail -20 "smoke/logs/$t.log"
  fi
done
echo "fuzz-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
