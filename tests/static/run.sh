#!/usr/bin/env bash
# CI test of the static binary, run inside the image's filesystem.
#
#   bash tests/static/run.sh [BINARY]
#
# BINARY defaults to the output of scripts/build-static.sh (built if needed:
# a cold release musl build takes ~5 min on 2 cores). tests/run-all.sh passes
# the dev-profile musl binary its `cargo test --target
# x86_64-unknown-linux-musl` built: the same static linking and code, without
# a second compile (the release build's size is printed by build-static.sh).
# The script then
#   * checks the binary is static (file, ldd, no PT_INTERP);
#   * assembles the FROM-scratch image filesystem with scripts/image-rootfs.sh
#     (a directory holding only /kerchunk-nos and the CA bundle
#     /etc/ssl/certs/ca-certificates.crt; no /dev, /proc, /tmp, other /etc)
#     and checks the Dockerfile's final stage is that same filesystem;
#   * runs the binary chrooted into that directory as uid/gid 65534 (the
#     image's USER) with an empty environment plus what each check sets:
#       --help; dump of the seed's tbofs SNS message;
#       refs over HTTP (bench/range_server.py on loopback) == refs of the
#         local file with the same --url;
#       refs s3://noaa-ofs-pds/KEY against moto == local refs;
#       extract_single '<SNS message for that key>' dest-bucket nos against
#         moto -> s3://dest-bucket/nos/nos.dbofs.fields.f001.20230323.t12z.nc.zarr;
#       update_model_run --output-format json,icechunk for that reference
#         -> the JSON aggregates and commits to the Icechunk repository
#         s3://dest-bucket/nos/icechunk/dbofs (icechunk's S3 client needs the
#         CA bundle even for http: debug builds panic without one);
#   * measures the binary (= image) size and the cold start of `--help`
#     (hyperfine -N --runs 200; goal < 50 ms).
# Needs root (chroot; as non-root it uses `unshare -r --root`), python3, the
# oracle venv .venv with moto + boto3 (tests/python/setup-venv.sh), and
# hyperfine (installed with apt-get when missing and root).
# Ends with `static: N passed, N failed`; exit status 1 if anything failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${KERCHUNK_NOS_PYTHON:-$ROOT/.venv/bin/python}"
FIXTURE_REL="ofs/dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc"
FIXTURE="$ROOT/fixtures/files/$FIXTURE_REL"
SRC_BUCKET=noaa-ofs-pds
SRC_KEY="dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc"
DEST_BUCKET=dest-bucket
DEST_KEY="nos/nos.dbofs.fields.f001.20230323.t12z.nc.zarr"
SEED_MSG="$ROOT/tests/static/messages/new-ofs-object-tbofs.json"
COLD_START_GOAL_MS=50

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
finish() {
    echo "static: $PASSED passed, $FAILED failed"
    [[ $FAILED == 0 ]]
    exit $?
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kerchunk-nos-static.XXXXXX")"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- binary
BIN="${1:-}"
if [[ -z "$BIN" ]]; then
    if ! BIN="$(bash "$ROOT/scripts/build-static.sh" --print-path)"; then
        fail "build: scripts/build-static.sh failed"
        finish
    fi
fi
BIN="$(readlink -f "$BIN")"
if [[ ! -x "$BIN" ]]; then
    fail "binary: not an executable: $BIN"
    finish
fi
echo "binary: $BIN"

desc="$(file -b "$BIN")"
case "$desc" in
    *"dynamically linked"*) fail "static: file says dynamic: $desc" ;;
    *"statically linked"*|*"static-pie linked"*) pass "static: file: $desc" ;;
    *) fail "static: file cannot tell: $desc" ;;
esac
lddout="$(ldd "$BIN" 2>&1)"
case "$lddout" in
    *"statically linked"*|*"not a dynamic executable"*) pass "static: ldd: $lddout" ;;
    *) fail "static: ldd lists libraries: $lddout" ;;
esac
if readelf -lW "$BIN" | grep -q 'INTERP'; then
    fail "static: has a PT_INTERP program header"
else
    pass "static: no program interpreter"
fi

# ---------------------------------------------------------------- rootfs
RFS="$WORK/rootfs"
if bash "$ROOT/scripts/image-rootfs.sh" "$RFS" "$BIN" 2>"$WORK/rootfs.log"; then
    entries="$(cd "$RFS" && find . -mindepth 1 | sort | tr '\n' ' ')"
    if [[ "$entries" == "./etc ./etc/ssl ./etc/ssl/certs ./etc/ssl/certs/ca-certificates.crt ./kerchunk-nos " ]] \
        && [[ "$(grep -c 'BEGIN CERTIFICATE' "$RFS/etc/ssl/certs/ca-certificates.crt")" -gt 100 ]]; then
        pass "rootfs: holds only /kerchunk-nos and its CA bundle"
    else
        fail "rootfs: unexpected entries: $entries"
    fi
