#!/usr/bin/env bash
# Incremental FMRC aggregates (issue 17) against moto_server: S3 requests
# per update counted at a proxy (bounded, independent of the history),
# racing updates through tests/e2e/hold_proxy.py, outputs equal to
# `rebuild`. Needs the oracle venv and cargo. KERCHUNK_NOS_BIN: the binary
# under test (tests/run-all.sh passes the one its `cargo test` built);
# otherwise the debug binary is built.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
oracle_python run_fmrc_moto
test_binary run_fmrc_moto
exec "$PY" tests/e2e/fmrc_moto.py --bin "$BIN" "$@"
