#!/usr/bin/env bash
# Cost of one update_model_run against history length (issue 17): 1, 10 and
# 100 days of synthetic dbofs references (no NetCDF files), incremental vs
# from scratch, wall time and store requests. A benchmark, not a test.
#   bench/fmrc_bench.sh                 (release build)
#   PROFILE=dev bench/fmrc_bench.sh     (the test build, nothing optimized)
#   PROFILE=dev-opt bench/fmrc_bench.sh (dev build, our four crates at
#                                        opt-level 3, dependencies reused
#                                        from the test build: cheap on a
#                                        shared machine)
#   FMRC_BENCH_DAYS=1,10 FMRC_BENCH_VARS=40 FMRC_BENCH_STORE=local bench/fmrc_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
case "$PROFILE" in
  dev-opt)
    opt=()
    for p in kerchunk ingest hdf5-lite ofs-keys; do
      opt+=(--config "profile.dev.package.$p.opt-level=3")
    done
    cargo build -q -p ingest --example fmrc_bench "${opt[@]}"
    dir=debug ;;
  dev) cargo build -q -p ingest --example fmrc_bench; dir=debug ;;
  *) cargo build -q --profile "$PROFILE" -p ingest --example fmrc_bench; dir=$PROFILE ;;
esac
exec "target/$dir/examples/fmrc_bench"
