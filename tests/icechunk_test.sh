#!/usr/bin/env bash
# `refs|combine --icechunk` read back with icechunk-python 1.1 + zarr 3 +
# xarray (a separate venv, tests/python/setup-venv-zarr3.sh), against
# netCDF4-python: tests/python/check_icechunk.py. The s3:// part runs against
# a moto_server (from the oracle venv) on a free 127.0.0.1 port.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/tests/python/setup-venv-zarr3.sh"
PY=${VENV_ZARR3:-$ROOT/target/venv-zarr3}/bin/python
ORACLE=${KERCHUNK_NOS_PYTHON:-$ROOT/.venv/bin/python}
MOTO=$(dirname "$ORACLE")/moto_server
# KERCHUNK_NOS_BIN: the binary under test (tests/run-all.sh passes the one
# its `cargo test` built, so no second build); otherwise build the debug one.
if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
    BIN=$KERCHUNK_NOS_BIN
else
    (cd "$ROOT" && cargo build -q -p ingest --bin kerchunk-nos)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/kerchunk-nos
fi
[ -x "$BIN" ] || { echo "icechunk_test: no binary at $BIN" >&2; exit 1; }

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
"$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
cleanup() {
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
"$PY" - "$PORT" <<'PYEOF'
import socket, sys, time
for _ in range(400):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("moto_server did not start")
PYEOF
"$ORACLE" -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing').create_bucket(Bucket='ice')" "http://127.0.0.1:$PORT"

MOTO_ENDPOINT=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
RUST_LOG=${RUST_LOG:-error} "$PY" "$ROOT/tests/python/check_icechunk.py" "$BIN" "$ROOT"