else
    cat "$WORK/rootfs.log"
    fail "rootfs: scripts/image-rootfs.sh failed"
    finish
fi
# The Dockerfile's final stage must be that filesystem: FROM scratch, a COPY
# of the binary to /kerchunk-nos and one of the CA bundle, no RUN (there is
# no shell), the entrypoint /kerchunk-nos.
final_stage="$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$ROOT/Dockerfile" \
    | grep -vE '^\s*(#|$)')"
if grep -qx 'FROM scratch' <<<"$final_stage" \
    && [[ "$(grep -c '^COPY' <<<"$final_stage")" == 2 ]] \
    && grep -qE '^COPY --from=[a-z]+ \S+ /kerchunk-nos$' <<<"$final_stage" \
    && grep -qE '^COPY --from=[a-z]+ \S+ /etc/ssl/certs/ca-certificates.crt$' <<<"$final_stage" \
    && ! grep -qE '^(RUN|ADD)' <<<"$final_stage" \
    && grep -qx 'ENTRYPOINT \["/kerchunk-nos"\]' <<<"$final_stage" \
    && grep -qx 'USER 65534:65534' <<<"$final_stage"; then
    pass "Dockerfile: final stage = scratch + /kerchunk-nos + CA bundle, USER 65534, ENTRYPOINT"
else
    fail "Dockerfile: final stage differs from scripts/image-rootfs.sh:"$'\n'"$final_stage"
fi

# Run the binary in the empty root as the image's user, environment empty
# except for the NAME=VALUE words before `--`.
CHROOT="$(command -v chroot || echo /usr/sbin/chroot)"
UNSHARE="$(command -v unshare || echo /usr/bin/unshare)"
if [[ "$(id -u)" == 0 ]]; then
    in_image() {
        local envs=()
        while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
        shift
        env -i "${envs[@]}" "$CHROOT" --userspec=65534:65534 "$RFS" /kerchunk-nos "$@"
    }
    echo "running in the image root with: chroot --userspec=65534:65534 $RFS"
else
    in_image() {
        local envs=()
        while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
        shift
        env -i "${envs[@]}" "$UNSHARE" -r --root="$RFS" /kerchunk-nos "$@"
    }
    echo "running in the image root with: unshare -r --root=$RFS"
fi

# ---------------------------------------------------------------- --help
if in_image -- --help >"$WORK/help.out" 2>&1 && grep -q '^Usage: kerchunk-nos' "$WORK/help.out"; then
    pass "chroot: --help"
else
    cat "$WORK/help.out"
    fail "chroot: --help"
fi

# ---------------------------------------------------------------- dump
if in_image -- dump "$(cat "$SEED_MSG")" >"$WORK/dump.out" 2>"$WORK/dump.err" \
    && python3 - "$WORK/dump.out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
r = d[0] if isinstance(d, list) else d
assert len(d) == 1, d
assert r["bucket"] == "noaa-ofs-pds", r
assert r["key"] == "tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc", r
EOF
then
    pass "chroot: dump of the seed's tbofs SNS message"
else
    cat "$WORK/dump.out" "$WORK/dump.err"
    fail "chroot: dump of the seed's tbofs SNS message"
fi

# ---------------------------------------------------------------- helpers
. "$ROOT/tests/lib.sh" # free_port, wait_port, start_moto

# Local refs (outside the root: the file is not in it) with a given --url.
local_refs() { "$BIN" refs "$FIXTURE" --url "$1" >"$2" 2>"$2.err"; }
same_json() { python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))==json.load(open(sys.argv[2])) else 1)' "$1" "$2"; }

# ---------------------------------------------------------------- HTTP
HTTP_PORT_FILE="$WORK/http.port"
python3 "$ROOT/bench/range_server.py" --root "$ROOT/fixtures/files" --host 127.0.0.1 --port 0 \
    --delay-ms 0 --port-file "$HTTP_PORT_FILE" >"$WORK/http.log" 2>&1 &
