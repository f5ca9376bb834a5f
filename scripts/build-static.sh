#!/usr/bin/env bash
# Build the fully static kerchunk-nos binary (x86_64 musl, static-pie).
#
#   bash scripts/build-static.sh            # build, verify, print path + size
#   bash scripts/build-static.sh --print-path   # same, but stdout is only the path
#   bash scripts/build-static.sh --locked       # extra arguments go to cargo build
#
# Installs what is missing (scripts/musl-setup.sh): the rustup target
# x86_64-unknown-linux-musl and (Debian/Ubuntu, as root) musl-tools, whose
# x86_64-linux-musl-gcc compiles aws-lc-sys. TLS is rustls + aws-lc with
# compiled-in webpki roots, so the binary needs nothing from the filesystem:
# it runs in an empty root / FROM scratch image (see tests/static/run.sh, scripts/image-rootfs.sh).
#
# This is the release build (thin LTO, stripped) that the Dockerfile ships.
# tests/run-all.sh does not build it: it tests the dev-profile musl binary
# its `cargo test --target x86_64-unknown-linux-musl` already built (same
# target, same static linking; one compile instead of two).
#
# Honors CARGO_TARGET_DIR (default: <repo>/target). Output:
#   $CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/kerchunk-nos
set -euo pipefail

TARGET=x86_64-unknown-linux-musl
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRINT_PATH=0
CARGO_ARGS=()
for a in "$@"; do
    if [[ "$a" == "--print-path" ]]; then PRINT_PATH=1; else CARGO_ARGS+=("$a"); fi
done

log() { echo "build-static: $*" >&2; }
die() { log "error: $*"; exit 1; }

bash "$ROOT/scripts/musl-setup.sh" || die "cannot set up the musl target (scripts/musl-setup.sh)"
command -v file >/dev/null || die "'file' is needed to verify the result (apt-get install file)"

# The cc crate finds x86_64-linux-musl-gcc by itself; be explicit anyway.
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-x86_64-linux-musl-gcc}"

log "cargo build --release --target $TARGET -p ingest ${CARGO_ARGS[*]:-}"
(cd "$ROOT" && cargo build --release --target "$TARGET" -p ingest "${CARGO_ARGS[@]}" >&2)

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/$TARGET/release/kerchunk-nos"
[[ -x "$BIN" ]] || die "expected binary not found: $BIN"

DESC="$(file -b "$BIN")"
case "$DESC" in
    *"dynamically linked"*) die "not static: $DESC" ;;
    *"statically linked"*|*"static-pie linked"*) ;;
    *) die "cannot tell whether it is static: $DESC" ;;
esac
if readelf -l "$BIN" 2>/dev/null | grep -q "INTERP"; then
    die "has a program interpreter (dynamic): $BIN"
fi

SIZE=$(stat -c %s "$BIN")
if [[ $PRINT_PATH == 1 ]]; then
    log "$DESC"
    log "size: $SIZE bytes ($(numfmt --to=iec --suffix=B "$SIZE" 2>/dev/null || echo "$SIZE B"))"
    echo "$BIN"
else
    echo "binary: $BIN"
    echo "file:   $DESC"
    echo "size:   $SIZE bytes ($(numfmt --to=iec --suffix=B "$SIZE" 2>/dev/null || echo "$SIZE B"))"
fi
