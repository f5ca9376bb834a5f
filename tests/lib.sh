# Shell helpers shared by the test scripts (source it; it runs nothing).
#
#   free_port                 print a free 127.0.0.1 TCP port
#   wait_port PORT PID [S]    wait until PORT accepts connections (0), or
#                             PID exits or S seconds (default 60) pass (1)
#   start_moto PY LOG         start moto_server (the one beside PY, the
#                             oracle venv's python) on a free port; sets
#                             MOTO_PORT, MOTO_PID, MOTO_ENDPOINT. Tries three
#                             ports (another test may take the chosen one
#                             before moto binds it); on failure prints the
#                             log's tail and returns 1. The caller stops it:
#   stop_moto                 kill and reap it (safe to call twice)
#   moto_session PY           start_moto with a scratch directory $WORK
#                             (moto's log in it), both removed on exit
#   oracle_python NAME        sets PY: $KERCHUNK_NOS_PYTHON, else the
#                             oracle venv's python; fails naming NAME
#   test_binary NAME          sets BIN: $KERCHUNK_NOS_BIN (run-all passes
#                             the binary its `cargo test` built), else the
#                             debug build, rebuilt now so a stale binary is
#                             never what gets tested; fails naming NAME
#   reader_python KIND        sets RPY: the python of the reader venv
#                             tests/python/setup-venv-KIND.sh makes (zarr3:
#                             icechunk 1.1.x; icechunk2: icechunk 2.x), made
#                             now if missing or stale ($VENV_ZARR3 /
#                             $VENV_ICECHUNK2, else target/venv-KIND)
#   pinned_venv NAME VENV PY REQ CHECK [--pin-python]
#                             create (or reuse) the venv VENV with the
#                             interpreter PY from the pinned requirements
#                             file REQ, then run the Python code CHECK in it;
#                             reused while its stamp matches REQ (with
#                             --pin-python, also PY's version: then a stale
#                             venv is removed first, as a venv cannot change
#                             its interpreter in place); fails naming NAME
#
# Every server binds 127.0.0.1 only, on a port chosen free, never a fixed
# one: several test runs share the machine.

LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
    local port=$1 pid=$2 i
    for ((i = 0; i < ${3:-60} * 20; i++)); do
        # bash's /dev/tcp: no interpreter start-up per probe.
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            # A server of someone else's on our port does not count.
            kill -0 "$pid" 2>/dev/null && return 0
            return 1
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

start_moto() {
    local py=$1 log=$2 moto attempt
    moto=$(dirname "$py")/moto_server
    if [ ! -x "$moto" ]; then
        echo "start_moto: $moto missing (run tests/python/setup-venv.sh)" >&2
        return 1
    fi
    for attempt in 1 2 3; do
        MOTO_PORT=$(free_port)
        "$moto" -H 127.0.0.1 -p "$MOTO_PORT" >"$log" 2>&1 &
        MOTO_PID=$!
        MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT
        if wait_port "$MOTO_PORT" "$MOTO_PID"; then
            return 0
        fi
        stop_moto
    done
    echo "start_moto: moto_server did not start (3 attempts); last log:" >&2
    tail -n 20 "$log" >&2
    return 1
}

stop_moto() {
    if [ -n "${MOTO_PID:-}" ]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=
    fi
}

moto_session() {
    WORK=$(mktemp -d)
    trap 'stop_moto; rm -rf "$WORK"' EXIT
    start_moto "$1" "$WORK/moto.log"
}

oracle_python() {
    PY=${KERCHUNK_NOS_PYTHON:-${VENV:-$LIB_ROOT/.venv}/bin/python}
    [ -x "$PY" ] || { echo "$1: oracle venv missing (run tests/python/setup-venv.sh)" >&2; return 1; }
}

test_binary() {
    if [ -n "${KERCHUNK_NOS_BIN:-}" ]; then
        BIN=$KERCHUNK_NOS_BIN
    else
        (cd "$LIB_ROOT" && cargo build -q -p ingest --bin kerchunk-nos) || return 1
        BIN=${CARGO_TARGET_DIR:-$LIB_ROOT/target}/debug/kerchunk-nos
    fi
    [ -x "$BIN" ] || { echo "$1: no binary at $BIN" >&2; return 1; }
}

reader_python() {
    local var=VENV_${1^^}
    bash "$LIB_ROOT/tests/python/setup-venv-$1.sh" || return 1
    RPY=${!var:-$LIB_ROOT/target/venv-$1}/bin/python
}

pinned_venv() {
    local name=$1 venv=$2 py=$3 req=$4 check=$5 pin=${6:-} want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [ "$pin" = --pin-python ]; then
        want=$( (echo "$want"; "$py" -V) | sha256sum | cut -d' ' -f1)
    fi
    if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    if [ "$pin" = --pin-python ]; then
        rm -rf "$venv"
    fi
    "$py" -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" || return 1
    "$venv/bin/python" -c "$check" || { echo "$name: $venv incomplete" >&2; return 1; }
    echo "$want" >"$venv/.requirements.sha256"
}
