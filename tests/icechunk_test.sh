#!/usr/bin/env bash
# `refs|combine --icechunk` read back with icechunk-python 1.1 + zarr 3 +
# xarray (a separate venv, tests/python/setup-venv-zarr3.sh), against
# netCDF4-python: tests/python/check_icechunk.py. The s3:// part runs against
# a moto_server (from the oracle venv) on a free 127.0.0.1 port.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
reader_python zarr3
oracle_python icechunk_test
test_binary icechunk_test
moto_session "$PY"
"$PY" -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing').create_bucket(Bucket='ice')" "$MOTO_ENDPOINT"

MOTO_ENDPOINT=$MOTO_ENDPOINT AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
RUST_LOG=${RUST_LOG:-error} "$RPY" "$ROOT/tests/python/check_icechunk.py" "$BIN" "$ROOT"
