#!/usr/bin/env bash
# Combine 144 single-file reference sets (~84 variables each, cloned from one
# translated synthetic dbofs file with shifted ocean_time/URLs): ours vs
# kerchunk 0.2.7 MultiZarrToZarr on the same 144 JSONs, same run.
#   bench/combine_bench.sh [small|real] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-small}
N=${2:-144}
PY=${PY:-.venv/bin/python}
OUT=$PWD/bench/out/combine
mkdir -p "$OUT"
rm -rf "$OUT/gen"
$PY "$(dirname "$0")/../fixtures/make_ofs.py" --model dbofs --kind fields --hour f001 \
    --cycle 2023-03-30T00 --out "$OUT/gen" --scale "$SCALE" >/dev/null
NC=$(ls "$OUT"/gen/*/*.nc)
RES=$(COMBINE_BENCH_NC="$NC" COMBINE_BENCH_OUT="$OUT" COMBINE_BENCH_N="$N" \
    cargo run -q --release -p kerchunk --example combine_bench 2>/dev/null \
    | grep '^RESULT')
echo "$RES"
$PY - "$OUT" "$RES" <<'PYEOF'
import glob, json, sys, time
import ujson
from kerchunk.combine import MultiZarrToZarr
out, res = sys.argv[1], sys.argv[2]
r = dict(kv.split("=") for kv in res.split()[1:])
paths = sorted(glob.glob(f"{out}/in/*.json"))
ident = ["eta_rho", "xi_rho", "s_rho", "eta_psi", "xi_psi", "s_w", "eta_u", "xi_u", "eta_v",
         "xi_v", "lat_rho", "lat_psi", "lat_u", "lat_v", "lon_rho", "lon_psi", "lon_u", "lon_v"]
dicts = [json.load(open(p)) for p in paths]
t = time.perf_counter()
m = MultiZarrToZarr(dicts, concat_dims=["ocean_time"], identical_dims=ident,
                    remote_protocol="file").translate()
mzz = time.perf_counter() - t
t = time.perf_counter()
m2 = MultiZarrToZarr(paths, concat_dims=["ocean_time"], identical_dims=ident,
                     remote_protocol="file").translate()
with open(f"{out}/mzz.json", "w") as f:
    ujson.dump(m2, f)
mzz_full = time.perf_counter() - t
ours, ours_full = float(r["combine_s"]), float(r["parse_combine_write_s"])
print()
print("| inputs | vars/input | input keys | ours combine (s) | ours parse+combine+write (s) | MZZ translate on dicts (s) | MZZ read+translate+write (s) | speed-up (combine) | MZZ out keys | ours out keys (first / stack) |")
print("|---|---|---|---|---|---|---|---|---|---|")
print(f"| {r['inputs']} | {r['vars']} | {r['input_keys']} | {ours:.4f} | {ours_full:.4f} | {mzz:.2f} | {mzz_full:.2f} | {mzz/ours:.0f}x | {len(m['refs'])} | {r['out_keys']} / {r['stack_out_keys']} |")
PYEOF
