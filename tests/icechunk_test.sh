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
# KERCHUNK_NOS_BIN: the binary under test (tests/run-all.sh passes the one
# its `cargo test` built, so no second build); otherwise build the debug one.
if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
    BIN=$KERCHUNK_NOS_BIN
else
    (cd "$ROOT" && cargo build -q -p ingest --bin kerchunk-nos)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/kerchunk-nos
fi
[ -x "$BIN" ] || { echo "icechunk_test: no binary at $BIN" >&2; exit 1; }

. "$ROOT/tests/lib.sh"
moto_session "$ORACLE"
"$ORACLE" -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing').create_bucket(Bucket='ice')" "$MOTO_ENDPOINT"

MOTO_ENDPOINT=$MOTO_ENDPOINT AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
RUST_LOG=${RUST_LOG:-error} "$PY" "$ROOT/tests/python/check_icechunk.py" "$BIN" "$ROOT"
