#!/usr/bin/env bash
# The Icechunk repositories `refs|combine --icechunk` write, read with both
# supported icechunk-python lines: 2.x (Python 3.12, target/venv-icechunk2,
# tests/python/setup-venv-icechunk2.sh) and 1.1.x (Python 3.11,
# target/venv-zarr3), each with zarr 3 + xarray, against netCDF4-python
# (tests/python/icechunk_readers.py). The same repositories, 2.x first, and
# neither read may change a byte of them. No Python 3.12 is a failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
reader_python icechunk2
PY2=$RPY
reader_python zarr3
PY1=$RPY
oracle_python icechunk_readers_test
test_binary icechunk_readers_test

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CHECK=$ROOT/tests/python/icechunk_readers.py
"$PY" "$CHECK" write "$BIN" "$ROOT" "$WORK"
digest() { (cd "$WORK" && find . -path './r-*' -type f -o -path './run/*' -type f | sort | xargs sha256sum); }
before=$(digest)
[ -n "$before" ] || { echo "icechunk_readers_test: no repository files" >&2; exit 1; }
export ICECHUNK_LOG=${ICECHUNK_LOG:-error}
"$PY2" "$CHECK" read "$WORK" 2
"$PY1" "$CHECK" read "$WORK" 1
if [ "$(digest)" != "$before" ]; then
    echo "icechunk_readers_test: a reader changed the repositories" >&2
    exit 1
fi
echo "icechunk_readers_test: icechunk 2.x and 1.1.x read the same repositories; unchanged"
