#!/usr/bin/env bash
# `update_model_run --output-format json,icechunk` against moto S3: racing
# updates held at their commit by tests/e2e/hold_proxy.py, the repository
# read back with icechunk-python 1.1 + zarr 3 + xarray (target/venv-zarr3,
# tests/python/setup-venv-zarr3.sh) against xr.concat of the NetCDF files,
# and bad input (exit 1, no new snapshot): tests/python/check_icechunk_pipeline.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
reader_python zarr3
oracle_python icechunk_pipeline_test
test_binary icechunk_pipeline_test
moto_session "$PY"
"$PY" "$ROOT/tests/python/check_icechunk_pipeline.py" "$BIN" "$ROOT" "$RPY" "$MOTO_PORT"
