#!/usr/bin/env python3
"""`update_model_run --output-format json,icechunk` against moto S3.

Runs in the oracle venv (boto3, moto; the shell script starts moto_server);
reads the repository back with icechunk-python 1.1 + zarr 3 + xarray through
tests/python/read_icechunk_groups.py in the zarr3 venv, against `xr.concat`
of the NetCDF files.

* Same cycle, racing: update A (member f002) is held by tests/e2e/hold_proxy.py
  at its commit (the PutObject of the branch ref), update B (f003) runs to
  completion meanwhile; then A goes on. Both exit 0, the run group holds all
  three members, A's log shows it redid its write from the newer anchor.
* Other cycles, racing: A's run commit is held while B commits another
  cycle's run and the best series; A rebases and both run groups are there.
* The best series group equals xr.concat of the five files.
* A redelivered update makes no new snapshot.
* `backfill --output-format json,icechunk` of the same days into another
  bucket gives the same groups, equal to xr.concat.
* Bad input: a --icechunk-root that is not file:// or s3://, a non-empty
  directory that is not a repository, a bucket that does not exist, and a
  group whose arrays conflict with the new members (another grid): exit 1,
  no new snapshot, nothing written.

usage: check_icechunk_pipeline.py BIN ROOT ZARR3_PYTHON MOTO_PORT
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import boto3

BIN, ROOT, ZPY, PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [os.path.join(ROOT, "tests", "e2e"), os.path.join(ROOT, "fixtures")]
import make_ofs  # noqa: E402
from hold_proxy import HoldProxy  # noqa: E402

MOTO = f"http://127.0.0.1:{PORT}"
SRC, DEST = "noaa-ofs-pds", "dest"
REPO_PREFIX = "nos/icechunk/dbofs"
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
           AWS_EC2_METADATA_DISABLED="true", RUST_LOG=os.environ.get("PIPE_LOG", "info,icechunk=warn,icechunk::session=info,aws=warn"))
ENV.pop("AWS_ENDPOINT_URL", None)
passed = failed = 0
T0 = time.monotonic()


def check(ok, what):
    """Counts and prints; returns ok (`check(...) or print(detail)`)."""
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {time.monotonic() - T0:5.1f}s {what}")
    return ok


s3 = boto3.client("s3", endpoint_url=MOTO, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
s3.create_bucket(Bucket=SRC)
s3.create_bucket(Bucket=DEST)
w = tempfile.mkdtemp(prefix="check-icechunk-pipeline-")
src = os.path.join(w, "src")


def make(model, cycle, hour):
    make_ofs.main(["--model", model, "--kind", "fields", "--hour", hour, "--cycle", cycle, "--out", src])
    day = cycle[:10].replace("-", "")
    name = f"nos.{model}.fields.{hour}.{day}.t{cycle[11:13]}z.nc"
    path = os.path.join(src, f"{model}.{day}", name)
    key = f"{model}.{day}/{name}"
    s3.upload_file(path, SRC, key, ExtraArgs={"ACL": "public-read"})
    refs = os.path.join(w, name + ".json")
    subprocess.run([BIN, "refs", path, "--url", f"s3://{SRC}/{key}", "-o", refs], check=True,
                   capture_output=True)
    return {"nc": path, "refs": refs, "key": f"nos/{name}.zarr"}


def publish(m):
    s3.upload_file(m["refs"], DEST, m["key"])


def message(m):
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "eventTime": "2023-03-23T13:05:02.101Z", "s3": {"bucket": {"name": DEST}, "object": {"key": m["key"]}}}]})


def update(m, endpoint=MOTO, *extra):
    # stderr to a file: a held process must not block on a full pipe
    log = tempfile.TemporaryFile("w+", dir=w)
    p = subprocess.Popen([BIN, "update_model_run", message(m), "--output-format", "json,icechunk",
                          "--endpoint-url", endpoint, *extra], env=ENV, stdout=subprocess.DEVNULL,
                         stderr=log, text=True)
    p.log = log
    return p


def finish(p, expect, what):
    p.wait(timeout=300)
    p.log.seek(0)
    err = p.log.read()
    if p.returncode != expect:
        print(err[-3000:])
    check(p.returncode == expect, f"{what}: exit {p.returncode} (want {expect})")
    return err


def refs_in_repo():
    """The branch and tag refs with their etags: a commit rewrites one."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DEST, Prefix=REPO_PREFIX + "/refs/"):
        keys += [(o["Key"], o["ETag"]) for o in page.get("Contents", [])]
    return sorted(keys)


