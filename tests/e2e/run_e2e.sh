#!/usr/bin/env bash
# End-to-end pipeline test against moto_server (S3 + SNS + SQS), started and
# stopped by e2e.py on a free loopback port. Needs the oracle venv (.venv,
# tests/python/setup-venv.sh) and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${KERCHUNK_NOS_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "run_e2e: oracle venv missing (run tests/python/setup-venv.sh)" >&2; exit 1; }
cargo build -p ingest --bin kerchunk-nos
exec "$PY" tests/e2e/e2e.py --bin target/debug/kerchunk-nos "$@"
