#!/usr/bin/env bash
# Make sure this machine can compile for x86_64-unknown-linux-musl: the
# rustup target, and (Debian/Ubuntu, as root or with sudo) musl-tools, whose
# x86_64-linux-musl-gcc compiles aws-lc-sys's C for musl. Used by
# scripts/build-static.sh (the release binary) and tests/run-all.sh (which
# builds and runs the whole test suite for this target, so the tests and the
# static binary under test share one compile). Prints nothing on success when
# everything is already there; exits 1 saying what is missing otherwise.
set -euo pipefail
TARGET=x86_64-unknown-linux-musl
log() { echo "musl-setup: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v cargo >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    command -v rustup >/dev/null || die "rustup not found; install the $TARGET std another way"
    log "adding rust target $TARGET"
    rustup target add "$TARGET" >&2
fi
if ! command -v x86_64-linux-musl-gcc >/dev/null; then
    command -v apt-get >/dev/null || die "x86_64-linux-musl-gcc missing and no apt-get: install musl-tools (musl-gcc)"
    SUDO=""
    [[ "$(id -u)" != 0 ]] && SUDO="sudo"
    log "installing musl-tools"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq musl-tools >&2
fi
command -v x86_64-linux-musl-gcc >/dev/null || die "x86_64-linux-musl-gcc still missing"
