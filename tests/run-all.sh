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
step() {
  local name=$1; shift
  echo "::: $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "::: ok    $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "::: FAIL  $name ($((SECONDS - t0)) s)"
  fi
}

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

step "cargo fmt" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets --all-features --target $MUSL -- -D warnings
step "cargo test" cargo test --workspace --all-features --no-fail-fast --target $MUSL
step "CLI refs + combine vs xr.concat" bash tests/cli_combine.sh
step "Icechunk output read back (icechunk-python 1.1 + zarr 3 + xarray)" bash tests/icechunk_test.sh
step "Icechunk repositories read by icechunk-python 2.x (Python 3.12) and 1.1.x" bash tests/icechunk_readers_test.sh
step "update_model_run --output-format icechunk: racing commits held (moto), read back, bad input" bash tests/icechunk_pipeline_test.sh
step "README demo: pipeline offline on a bundled cycle" env DEMO_DIR="$ROOT/target/demo-test" bash examples/demo.sh
step "S3 source against moto" bash tests/s3_source_test.sh
step "Argo exit handler dead-letters failed messages (moto SQS)" bash tests/dead_letter_test.sh
step "memory rule of deploy/: peak RSS under the limit when the metadata guard fires" bash tests/memory_guard_test.sh
step "end-to-end pipeline (moto S3/SNS/SQS, fault injection)" bash tests/e2e/run_e2e.sh
step "consistency under held requests (moto: CAS, pinned reads, exit codes, logs)" bash tests/e2e/run_consistency.sh
step "incremental FMRC aggregates (moto: S3 requests per update, held races, = rebuild)" bash tests/e2e/run_fmrc_moto.sh
step "static musl binary in an empty root (HTTP, S3 via moto)" bash tests/static/run.sh "$KERCHUNK_NOS_BIN"
step "fuzz smoke (every target, 5 s; longer runs: fuzz/run.sh)" bash fuzz/smoke.sh 5
step "h5py goldens regenerate identically" bash fixtures/check-golden.sh
step "refs read back bit-identical; match kerchunk" "$KERCHUNK_NOS_PYTHON" tests/python/check_refs.py
step "xarray (CF-decoded) sees what the netCDF4 engine sees" "$KERCHUNK_NOS_PYTHON" tests/python/xarray_decoded.py
step "NetCDF-3 fixtures regenerate identically" bash -c 'd=$(mktemp -d) && "$KERCHUNK_NOS_PYTHON" fixtures/netcdf3_fixtures.py "$d" >/dev/null && diff -r fixtures/netcdf3 "$d"; r=$?; rm -rf "$d"; exit $r'
step "NetCDF-3 refs vs netCDF4-python, xarray, kerchunk NetCDF3ToZarr" "$KERCHUNK_NOS_PYTHON" tests/python/check_netcdf3.py
step "Parquet refs: fsspec/fastparquet/pyarrow/xarray vs JSON, kerchunk, xr.concat" "$KERCHUNK_NOS_PYTHON" -W ignore::DeprecationWarning tests/python/check_parquet.py "$KERCHUNK_NOS_BIN"

echo
if [ "$failed" -gt 0 ]; then
  printf 'failed step: %s\n' "${failures[@]}"
fi
echo "all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