def read(*repos):
    """[(bucket, prefix, groups)] -> one result per repository (one reader process)."""
    spec = os.path.join(w, "spec.json")
    json.dump({"endpoint": MOTO, "container": f"s3://{SRC}/",
               "repos": [{"bucket": b, "prefix": p, "groups": g} for b, p, g in repos]}, open(spec, "w"))
    p = subprocess.run([ZPY, os.path.join(ROOT, "tests", "python", "read_icechunk_groups.py"), spec],
                       capture_output=True, text=True, env=ENV)
    if p.returncode != 0:
        print(p.stderr[-3000:])
        check(False, "reader ran")
        return [{"failures": ["reader failed"], "sizes": {}, "snapshots": -1} for _ in repos]
    return json.loads(p.stdout.strip().splitlines()[-1])


c12 = [make("dbofs", "2023-03-23T12", h) for h in ("f001", "f002", "f003")]
c18 = make("dbofs", "2023-03-23T18", "f001")
c00 = make("dbofs", "2023-03-24T00", "f001")
RUN12, RUN18, RUN00 = (f"nos.dbofs.fields.{d}" for d in ("20230323.t12z", "20230323.t18z", "20230324.t00z"))
BEST = "nos.dbofs.fields.best"

# 0. the first update creates the repository: groups for the run and the best series
publish(c12[0])
finish(update(c12[0]), 0, "first update")
first = refs_in_repo()
check(s3.head_object(Bucket=DEST, Key=f"nos/{RUN12}.nc.zarr")["ContentLength"] > 0, "JSON anchor still written")

proxy = HoldProxy(PORT)
PROXY = f"http://127.0.0.1:{proxy.port}"


def is_branch_commit(method, path, headers):
    # spec 1: a commit is the conditional PutObject of refs/branch.main/<seq>.json
    return method == "PUT" and "/refs/branch.main/" in path


# 1. same cycle: A (f002) held at its commit while B (f003) completes
publish(c12[1])
proxy.arm(is_branch_commit)
a = update(c12[1], PROXY)
proxy.wait_held(120)
publish(c12[2])
finish(update(c12[2]), 0, "same cycle: B while A is held")
proxy.release()
err_a = finish(a, 0, "same cycle: A after B committed")
check("anchor moved on" in err_a or "lost a race" in err_a, "same cycle: A saw the conflict and redid its write")
check(refs_in_repo() != first, "same cycle: the branch moved")

# 2. other cycles: A (18z run) held at its commit while B commits the 00z run and the best series
publish(c18)
publish(c00)
proxy.arm(is_branch_commit)
a = update(c18, PROXY)
proxy.wait_held(120)
finish(update(c00), 0, "other cycle: B while A is held")
proxy.release()
err_a = finish(a, 0, "other cycle: A after B committed")
# icechunk logs "Commit started" per attempt of one commit: a second one
# on the same session is the rebase; `attempt=1` says no redo was needed.
starts = [ln for ln in err_a.splitlines() if "Commit started" in ln and f"{RUN18}.nc.zarr" in ln]
check(len(starts) == 2 and f"group={RUN18} snapshot=" in err_a and "attempt=1" in err_a
      and "lost a race" not in err_a and "anchor moved on" not in err_a,
      "other cycle: A's commit rebased onto B's (other groups), no redo") or print(err_a[-4000:])
