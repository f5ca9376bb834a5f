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

step "cargo fmt" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets --all-features -- -D warnings
step "cargo test" cargo test --workspace --all-features --no-fail-fast
step "CLI refs + combine vs xr.concat" bash tests/cli_combine.sh
step "Icechunk output read back (icechunk-python 1.1 + zarr 3 + xarray)" bash tests/icechunk_test.sh
step "README demo: pipeline offline on a bundled cycle" env DEMO_DIR="$ROOT/target/demo-test" bash examples/demo.sh
step "S3 source against moto" bash tests/s3_source_test.sh
step "Argo exit handler dead-letters failed messages (moto SQS)" bash tests/dead_letter_test.sh
step "memory rule of deploy/: peak RSS under the limit when the metadata guard fires" bash tests/memory_guard_test.sh
step "end-to-end pipeline (moto S3/SNS/SQS, fault injection)" bash tests/e2e/run_e2e.sh
step "static musl binary in an empty root (HTTP, S3 via moto)" bash tests/static/run.sh
step "fuzz smoke (every target, 20 s)" bash fuzz/smoke.sh 20
step "h5py goldens regenerate identically" bash fixtures/check-golden.sh
# The Python checks read our refs of every fixture (target/kerchunk-ours);
# write them here so they do not depend on what ran before.
step "translate every fixture" cargo test -q -p kerchunk --test fixtures
step "refs read back bit-identical; match kerchunk" "$KERCHUNK_NOS_PYTHON" tests/python/check_refs.py
step "xarray (CF-decoded) sees what the netCDF4 engine sees" "$KERCHUNK_NOS_PYTHON" tests/python/xarray_decoded.py

echo
if [ "$failed" -gt 0 ]; then
  printf 'failed step: %s\n' "${failures[@]}"
fi
echo "all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
