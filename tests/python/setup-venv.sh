#!/usr/bin/env bash
# Create (or reuse) the oracle venv at $VENV (default: <repo>/.venv) with the
# pinned test oracles. Fails loudly if anything cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
VENV=${VENV:-$repo/.venv}
req="$here/requirements.txt"
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
"$VENV/bin/python" -c "import h5py, netCDF4, kerchunk, zarr, xarray, fsspec, moto" \
  || { echo "oracle venv incomplete" >&2; exit 1; }
echo "$want" > "$stamp"
