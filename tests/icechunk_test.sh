#!/usr/bin/env bash
# `refs|combine --icechunk` read back with icechunk-python 1.1 + zarr 3 +
# xarray (a separate venv, tests/python/setup-venv-zarr3.sh), against
# netCDF4-python: tests/python/check_icechunk.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/tests/python/setup-venv-zarr3.sh"
PY=${VENV_ZARR3:-$ROOT/target/venv-zarr3}/bin/python
(cd "$ROOT" && cargo build -q -p ingest --bin kerchunk-nos)
RUST_LOG=${RUST_LOG:-error} "$PY" "$ROOT/tests/python/check_icechunk.py" "$ROOT/target/debug/kerchunk-nos" "$ROOT"
