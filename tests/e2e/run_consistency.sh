#!/usr/bin/env bash
# Consistency regressions of issue 13 (compare-and-swap writes, pinned
# reads, exit codes, dedupe, credentials in logs) against moto_server,
# with a proxy that holds chosen requests. Needs the oracle venv and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
oracle_python run_consistency
test_binary run_consistency
exec "$PY" tests/e2e/consistency.py --bin "$BIN" "$@"
