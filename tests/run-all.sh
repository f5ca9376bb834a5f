#!/usr/bin/env bash
# Every test of the project, in one command (the README's test command and
# what CI runs). It installs what it needs (the pinned Python oracle venv)
# and fails loudly, never skips, when a required tool is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

die() { echo "run-all: $*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo is required (install Rust with rustup)"
command -v python3 >/dev/null || die "python3 (3.10+) is required for the test oracles"

passed=0
failed=0
failures=()
tally() { # NAME RC SECONDS
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "::: ok    $1 ($3 s)"
  else
    failed=$((failed + 1)); failures+=("$1"); echo "::: FAIL  $1 ($3 s)"
  fi
}
step() {
  local name=$1; shift
  echo "::: $name"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  tally "$name" "$rc" $((SECONDS - t0))
}

T0=$SECONDS

step "python oracle venv" bash tests/python/setup-venv.sh
[ -x "$ROOT/.venv/bin/python" ] || die "oracle venv missing after setup"
export KERCHUNK_NOS_PYTHON="$ROOT/.venv/bin/python"

# One compile for everything: clippy, the tests and the static binary under
# test are all built for the musl target in the dev profile, so build
# scripts, proc-macros (shared with clippy) and every crate are compiled
# once, and the kerchunk-nos the tests build is the static binary the script
# steps use. The release/LTO build is scripts/build-static.sh (Dockerfile).
MUSL=x86_64-unknown-linux-musl
step "musl target (rustup target, musl-tools)" bash scripts/musl-setup.sh
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-x86_64-linux-musl-gcc}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
export KERCHUNK_NOS_BIN="$TARGET_DIR/$MUSL/debug/kerchunk-nos"
# Never test a stale binary: if `cargo test` cannot build it, the script
# steps find none and fail.
rm -f "$KERCHUNK_NOS_BIN"
# The Python checks read the refs kerchunk's fixtures test writes during
# `cargo test`; remove old ones so they read this run's.
rm -rf "$ROOT/target/kerchunk-ours"

