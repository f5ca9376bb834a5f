#!/usr/bin/env bash
# Consistency regressions of issue 13 (compare-and-swap writes, pinned
# reads, exit codes, dedupe, credentials in logs) against moto_server,
# with a proxy that holds chosen requests. Needs the oracle venv and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${KERCHUNK_NOS_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "run_consistency: oracle venv missing (run tests/python/setup-venv.sh)" >&2; exit 1; }
# KERCHUNK_NOS_BIN: the binary under test (tests/run-all.sh passes the one
# its `cargo test` built); otherwise the debug binary is built.
if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
  BIN=$KERCHUNK_NOS_BIN
else
  cargo build -p ingest --bin kerchunk-nos
  BIN=${CARGO_TARGET_DIR:-target}/debug/kerchunk-nos
fi
[ -x "$BIN" ] || { echo "run_consistency: no binary at $BIN" >&2; exit 1; }
exec "$PY" tests/e2e/consistency.py --bin "$BIN" "$@"
