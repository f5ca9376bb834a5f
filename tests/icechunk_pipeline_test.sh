#!/usr/bin/env bash
# `update_model_run --output-format json,icechunk` against moto S3: racing
# updates held at their commit by tests/e2e/hold_proxy.py, the repository
# read back with icechunk-python 1.1 + zarr 3 + xarray (target/venv-zarr3,
# tests/python/setup-venv-zarr3.sh) against xr.concat of the NetCDF files,
# and bad input (exit 1, no new snapshot): tests/python/check_icechunk_pipeline.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/tests/python/setup-venv-zarr3.sh"
ZPY=${VENV_ZARR3:-$ROOT/target/venv-zarr3}/bin/python
ORACLE=${KERCHUNK_NOS_PYTHON:-$ROOT/.venv/bin/python}
MOTO=$(dirname "$ORACLE")/moto_server
# KERCHUNK_NOS_BIN: the binary under test (tests/run-all.sh passes the one
# its `cargo test` built); otherwise build the debug one.
if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
    BIN=$KERCHUNK_NOS_BIN
else
    (cd "$ROOT" && cargo build -q -p ingest --bin kerchunk-nos)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/kerchunk-nos
fi
[ -x "$BIN" ] || { echo "icechunk_pipeline_test: no binary at $BIN" >&2; exit 1; }

PORT=$("$ORACLE" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
"$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
cleanup() {
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
"$ORACLE" - "$PORT" <<'PYEOF'
import socket, sys, time
for _ in range(400):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("moto_server did not start")
PYEOF
"$ORACLE" "$ROOT/tests/python/check_icechunk_pipeline.py" "$BIN" "$ROOT" "$ZPY" "$PORT"
