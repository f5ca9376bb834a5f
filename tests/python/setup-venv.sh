#!/usr/bin/env bash
# Create (or reuse) the oracle venv at $VENV (default: <repo>/.venv) with the
# pinned test oracles. Fails loudly if anything cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
pinned_venv setup-venv "${VENV:-$LIB_ROOT/.venv}" python3 "$here/requirements.txt" \
  "import h5py, netCDF4, kerchunk, zarr, xarray, fsspec, moto"
