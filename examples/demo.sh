#!/usr/bin/env bash
# The main job on a bundled example, offline: index a bundled NOAA OFS
# NetCDF-4 file (ROMS dbofs, structurally faithful, small grid) into a
# kerchunk reference set, then open it with xarray and compare with the
# original read by netCDF4. Needs cargo and python3; no AWS account.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=fixtures/files/ofs/dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc
OUT=${OUT:-target/demo}
mkdir -p "$OUT"
cargo build --release -q -p ingest
echo "== indexing $SRC (metadata only, range reads)"
./target/release/kerchunk-nos refs "$SRC" -o "$OUT/nos.dbofs.fields.f001.20230323.t12z.nc.zarr" --stats
ls -l "$OUT/nos.dbofs.fields.f001.20230323.t12z.nc.zarr"
bash tests/python/setup-venv.sh
.venv/bin/python - "$OUT/nos.dbofs.fields.f001.20230323.t12z.nc.zarr" "$SRC" <<'PY'
import sys, fsspec, numpy as np, xarray as xr
refs, src = sys.argv[1], sys.argv[2]
fs = fsspec.filesystem("reference", fo=refs)
ds = xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False)
print(ds)
orig = xr.open_dataset(src)
for v in ["zeta", "temp", "u", "ocean_time", "lon_rho"]:
    same = np.array_equal(ds[v].values, orig[v].values, equal_nan=True)
    print(f"{v:12s} identical to netCDF4 read: {same}")
    assert same
print("\nOpen it yourself:\n  fs = fsspec.filesystem('reference', fo='%s')\n  xr.open_dataset(fs.get_mapper(''), engine='zarr', consolidated=False)" % refs)
PY
