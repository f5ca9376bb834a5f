#!/usr/bin/env bash
# Create (or reuse) the Zarr 3 / Icechunk reader venv at $VENV_ZARR3
# (default: <repo>/target/venv-zarr3) from requirements-zarr3.txt. It is
# separate from the oracle venv (.venv pins zarr 2 for kerchunk 0.2.7).
# Fails loudly if anything cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
VENV=${VENV_ZARR3:-$repo/target/venv-zarr3}
req="$here/requirements-zarr3.txt"
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
"$VENV/bin/python" -c "import icechunk, zarr, xarray, numcodecs.zarr3, h5py, netCDF4" \
  || { echo "zarr3 venv incomplete" >&2; exit 1; }
echo "$want" > "$stamp"
