#!/usr/bin/env bash
# Seed fuzz/corpus/<target>/ from fixtures/files and the shared reference docs.
# Corpus dirs are gitignored; re-running only adds files (named by SHA-1).
set -euo pipefail
cd "$(dirname "$0")"
exec python3 seed_corpora.py "$@"
