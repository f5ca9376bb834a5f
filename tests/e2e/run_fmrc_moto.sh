#!/usr/bin/env bash
# Incremental FMRC aggregates (issue 17) against moto_server: S3 requests
# per update counted at a proxy (bounded, independent of the history),
# racing updates through tests/e2e/hold_proxy.py, outputs equal to
# `rebuild`. Needs the oracle venv and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${KERCHUNK_NOS_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "run_fmrc_moto: oracle venv missing (run tests/python/setup-venv.sh)" >&2; exit 1; }
# KERCHUNK_NOS_BIN: the binary under test (tests/run-all.sh passes the one
# its `cargo test` built); otherwise the debug binary is built.
if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
  BIN=$KERCHUNK_NOS_BIN
else
  cargo build -p ingest --bin kerchunk-nos
  BIN=${CARGO_TARGET_DIR:-target}/debug/kerchunk-nos
fi
[ -x "$BIN" ] || { echo "run_fmrc_moto: no binary at $BIN" >&2; exit 1; }
exec "$PY" tests/e2e/fmrc_moto.py --bin "$BIN" "$@"
