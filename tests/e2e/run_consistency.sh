#!/usr/bin/env bash
# Consistency regressions of issue 13 (compare-and-swap writes, pinned
# reads, exit codes, dedupe, credentials in logs) against moto_server,
# with a proxy that holds chosen requests. Needs the oracle venv and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${KERCHUNK_NOS_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "run_consistency: oracle venv missing (run tests/python/setup-venv.sh)" >&2; exit 1; }
cargo build -p ingest --bin kerchunk-nos
exec "$PY" tests/e2e/consistency.py --bin target/debug/kerchunk-nos "$@"
