#!/usr/bin/env bash
# End-to-end pipeline test against moto_server (S3 + SNS + SQS), started and
# stopped by e2e.py on a free loopback port. Needs the oracle venv (.venv,
# tests/python/setup-venv.sh) and cargo. KERCHUNK_NOS_BIN: the binary under
# test (tests/run-all.sh passes the one its `cargo test` built); otherwise
# the debug binary is built.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${KERCHUNK_NOS_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "run_e2e: oracle venv missing (run tests/python/setup-venv.sh)" >&2; exit 1; }
if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
  BIN=$KERCHUNK_NOS_BIN
else
  cargo build -p ingest --bin kerchunk-nos
  BIN=${CARGO_TARGET_DIR:-target}/debug/kerchunk-nos
fi
[ -x "$BIN" ] || { echo "run_e2e: no binary at $BIN" >&2; exit 1; }
exec "$PY" tests/e2e/e2e.py --bin "$BIN" "$@"
