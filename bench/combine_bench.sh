#!/usr/bin/env bash
# Combine N (default 144) single-file reference sets of one model run: ours
# (kerchunk::combine) vs kerchunk 0.2.7 MultiZarrToZarr on the same JSONs,
# in the same run. Inputs: one synthetic dbofs file (fixtures/make_ofs.py)
# translated, cloned N times with shifted ocean_time and per-clone URLs
# (kerchunk/examples/combine_bench.rs). A benchmark, not a test.
#   bench/combine_bench.sh [small|real] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-real}
N=${2:-144}
PY=${PY:-.venv/bin/python}
OUT=$PWD/bench/out/combine
mkdir -p "$OUT"
rm -rf "$OUT/gen"
$PY fixtures/make_ofs.py --model dbofs --kind fields --hour f001 \
    --cycle 2023-03-30T00 --out "$OUT/gen" --scale "$SCALE" >/dev/null
NC=$(ls "$OUT"/gen/*/*.nc)
cargo build -q --release -p kerchunk --example combine_bench
RES=$(COMBINE_BENCH_NC="$NC" COMBINE_BENCH_OUT="$OUT" COMBINE_BENCH_N="$N" \
    target/release/examples/combine_bench | grep '^RESULT')
echo "$RES"
$PY bench/combine_mzz.py "$OUT" "$RES"
