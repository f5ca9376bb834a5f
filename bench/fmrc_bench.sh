#!/usr/bin/env bash
# Cost of one update_model_run against history length (issue 17): 1, 10 and
# 100 days of synthetic dbofs references (no NetCDF files), incremental vs
# from scratch, wall time (in the store / compute) and store requests;
# history lengths interleaved, median and p25-p75 over FMRC_BENCH_ROUNDS x 6
# updates. A benchmark, not a test.
#   bench/fmrc_bench.sh                 (`bench` profile: release without
#                                        LTO, 16 codegen units; cargo puts
#                                        it in target/release)
#   PROFILE=dev bench/fmrc_bench.sh     (the test build, nothing optimized)
#   PROFILE=dev-opt bench/fmrc_bench.sh (dev build, our four crates at
#                                        opt-level 3, dependencies reused
#                                        from the test build: cheap on a
#                                        shared machine)
#   PROFILE=release bench/fmrc_bench.sh (with LTO: ~20 min to build here)
#   FMRC_BENCH_DAYS=1,10 FMRC_BENCH_ROUNDS=8 FMRC_BENCH_FULL_ROUNDS=1 \
#     FMRC_BENCH_VARS=40 FMRC_BENCH_STORE=local bench/fmrc_bench.sh
#   MODE=cli bench/fmrc_bench.sh        (what issue 17 measured: the
#                                        command `kerchunk-nos update_model_run
#                                        MESSAGE --dest file://DIR`, one
#                                        process per update, on the local
#                                        store; default days 1,10)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-bench}
MODE=${MODE:-inprocess}
bin=()
if [ "$MODE" = cli ]; then
  bin=(--bin kerchunk-nos)
  export FMRC_BENCH_DAYS=${FMRC_BENCH_DAYS:-1,10}
fi
case "$PROFILE" in
  dev-opt)
    opt=()
    for p in kerchunk ingest hdf5-lite ofs-keys; do
      opt+=(--config "profile.dev.package.$p.opt-level=3")
    done
    cargo build -q -p ingest --example fmrc_bench "${bin[@]}" "${opt[@]}"
    dir=debug ;;
  dev) cargo build -q -p ingest --example fmrc_bench "${bin[@]}"; dir=debug ;;
  bench) cargo build -q --profile bench -p ingest --example fmrc_bench "${bin[@]}"; dir=release ;;
  *) cargo build -q --profile "$PROFILE" -p ingest --example fmrc_bench "${bin[@]}"; dir=$PROFILE ;;
esac
if [ "$MODE" = cli ]; then
  export FMRC_BENCH_CLI="$PWD/target/$dir/kerchunk-nos"
fi
exec "target/$dir/examples/fmrc_bench"
