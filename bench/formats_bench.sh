#!/usr/bin/env bash
# JSON vs Parquet references vs an Icechunk repository for the 144-hour
# model-run aggregate: size on disk, and time to open + read one variable's
# last time step with xarray (JSON/Parquet: fsspec reference filesystem +
# zarr 2; Icechunk: icechunk-python 1.1.21 and 2.3.0 + zarr 3, the reader
# venvs of tests/python/setup-venv-zarr3.sh and setup-venv-icechunk2.sh;
# each timing in a fresh process, imports excluded, median of 7).
#   bench/formats_bench.sh [small|real] [N] [CHUNK_TARGET]
# CHUNK_TARGET (bytes, make_ofs.py --chunk-target) < 4 MiB splits each
# variable into many chunks, as compressed/chunked models have; the default
# reproduces NOS's netCDF-C default chunking (1-2 chunks per variable).
# The 144 inputs are combine_bench's (one synthetic dbofs file cloned with
# shifted ocean_time); here every clone URL is a symlink to that file so the
# data really is read.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-real}
N=${2:-144}
CHUNK=${3:-}
PY=${PY:-.venv/bin/python}
OUT=$PWD/bench/out/formats
rm -rf "$OUT"
mkdir -p "$OUT/data" "$OUT/in"
$PY fixtures/make_ofs.py --model dbofs --kind fields --hour f001 \
    --cycle 2023-03-30T00 --out "$OUT/gen" --scale "$SCALE" ${CHUNK:+--chunk-target "$CHUNK"} >/dev/null
NC=$(ls "$OUT"/gen/*/*.nc)
COMBINE_BENCH_NC="$NC" COMBINE_BENCH_OUT="$OUT" COMBINE_BENCH_N="$N" \
    cargo run -q -p kerchunk --example combine_bench >/dev/null 2>&1
for i in $(seq 1 "$N"); do
  ln -s "$NC" "$OUT/data/nos.dbofs.fields.f$(printf %03d "$i").nc"
done
for f in "$OUT"/in/*.json; do
  sed "s#file:///bench/#file://$OUT/data/#g" "$f" > "$OUT/in.tmp" && mv "$OUT/in.tmp" "$f"
done
cargo build -q -p ingest --bin kerchunk-nos
BIN=target/debug/kerchunk-nos
$BIN combine --concat-dim ocean_time --preset roms "$OUT/run.json" "$OUT"/in/*.json
$BIN combine --concat-dim ocean_time --preset roms "$OUT/run.parq" "$OUT"/in/*.json
# The same aggregate committed to an Icechunk repository (its JSON twin must
# equal run.json).
RUST_LOG=error $BIN combine --concat-dim ocean_time --preset roms "$OUT/run-ic.json" "$OUT"/in/*.json \
    --icechunk "file://$OUT/run.icechunk" >/dev/null
cmp "$OUT/run.json" "$OUT/run-ic.json" && rm "$OUT/run-ic.json"
bash tests/python/setup-venv-zarr3.sh
bash tests/python/setup-venv-icechunk2.sh
export ICE_PYS="${VENV_ZARR3:-$PWD/target/venv-zarr3}/bin/python ${VENV_ICECHUNK2:-$PWD/target/venv-icechunk2}/bin/python"
$PY - "$OUT" "$SCALE" "$N" "${CHUNK:-default}" <<'PYEOF'
import json, os, statistics, subprocess, sys
out, scale, n, chunk = sys.argv[1:5]
VAR = "temp"
probe = r'''
import sys, time
import fsspec, xarray as xr
if sys.argv[3] == "warm":
    import pandas, fastparquet  # what fsspec imports on the first Parquet record
t = time.perf_counter()
fs = fsspec.filesystem("reference", fo=sys.argv[1], remote_protocol="file")
ds = xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False, chunks=None)
v = ds[sys.argv[2]].isel(ocean_time=-1).values
print(time.perf_counter() - t, v.size)
'''
ice_probe = r'''
import sys, time, warnings
import icechunk, xarray as xr, zarr
warnings.simplefilter("ignore")
cred = getattr(getattr(icechunk, "credentials", None), "LocalFileSystemAccess", None)
t = time.perf_counter()
repo = icechunk.Repository.open(icechunk.local_filesystem_storage(sys.argv[1]),
                                authorize_virtual_chunk_access={sys.argv[3]: cred})
ds = xr.open_zarr(repo.readonly_session("main").store, consolidated=False, zarr_format=3, chunks=None)
v = ds[sys.argv[2]].isel(ocean_time=-1).values
print(time.perf_counter() - t, v.size, icechunk.__version__)
'''
def size(p):
    if os.path.isfile(p):
        return os.path.getsize(p), 1
    files = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs]
    return sum(os.path.getsize(f) for f in files), len(files)
rows = []
for name, path, mode in (("JSON", f"{out}/run.json", "cold"), ("Parquet", f"{out}/run.parq", "cold"),
                         ("Parquet, pandas+fastparquet imported beforehand", f"{out}/run.parq", "warm")):
    b, nfiles = size(path)
    ts = []
    for _ in range(7):
        r = subprocess.run([sys.executable, "-W", "ignore", "-c", probe, path, VAR, mode],
                           capture_output=True, text=True, check=True)
        t, nvals = r.stdout.split()
        ts.append(float(t))
    rows.append((name, b, nfiles, statistics.median(ts), min(ts), int(nvals)))
env = {**os.environ, "ICECHUNK_LOG": "error"}
for py in os.environ["ICE_PYS"].split():
    path = f"{out}/run.icechunk"
    b, nfiles = size(path)
    ts = []
    for _ in range(7):
        r = subprocess.run([py, "-W", "ignore", "-c", ice_probe, path, VAR, f"file://{out}/data/"],
                           capture_output=True, text=True, check=True, env=env)
        t, nvals, version = r.stdout.split()
        ts.append(float(t))
    assert int(nvals) == rows[0][5], (nvals, rows[0][5])
    rows.append((f"Icechunk (icechunk-python {version})", b, nfiles, statistics.median(ts), min(ts), int(nvals)))
keys = len(json.load(open(f"{out}/run.json"))["refs"])
print(f"\n{n} hourly inputs ({scale} scale, chunk target {chunk}), {keys} references; "
      f"read: {VAR}[ocean_time=-1] ({rows[0][5]} values)\n")
print("| format | size on disk | files | open + read last step, median of 7 (s) | best (s) |")
print("|---|---|---|---|---|")
for name, b, nfiles, med, best, _ in rows:
    print(f"| {name} | {b / 1e6:.2f} MB | {nfiles} | {med:.3f} | {best:.3f} |")
PYEOF