# Steps that share nothing (each picks its own free ports and scratch
# directories, or only reads) run in the background, RUN_ALL_JOBS at a time
# (default 3: most of them wait on servers and interpreters more than they
# compute), while the cargo steps run in the foreground. `bg_step` queues a
# step for the dispatcher below; each step's output goes to its own log,
# printed whole and in queue order (`bg_flush`) once it and every step
# queued before it have ended, so the output reads as if the steps had run
# one after another.
JOBS=${RUN_ALL_JOBS:-3}
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
mkfifo "$LOGS/queue"
(
  exec 3<"$LOGS/queue"
  while read -r i <&3 && [ "$i" != end ]; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    ( t0=$SECONDS; rc=0; bash "$LOGS/$i.cmd" >"$LOGS/$i.log" 2>&1 </dev/null || rc=$?
      echo "$rc $((SECONDS - t0))" >"$LOGS/$i.rc" ) &
  done
  wait
) &
DISPATCHER=$!
exec 4>"$LOGS/queue"
bg_names=()
bg_shown=0
bg_step() {
  local name=$1; shift
  local i=${#bg_names[@]}
  bg_names+=("$name")
  { printf 'cd %q && exec' "$ROOT"; printf ' %q' "$@"; echo; } >"$LOGS/$i.cmd"
  echo "$i" >&4
}
# Print the ended steps at the head of the queue; with "all", wait for
# every queued step.
bg_flush() {
  local rc secs
  while [ "$bg_shown" -lt "${#bg_names[@]}" ]; do
    if [ ! -s "$LOGS/$bg_shown.rc" ]; then
      [ "${1:-}" = all ] || return 0
      sleep 0.5
      continue
    fi
    read -r rc secs <"$LOGS/$bg_shown.rc"
    echo "::: ${bg_names[$bg_shown]}"
    cat "$LOGS/$bg_shown.log"
    tally "${bg_names[$bg_shown]}" "$rc" "$secs"
    bg_shown=$((bg_shown + 1))
  done
}

# Independent of the build: alongside the cargo steps. The fuzz smoke has
# its own target dir (and so its own cargo lock).
bg_step "fuzz smoke (every target, 5 s; longer runs: fuzz/run.sh)" bash fuzz/smoke.sh 5
bg_step "h5py goldens regenerate identically" bash fixtures/check-golden.sh
bg_step "NetCDF-3 fixtures regenerate identically" bash -c 'd=$(mktemp -d) && "$KERCHUNK_NOS_PYTHON" fixtures/netcdf3_fixtures.py "$d" >/dev/null && diff -r fixtures/netcdf3 "$d"; r=$?; rm -rf "$d"; exit $r'

# The reader venvs three Icechunk steps share are made here, once, before
# those steps run side by side (alongside the background steps above).
step "zarr-3 reader venv (icechunk-python 1.1)" bash tests/python/setup-venv-zarr3.sh
step "icechunk-python 2.x reader venv (Python 3.12)" bash tests/python/setup-venv-icechunk2.sh
step "cargo fmt" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets --all-features --target $MUSL -- -D warnings
bg_flush
# Build the tests (and with them the binary under test) first, so the
# script steps, which need only the binary, run while the tests do.
step "cargo test: build" cargo test --workspace --all-features --no-fail-fast --target $MUSL --no-run
bg_flush
# The longest steps first, so the last to end is not a long one queued late.
bg_step "end-to-end pipeline (moto S3/SNS/SQS, fault injection)" bash tests/e2e/run_e2e.sh
bg_step "Parquet refs: fsspec/fastparquet/pyarrow/xarray vs JSON, kerchunk, xr.concat" "$KERCHUNK_NOS_PYTHON" -W ignore::DeprecationWarning tests/python/check_parquet.py "$KERCHUNK_NOS_BIN"
bg_step "Icechunk output read back (icechunk-python 1.1 + zarr 3 + xarray)" bash tests/icechunk_test.sh
bg_step "update_model_run --output-format icechunk: racing commits held (moto), read back, bad input" bash tests/icechunk_pipeline_test.sh
bg_step "Icechunk repositories read by icechunk-python 2.x (Python 3.12) and 1.1.x" bash tests/icechunk_readers_test.sh
bg_step "incremental FMRC aggregates (moto: S3 requests per update, held races, = rebuild)" bash tests/e2e/run_fmrc_moto.sh
bg_step "memory rule of deploy/: peak RSS under the limit when the metadata guard fires" bash tests/memory_guard_test.sh
bg_step "NetCDF-3 refs vs netCDF4-python, xarray, kerchunk NetCDF3ToZarr" "$KERCHUNK_NOS_PYTHON" tests/python/check_netcdf3.py
bg_step "consistency under held requests (moto: CAS, pinned reads, exit codes, logs)" bash tests/e2e/run_consistency.sh
bg_step "static musl binary in an empty root (HTTP, S3 via moto)" bash tests/static/run.sh "$KERCHUNK_NOS_BIN"
bg_step "S3 source against moto" bash tests/s3_source_test.sh
bg_step "CLI refs + combine vs xr.concat" bash tests/cli_combine.sh
bg_step "README demo: pipeline offline on a bundled cycle" env DEMO_DIR="$ROOT/target/demo-test" bash examples/demo.sh
bg_step "Argo exit handler dead-letters failed messages (moto SQS)" bash tests/dead_letter_test.sh
step "cargo test" cargo test --workspace --all-features --no-fail-fast --target $MUSL
bg_flush
# These read the refs `cargo test` wrote.
bg_step "refs read back bit-identical; match kerchunk" "$KERCHUNK_NOS_PYTHON" tests/python/check_refs.py
bg_step "xarray (CF-decoded) sees what the netCDF4 engine sees" "$KERCHUNK_NOS_PYTHON" tests/python/xarray_decoded.py
bg_flush all
echo end >&4
exec 4>&-
wait "$DISPATCHER"

echo
if [ "$failed" -gt 0 ]; then
  printf 'failed step: %s\n' "${failures[@]}"
fi
echo "all: $passed passed, $failed failed ($((SECONDS - T0)) s)"
[ "$failed" -eq 0 ]
