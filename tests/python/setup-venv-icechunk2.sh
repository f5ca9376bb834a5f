#!/usr/bin/env bash
# Create (or reuse) the icechunk-python 2.x reader venv at $VENV_ICECHUNK2
# (default: <repo>/target/venv-icechunk2) from requirements-icechunk2.txt,
# with Python 3.12 (icechunk 2.x needs >= 3.12; the zarr3 venv's Python 3.11
# gets 1.1.x): $KERCHUNK_NOS_PY312, else `python3.12` on PATH, else pyenv's
# 3.12.x. Fails loudly if there is none or anything cannot be installed:
# a missing reader is a failure, not a skip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

is312() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; }
if [ -n "${KERCHUNK_NOS_PY312:-}" ]; then
  py=$KERCHUNK_NOS_PY312
  is312 "$py" || { echo "setup-venv-icechunk2: KERCHUNK_NOS_PY312=$py is not a Python 3.12" >&2; exit 1; }
else
  # (A pyenv shim named python3.12 may exist without that version active.)
  pyenv_root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
  py=
  for c in "$(command -v python3.12 || true)" \
           $(ls -d "$pyenv_root"/versions/3.12.*/bin/python 2>/dev/null | sort -rV); do
    if is312 "$c"; then py=$c; break; fi
  done
  [ -n "$py" ] || { echo "setup-venv-icechunk2: no Python 3.12 found (PATH, $pyenv_root/versions); set KERCHUNK_NOS_PY312=/path/to/python3.12" >&2; exit 1; }
fi

pinned_venv setup-venv-icechunk2 "${VENV_ICECHUNK2:-$LIB_ROOT/target/venv-icechunk2}" "$py" \
  "$here/requirements-icechunk2.txt" \
  "import icechunk, zarr, xarray, numcodecs.zarr3, netCDF4; assert icechunk.__version__.startswith('2.')" \
  --pin-python