proxy.stop()

# 3. backfill of the same two days into another bucket, also json,icechunk
s3.create_bucket(Bucket="backfill")
p = subprocess.run([BIN, "backfill", "--model", "dbofs", "--from", "2023-03-23", "--to", "2023-03-24",
                    "--dest", "s3://backfill/nos", "--output-format", "json,icechunk", "--endpoint-url", MOTO,
                    "--quiet"], env=ENV, capture_output=True, text=True)
check(p.returncode == 0, f"backfill --output-format json,icechunk: exit {p.returncode}") or print(p.stderr[-3000:])

every = [m["nc"] for m in c12] + [c18["nc"], c00["nc"]]
groups = {RUN12: {"dim": "ocean_time", "files": [m["nc"] for m in c12]},
          RUN18: {"dim": "ocean_time", "files": [c18["nc"]]},
          RUN00: {"dim": "ocean_time", "files": [c00["nc"]]},
          BEST: {"dim": "ocean_time", "files": every}}
r, rb = read((DEST, REPO_PREFIX, groups), ("backfill", REPO_PREFIX, groups))
check(not r["failures"] and r["sizes"] == {RUN12: 3, RUN18: 1, RUN00: 1, BEST: 5},
      f"read back: the 12z run has all 3 members (none lost in the race), every run group and the best "
      f"series equal xr.concat of their files: {r}")
check(not rb["failures"] and rb["sizes"] == r["sizes"], f"backfill: the same groups, equal to xr.concat: {rb}")

# 1 (repository) + 2 (run, best of the first update) + 2 (B; A's same-cycle
# rewrite and its best series equal what B committed: no commit) + 3 (B's
# run and best, A's run; A's best series equals B's, both list all 5 files)
check(r["snapshots"] == 8, f"history: one snapshot per change, {r['snapshots']} (want 8)")
# a redelivered message: exit 0, the branch does not move
tip = refs_in_repo()
finish(update(c00), 0, "redelivered update")
check(refs_in_repo() == tip, "redelivered update: no new snapshot")

# 4. bad input: exit 1, no new snapshot, nothing written
before = refs_in_repo()
check(any("branch.main" in k for k, _ in before), f"repository has a main branch: {before}")
notrepo = os.path.join(w, "notrepo", "dbofs")
os.makedirs(notrepo)
open(os.path.join(notrepo, "data.txt"), "w").write("x")
for root, what in (("http://example.invalid/x", "not file:// or s3://"),
                   ("file://" + os.path.dirname(notrepo), "non-empty directory, not a repository"),
                   ("s3://no-such-bucket/ice", "missing bucket")):
    finish(update(c12[2], MOTO, "--icechunk-root", root), 1, f"--icechunk-root {root} ({what})")
check(refs_in_repo() == before, "bad roots: the repository did not change")
check(os.listdir(notrepo) == ["data.txt"], "non-repository directory untouched")
check("no-such-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]], "no bucket created")
# another model's grid committed under the group of a new dbofs cycle, then
# the dbofs update into it: zeta & co. have other shapes -> conflict
other = make("cbofs", "2023-03-25T00", "f001")
c25 = make("dbofs", "2023-03-25T00", "f001")
RUN25 = "nos.dbofs.fields.20230325.t00z"
p = subprocess.run([BIN, "refs", other["nc"], "--icechunk", f"s3://{DEST}/{REPO_PREFIX}", "--icechunk-group", RUN25,
                    "--endpoint-url", MOTO], env=ENV, capture_output=True, text=True)
check(p.returncode == 0, f"cbofs arrays planted in {RUN25}") or print(p.stderr[-2000:])
planted = refs_in_repo()
publish(c25)
err = finish(update(c25), 1, "conflicting arrays")
check("conflicts with the repository" in err, "conflicting arrays: the error says so")
check(refs_in_repo() == planted, "conflicting arrays: no new snapshot")

print(f"check-icechunk-pipeline: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
