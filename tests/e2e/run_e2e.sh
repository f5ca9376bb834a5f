#!/usr/bin/env bash
# End-to-end pipeline test against moto_server (S3 + SNS + SQS), started and
# stopped by e2e.py on a free loopback port. Needs the oracle venv (.venv,
# tests/python/setup-venv.sh) and cargo. KERCHUNK_NOS_BIN: the binary under
# test (tests/run-all.sh passes the one its `cargo test` built); otherwise
# the debug binary is built.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
oracle_python run_e2e
test_binary run_e2e
exec "$PY" tests/e2e/e2e.py --bin "$BIN" "$@"
