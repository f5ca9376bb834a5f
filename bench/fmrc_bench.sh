#!/usr/bin/env bash
# Cost of one update_model_run against history length (issue 17): 1, 10 and
# 100 days of synthetic dbofs references (no NetCDF files), incremental vs
# from scratch, wall time and store requests. A benchmark, not a test.
#   bench/fmrc_bench.sh            (release build)
#   PROFILE=dev bench/fmrc_bench.sh
#   FMRC_BENCH_DAYS=1,10 FMRC_BENCH_VARS=40 bench/fmrc_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
cargo build -q --profile "$PROFILE" -p ingest --example fmrc_bench
dir=$PROFILE
[ "$PROFILE" = dev ] && dir=debug
exec "target/$dir/examples/fmrc_bench"