PIDS+=($!)
HTTP_PID=$!
for _ in $(seq 100); do [[ -s "$HTTP_PORT_FILE" ]] && break; sleep 0.1; done
if [[ -s "$HTTP_PORT_FILE" ]] && wait_port "$(cat "$HTTP_PORT_FILE")" "$HTTP_PID"; then
    URL="http://127.0.0.1:$(cat "$HTTP_PORT_FILE")/$FIXTURE_REL"
    if in_image -- refs "$URL" --url "$URL" >"$WORK/http.json" 2>"$WORK/http.err" \
        && local_refs "$URL" "$WORK/http-local.json" && same_json "$WORK/http.json" "$WORK/http-local.json"; then
        pass "chroot: refs over HTTP ($URL) == refs of the local file"
    else
        cat "$WORK/http.err" "$WORK/http-local.json.err" 2>/dev/null | tail -n 5
        fail "chroot: refs over HTTP == refs of the local file"
    fi
else
    cat "$WORK/http.log"
    fail "HTTP: range_server.py did not start"
fi

# ---------------------------------------------------------------- S3 (moto)
if [[ ! -x "$PY" || ! -x "$(dirname "$PY")/moto_server" ]]; then
    fail "S3: no moto venv at $(dirname "$PY") (run tests/python/setup-venv.sh)"
else
    if start_moto "$PY" "$WORK/moto.log"; then PIDS+=($MOTO_PID); fi
    ENDPOINT=$MOTO_ENDPOINT
    AWS_ENV=(AWS_ENDPOINT_URL="$ENDPOINT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
             AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true)
    if [[ -z "${MOTO_PID:-}" ]]; then
        fail "S3: moto_server did not start"
    elif ! env "${AWS_ENV[@]}" "$PY" - "$FIXTURE" "$SRC_BUCKET" "$SRC_KEY" "$DEST_BUCKET" "$WORK/s3msg.json" <<'EOF'
import json, sys, boto3
fixture, src, key, dest, msg_path = sys.argv[1:]
s3 = boto3.client("s3")
s3.create_bucket(Bucket=src)
s3.create_bucket(Bucket=dest)
body = open(fixture, "rb").read()
# public-read, as the NOAA buckets: kerchunk-nos reads them unsigned, and
# moto (like AWS) denies unsigned reads of private objects.
etag = s3.put_object(Bucket=src, Key=key, Body=body, ACL="public-read")["ETag"].strip('"')
event = {"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
    "eventTime": "2023-03-23T13:05:02.101Z", "eventName": "ObjectCreated:Put",
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "static-test",
           "bucket": {"name": src, "arn": f"arn:aws:s3:::{src}"},
           "object": {"key": key, "size": len(body), "eTag": etag}}}]}
envelope = {
    "Type": "Notification", "MessageId": "00000000-0000-0000-0000-000000000001",
    "TopicArn": "arn:aws:sns:us-east-1:123901341784:NewOFSObject",
    "Subject": "Amazon S3 Notification", "Message": json.dumps(event),
    "Timestamp": "2023-03-23T13:05:03.000Z", "SignatureVersion": "1",
    "Signature": "x", "SigningCertURL": "https://example.invalid/c.pem",
    "UnsubscribeURL": "https://example.invalid/u"}
open(msg_path, "w").write(json.dumps(envelope))
EOF
    then
        fail "S3: cannot set up buckets in moto"
    else
        # S3 read: refs straight from s3:// inside the empty root.
        S3URL="s3://$SRC_BUCKET/$SRC_KEY"
        if in_image "${AWS_ENV[@]}" -- refs "$S3URL" >"$WORK/s3.json" 2>"$WORK/s3.err" \
            && local_refs "$S3URL" "$WORK/s3-local.json" && same_json "$WORK/s3.json" "$WORK/s3-local.json"; then
            pass "chroot: refs $S3URL (moto) == refs of the local file"
        else
            tail -n 5 "$WORK/s3.err"
            fail "chroot: refs $S3URL (moto) == refs of the local file"
        fi
        # S3 read + write: the Argo verb.
        if ! "$BIN" extract_single --help >/dev/null 2>&1; then
            fail "chroot: extract_single (PENDING: the CLI has no extract_single verb yet)"
        else
            in_image "${AWS_ENV[@]}" -- extract_single "$(cat "$WORK/s3msg.json")" "$DEST_BUCKET" nos \
                >"$WORK/extract.out" 2>"$WORK/extract.err"
            rc=$?
            if [[ $rc == 0 ]] && env "${AWS_ENV[@]}" "$PY" - "$DEST_BUCKET" "$DEST_KEY" "$S3URL" <<'EOF'
