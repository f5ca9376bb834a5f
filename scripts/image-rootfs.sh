#!/usr/bin/env bash
# Assemble the filesystem of the Dockerfile's final stage (FROM scratch) in a
# directory, without Docker: /kerchunk-nos (mode 0755) and the CA bundle
# /etc/ssl/certs/ca-certificates.crt that `kerchunk-nos ca-bundle` prints
# (its compiled-in roots, for icechunk's S3 client; see the Dockerfile).
#
#   bash scripts/image-rootfs.sh DIR [BINARY]
#
# BINARY defaults to the output of scripts/build-static.sh (built if needed).
# DIR must be absent or empty. Prints the files and the total size, which is
# the image size (scratch adds no layers of its own).
# tests/static/run.sh chroots into this directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:?usage: image-rootfs.sh DIR [BINARY]}"
BIN="${2:-}"
if [[ -z "$BIN" ]]; then
    BIN="$(bash "$ROOT/scripts/build-static.sh" --print-path)"
fi
[[ -x "$BIN" ]] || { echo "image-rootfs: not an executable: $BIN" >&2; exit 1; }
if [[ -d "$DIR" ]] && [[ -n "$(ls -A "$DIR")" ]]; then
    echo "image-rootfs: $DIR is not empty" >&2; exit 1
fi
mkdir -p "$DIR"
# Dockerfile: COPY --from=build /out/kerchunk-nos /kerchunk-nos
install -m 0755 "$BIN" "$DIR/kerchunk-nos"
mkdir -p "$DIR/etc/ssl/certs"
"$BIN" ca-bundle >"$DIR/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$DIR/etc/ssl/certs/ca-certificates.crt"
echo "rootfs: $DIR" >&2
(cd "$DIR" && find . -mindepth 1 -printf '  %M %8s %p\n') >&2
echo "image size: $(du -sb "$DIR" | cut -f1) bytes (binary + CA bundle)" >&2
