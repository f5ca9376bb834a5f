#!/usr/bin/env bash
# End-to-end test of hdf5-lite's S3Source against moto (local S3).
#
# Starts moto_server from the project venv, uploads fixture files with boto3,
# runs `kerchunk-nos inspect s3://bucket/key --stats` with AWS_ENDPOINT_URL
# pointing at moto, and compares the JSON and the counters with the output
# for the local file. Also checks anonymous (unsigned) access to a bucket
# named like the public NOAA bucket, a key with spaces and `+`, and that a
# missing key fails with a message naming the object.
#
# Env: KERCHUNK_NOS_BIN (default target/debug/kerchunk-nos, rebuilt unless
# KERCHUNK_NOS_BIN is set), VENV (default .venv).
# Exit status: 0 when every check passed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/fixtures/files
. "$ROOT/tests/lib.sh"
oracle_python s3_source_test
test_binary s3_source_test
moto_session "$PY"

export AWS_ENDPOINT_URL=$MOTO_ENDPOINT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 || true

# Fixtures: name in fixtures/files -> key. One key has a space and a '+'.
FILES=(
    netcdf4_features.nc
    netcdf4_classic.nc
    sb0_v1btree_chunks.h5
    sb3_datasets_all_types.h5
    latest_chunk_indexes.h5
    sb3_dense_attrs.h5
)
OFS=$(cd "$FIX" && find ofs -type f -name "*.nc" | sort | head -n 2)

"$PY" - "$FIX" "${FILES[@]}" $OFS <<'EOF'
import sys, boto3
fix, names = sys.argv[1], sys.argv[2:]
s3 = boto3.client("s3")
s3.create_bucket(Bucket="kn-test")
for n in names:
    s3.upload_file(f"{fix}/{n}", "kn-test", f"fixtures/{n}")
s3.upload_file(f"{fix}/{names[0]}", "kn-test", "odd keys/a b+c.nc")
# Anonymous access: a bucket named like a public NOAA bucket is read unsigned.
# moto denies unsigned requests unless the object is public, as AWS does.
s3.create_bucket(Bucket="noaa-ofs-pds")
s3.upload_file(f"{fix}/{names[0]}", "noaa-ofs-pds", f"dbofs.20260720/{names[0]}",
               ExtraArgs={"ACL": "public-read"})
s3.upload_file(f"{fix}/{names[0]}", "noaa-ofs-pds", "private/x.nc")
EOF

pass=0
fail=0
check() { # name, local file, url, [extra env assignments...]
    local name=$1 file=$2 url=$3
    shift 3
    if ! "$BIN" inspect "$file" --stats >"$WORK/local.json" 2>"$WORK/local.err"; then
        echo "FAIL $name: local inspect failed: $(cat "$WORK/local.err")"
        fail=$((fail + 1))
        return
    fi
    if ! env "$@" "$BIN" inspect "$url" --stats >"$WORK/remote.json" 2>"$WORK/remote.err"; then
        echo "FAIL $name: $url: $(cat "$WORK/remote.err")"
        fail=$((fail + 1))
        return
    fi
    if "$PY" - "$WORK" "$url" >"$WORK/cmp.out" <<'EOF'
import json, sys
w, url = sys.argv[1], sys.argv[2]
local, remote = json.load(open(f"{w}/local.json")), json.load(open(f"{w}/remote.json"))
assert remote["source"] == url, (remote["source"], url)
local["source"] = remote["source"] = None
if local != remote:
    sys.exit("inspect JSON differs")
def stats(p):
    lines = [l for l in open(p) if l.startswith("{")]
    return json.loads(lines[-1])
ls, rs = stats(f"{w}/local.err"), stats(f"{w}/remote.err")
for k in ("requests", "waves", "bytes_fetched", "file_size"):
    if ls.get(k) != rs.get(k):
        sys.exit(f"stats differ: {k} local={ls.get(k)} s3={rs.get(k)}")
print(rs)
EOF
    then
        echo "ok   $name: $(tail -n 1 "$WORK/cmp.out")"
        pass=$((pass + 1))
    else
        echo "FAIL $name: $(cat "$WORK/cmp.out")"
        fail=$((fail + 1))
    fi
}

for n in "${FILES[@]}" $OFS; do
    check "$n" "$FIX/$n" "s3://kn-test/fixtures/$n"
done
check "key with space and +" "$FIX/${FILES[0]}" "s3://kn-test/odd keys/a b+c.nc"
check "anonymous public bucket" "$FIX/${FILES[0]}" "s3://noaa-ofs-pds/dbofs.20260720/${FILES[0]}" \
    -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent

# Proof that the anonymous requests above were unsigned: a private object in
# the same bucket is refused (403) without credentials.
if env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    AWS_CONFIG_FILE=/nonexistent "$BIN" inspect "s3://noaa-ofs-pds/private/x.nc" >/dev/null 2>"$WORK/anon.err"; then
    echo "FAIL anonymous private object: read succeeded, so requests were signed"
    fail=$((fail + 1))
elif grep -q "403" "$WORK/anon.err"; then
    echo "ok   anonymous private object refused: $(head -c 200 "$WORK/anon.err")"
    pass=$((pass + 1))
else
    echo "FAIL anonymous private object: unexpected error: $(cat "$WORK/anon.err")"
    fail=$((fail + 1))
fi

# A missing key fails permanently (exit 1: retrying cannot help), naming the
# object and what is wrong with it.
rc=0
"$BIN" inspect "s3://kn-test/no/such.nc" >"$WORK/missing.out" 2>"$WORK/missing.err" || rc=$?
if [ "$rc" -eq 0 ]; then
    echo "FAIL missing key: inspect succeeded"
    fail=$((fail + 1))
elif [ "$rc" -eq 1 ] && grep -q "s3://kn-test/no/such.nc" "$WORK/missing.err" && grep -q "no such object" "$WORK/missing.err"; then
    echo "ok   missing key: $(head -c 300 "$WORK/missing.err")"
    pass=$((pass + 1))
else
    echo "FAIL missing key: unexpected error: $(cat "$WORK/missing.err")"
    fail=$((fail + 1))
fi

echo "s3_source_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