import json, sys, boto3
dest, key, src_url = sys.argv[1:]
refs = json.loads(boto3.client("s3").get_object(Bucket=dest, Key=key)["Body"].read())
assert refs.get("version") == 1, list(refs)
urls = {v[0] for v in refs["refs"].values() if isinstance(v, list) and v}
assert urls == {src_url}, urls
print(f"  s3://{dest}/{key}: {len(refs['refs'])} refs -> {src_url}")
EOF
            then
                pass "chroot: extract_single (moto) wrote s3://$DEST_BUCKET/$DEST_KEY"
            else
                echo "  exit code $rc"; tail -n 5 "$WORK/extract.out" "$WORK/extract.err"
                fail "chroot: extract_single (moto) -> s3://$DEST_BUCKET/$DEST_KEY"
            fi
            # The update verb with Icechunk output: the JSON aggregates and
            # commits to s3://dest-bucket/nos/icechunk/dbofs (run + best).
            UPD_MSG="{\"Records\": [{\"eventSource\": \"aws:s3\", \"eventName\": \"ObjectCreated:Put\", \"eventTime\": \"2023-03-23T13:06:00.000Z\", \"s3\": {\"bucket\": {\"name\": \"$DEST_BUCKET\"}, \"object\": {\"key\": \"$DEST_KEY\"}}}]}"
            in_image "${AWS_ENV[@]}" -- update_model_run "$UPD_MSG" --output-format json,icechunk \
                >"$WORK/update.out" 2>"$WORK/update.err"
            rc=$?
            if [[ $rc == 0 ]] && env "${AWS_ENV[@]}" "$PY" - "$DEST_BUCKET" <<'EOF'
import json, sys, boto3
dest = sys.argv[1]
s3 = boto3.client("s3")
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=dest, Prefix="nos/")["Contents"]]
for k in ("nos/nos.dbofs.fields.20230323.t12z.nc.zarr", "nos/nos.dbofs.fields.best.nc.zarr",
          "nos/icechunk/dbofs/refs/branch.main/ref.json"):
    assert k in keys, (k, keys)
snaps = [k for k in keys if k.startswith("nos/icechunk/dbofs/snapshots/")]
# the repository's first commit, then one for the run and one for the best series
assert len(snaps) == 3, snaps
print(f"  s3://{dest}/nos/icechunk/dbofs: {len(snaps)} snapshots")
EOF
            then
                pass "chroot: update_model_run --output-format json,icechunk (moto) committed to s3://$DEST_BUCKET/nos/icechunk/dbofs"
            else
                echo "  exit code $rc"; tail -n 5 "$WORK/update.out" "$WORK/update.err"
                fail "chroot: update_model_run --output-format json,icechunk (moto)"
            fi
        fi
    fi
fi

# ---------------------------------------------------------------- size, cold start
SIZE="$(stat -c %s "$RFS/kerchunk-nos")"
echo "binary size: $SIZE bytes ($(numfmt --to=iec --suffix=B "$SIZE")); image size (FROM scratch) = binary + CA bundle ($(stat -c %s "$RFS/etc/ssl/certs/ca-certificates.crt") bytes)"
case "$BIN" in
    */release/*) ;;
    *) echo "  (not a release build: the image ships scripts/build-static.sh's smaller, stripped binary)" ;;
esac
if ! command -v hyperfine >/dev/null && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    (apt-get install -y -qq hyperfine || { apt-get update -qq && apt-get install -y -qq hyperfine; }) >/dev/null 2>&1
fi
if command -v hyperfine >/dev/null; then
    if hyperfine -N --runs 200 --warmup 5 --export-json "$WORK/hf.json" "$RFS/kerchunk-nos --help" \
        >"$WORK/hf.out" 2>&1; then
        mean_ms="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f ms mean, %.2f ms sd, %.2f ms max" % (r["mean"]*1e3, r["stddev"]*1e3, r["max"]*1e3))' "$WORK/hf.json")"
        ok_goal="$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["results"][0]["mean"]*1e3 < float(sys.argv[2])))' "$WORK/hf.json" "$COLD_START_GOAL_MS")"
        echo "cold start of --help (hyperfine -N, 200 runs): $mean_ms"
        if [[ "$ok_goal" == 1 ]]; then
            pass "cold start of --help < $COLD_START_GOAL_MS ms ($mean_ms)"
        else
            fail "cold start of --help >= $COLD_START_GOAL_MS ms ($mean_ms)"
        fi
    else
        cat "$WORK/hf.out"
        fail "hyperfine failed"
    fi
else
    fail "cold start: hyperfine not installed (apt-get install -y hyperfine)"
fi

finish
