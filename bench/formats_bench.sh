#!/usr/bin/env bash
# JSON vs Parquet references for the 144-hour model-run aggregate: size on
# disk, and time to open + read one variable's last time step with xarray
# (fsspec reference filesystem + zarr 2; each timing in a fresh process,
# imports excluded, median of 7).
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
keys = len(json.load(open(f"{out}/run.json"))["refs"])
print(f"\n{n} hourly inputs ({scale} scale, chunk target {chunk}), {keys} references; "
      f"read: {VAR}[ocean_time=-1] ({rows[0][5]} values)\n")
print("| format | size on disk | files | open + read last step, median of 7 (s) | best (s) |")
print("|---|---|---|---|---|")
for name, b, nfiles, med, best, _ in rows:
    print(f"| {name} | {b / 1e6:.2f} MB | {nfiles} | {med:.3f} | {best:.3f} |")
PYEOF
