#!/usr/bin/env bash
# Build the release binary and run the HTTP metadata-scan benchmark
# (see bench/bench.py). Extra arguments go to bench.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release -p ingest
exec "$ROOT/.venv/bin/python" "$ROOT/bench/bench.py" "$@"
