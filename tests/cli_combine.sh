#!/usr/bin/env bash
# CLI test of `kerchunk-nos refs` + `combine`: three forecast hours of one
# dbofs cycle, generated with fixtures/make_ofs.py, indexed and combined on
# ocean_time; xarray on the aggregate must equal xr.concat of the originals.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
oracle_python cli_combine
test_binary cli_combine
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for h in f001 f002 f003; do
  "$PY" "$ROOT/fixtures/make_ofs.py" --model dbofs --kind fields --hour $h --cycle 2023-03-23T12 --out "$W/src" >/dev/null
done
for f in "$W"/src/*/*.nc; do "$BIN" refs "$f" -o "$W/$(basename "$f").zarr"; done
# Inputs deliberately out of order: combine sorts by coordinate value.
"$BIN" combine --concat-dim ocean_time --preset roms "$W/run.json" \
  "$W/nos.dbofs.fields.f003.20230323.t12z.nc.zarr" "$W/nos.dbofs.fields.f001.20230323.t12z.nc.zarr" \
  "$W/nos.dbofs.fields.f002.20230323.t12z.nc.zarr"
"$PY" - "$W" <<'PY'
import glob, sys
import fsspec, numpy as np, xarray as xr
w = sys.argv[1]
fs = fsspec.filesystem("reference", fo=f"{w}/run.json")
ds = xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False)
orig = xr.concat([xr.open_dataset(p) for p in sorted(glob.glob(f"{w}/src/*/*.nc"))],
                 dim="ocean_time", data_vars="minimal", coords="minimal", compat="override")
passed = failed = 0
for name in orig.data_vars:
    ok = name in ds and np.array_equal(ds[name].values, orig[name].values, equal_nan=True)
    passed += ok; failed += not ok
    if not ok:
        print("FAIL", name)
ok = list(ds.ocean_time.values) == list(orig.ocean_time.values)
passed += ok; failed += not ok
print(f"cli-combine: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
