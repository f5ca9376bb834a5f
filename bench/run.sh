#!/usr/bin/env bash
# Build the bench-profile binary (release optimizations without LTO, see
# Cargo.toml; it lands in target/release) and run the HTTP metadata-scan
# benchmark (see bench/bench.py). Extra arguments go to bench.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --profile bench -p ingest
exec "$ROOT/.venv/bin/python" "$ROOT/bench/bench.py" "$@"
