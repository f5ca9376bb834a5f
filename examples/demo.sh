#!/usr/bin/env bash
# The main job on a bundled example, offline (no AWS account): the same two
# pipeline steps Argo runs in production, on local directories standing in
# for the buckets.
#
#   1. four forecast hours of one dbofs cycle are written (by the bundled,
#      structurally faithful generator fixtures/make_ofs.py) into a local
#      stand-in for s3://noaa-ofs-pds;
#   2. `kerchunk-nos extract_single` runs on the SNS message announcing each
#      file: it range-reads the file's metadata and writes its kerchunk
#      reference set (refs point at s3://noaa-ofs-pds/<key>);
#   3. `kerchunk-nos update_model_run` runs on the destination-bucket
#      notification: it combines the cycle into the model-run aggregate and
#      rebuilds the best time series;
#   4. xarray opens the aggregate and it is compared with xr.concat of the
#      original NetCDF files.
#
# Needs cargo and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
W=${DEMO_DIR:-$ROOT/target/demo}
rm -rf "$W" && mkdir -p "$W/buckets/noaa-ofs-pds" "$W/buckets/nextgen-dmac"

# KERCHUNK_NOS_BIN: use that binary (tests/run-all.sh passes the one its
# `cargo test` built) instead of building the release binary.
if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
  BIN=$KERCHUNK_NOS_BIN
  echo "== using $BIN"
else
  echo "== building kerchunk-nos (release)"
  cargo build --release -q -p ingest
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/kerchunk-nos
fi
[ -x "$BIN" ] || { echo "demo: no binary at $BIN" >&2; exit 1; }
bash tests/python/setup-venv.sh
PY=$ROOT/.venv/bin/python

echo "== writing dbofs 2023-03-23 12z f001-f004 into $W/buckets/noaa-ofs-pds"
for h in f001 f002 f003 f004; do
  "$PY" fixtures/make_ofs.py --model dbofs --kind fields --hour $h --cycle 2023-03-23T12 \
    --out "$W/buckets/noaa-ofs-pds" >/dev/null
done

# An SNS envelope around an S3 event, as NOAA's NewOFSObject topic sends.
sns() {
  "$PY" -c 'import json, sys
inner = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                      "eventTime": "2023-03-23T13:05:00.000Z",
                      "s3": {"bucket": {"name": sys.argv[1]}, "object": {"key": sys.argv[2], "size": 1}}}]}
print(json.dumps({"Type": "Notification", "Message": json.dumps(inner)}))' "$1" "$2"
}

echo "== extract_single for each new object"
for h in f001 f002 f003 f004; do
  key=dbofs.20230323/nos.dbofs.fields.$h.20230323.t12z.nc
  "$BIN" extract_single "$(sns noaa-ofs-pds "$key")" "file://$W/buckets/nextgen-dmac" nos \
    --source-root "$W/buckets" >/dev/null
  echo "   $key -> nos/nos.dbofs.fields.$h.20230323.t12z.nc.zarr"
done

echo "== update_model_run on the last reference's notification"
"$BIN" update_model_run "$(sns nextgen-dmac nos/nos.dbofs.fields.f004.20230323.t12z.nc.zarr)" \
  --dest "file://$W/buckets/nextgen-dmac" --source-root "$W/buckets"
ls -l "$W/buckets/nextgen-dmac/nos"

"$PY" - "$W" <<'PY'
import glob, json, sys
import fsspec, numpy as np, xarray as xr
w = sys.argv[1]
agg = f"{w}/buckets/nextgen-dmac/nos/nos.dbofs.fields.20230323.t12z.nc.zarr"
refs = json.load(open(agg))
# In production the refs are opened as they are, with
#   fsspec.filesystem("reference", fo=URL, remote_protocol="s3", remote_options={"anon": True});
# offline, point s3://noaa-ofs-pds at the local stand-in.
for v in refs["refs"].values():
    if isinstance(v, list) and v and v[0].startswith("s3://noaa-ofs-pds/"):
        v[0] = v[0].replace("s3://noaa-ofs-pds/", f"{w}/buckets/noaa-ofs-pds/")
fs = fsspec.filesystem("reference", fo=refs)
ds = xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False)
print(ds)
files = sorted(glob.glob(f"{w}/buckets/noaa-ofs-pds/*/*.nc"))
orig = xr.concat([xr.open_dataset(f) for f in files], dim="ocean_time",
                 data_vars="minimal", coords="minimal", compat="override")
bad = [n for n in orig.data_vars if not np.array_equal(ds[n].values, orig[n].values, equal_nan=True)]
print(f"\nmodel run: {ds.sizes['ocean_time']} hours, {len(orig.data_vars)} variables; "
      f"identical to xr.concat of the NetCDF files: {not bad}")
assert not bad, bad
PY
