#!/usr/bin/env bash
# Create (or reuse) the Zarr 3 / Icechunk reader venv at $VENV_ZARR3
# (default: <repo>/target/venv-zarr3) from requirements-zarr3.txt. It is
# separate from the oracle venv (.venv pins zarr 2 for kerchunk 0.2.7).
# Fails loudly if anything cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
pinned_venv setup-venv-zarr3 "${VENV_ZARR3:-$LIB_ROOT/target/venv-zarr3}" python3 "$here/requirements-zarr3.txt" \
  "import icechunk, zarr, xarray, numcodecs.zarr3, h5py, netCDF4"
