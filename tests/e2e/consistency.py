#!/usr/bin/env python3
"""Consistency regressions of issue 13 against moto_server, through a proxy
that holds one chosen request until another step has finished (no sleeps).

    consistency.py --bin target/debug/kerchunk-nos [--work DIR]

Each scenario runs the CLI as Argo would and checks exit code, stderr and
the objects in moto:
  d1  best series: update X's best-series PUT is held while 18z f001 is
      indexed and aggregated (Y); released, X must not overwrite Y.
  d2  a source re-uploaded while extract A's reference PUT is held; extract
      B finishes; released, the references stay B's (stamp = B's ETag).
  d3  NoSuchKey during the range reads -> exit 1; the object replaced
      mid-walk (If-Match -> 412) -> read again -> exit 0 with the new
      version; usage error -> exit 2.
  d4  400 records naming one object: over the cap -> exit 1, nothing
      written; with --max-records 500 -> indexed once (one PUT).
  d5  no access key ID or secret at any RUST_LOG level.
  d6  worker: SIGTERM while a long poll is open; a message sent then is
      returned to the queue at once (not hidden for a visibility timeout).
  d8  --anonymous auto on a NOAA bucket name that denies unsigned reads:
      retried signed once when credentials exist (exit 0), exit 1 without.
  d9  a missing bucket is reported as such, and the URL once.
"""
import argparse
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import boto3

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import DEST, ROOT, SRC, Cli, aws_env, check, event, generate, src_key, summary  # noqa: E402
from common import ref_key as _ref_key  # noqa: E402
from hold_proxy import moto_behind_proxy  # noqa: E402

KEY_ID = "AKIACONSISTFAKE00042"
SECRET = "consistFakeSecret0042xyzABCDEFGHIJKLmnop"


def ref_key(cycle, hour):
    return _ref_key("nos", cycle, hour)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", default=str(ROOT / "target/consistency"))
    args = ap.parse_args()
    binary = str(pathlib.Path(args.bin).resolve())
    work = pathlib.Path(args.work)
    shutil.rmtree(work / "run", ignore_errors=True)
    (work / "run").mkdir(parents=True)
    aws_env(KEY_ID, SECRET)

    pairs = [("12", "f001"), ("12", "f002"), ("12", "f003"), ("12", "f007"), ("18", "f001")]
    files = {k: path.read_bytes() for k, path in generate(work / "gen", pairs).items()}

    with moto_behind_proxy(work / "run/moto.log") as (port, proxy):
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket=SRC)
        s3.create_bucket(Bucket=DEST)
        cli = Cli(binary, proxy.port)
        env, start, run = cli.env, cli.start, cli.run

        def extract(keys, bucket=SRC, extra=()):
            return ["extract_single", event(bucket, keys), DEST, "nos", *extra]

        def update(refs):
            return ["update_model_run", event(DEST, refs)]

        def put(cycle_hour, as_key):
            return s3.put_object(Bucket=SRC, Key=as_key, Body=files[cycle_hour])["ETag"]

        def ranged_get(key):
            return lambda m, p, h: m == "GET" and p.startswith(f"/{SRC}/{key}") and "Range" in h

        def put_of(key):
            return lambda m, p, h: m == "PUT" and p.startswith(f"/{DEST}/{key}")

        def body(key):
            return s3.get_object(Bucket=DEST, Key=key)["Body"].read()

        def stamp(key):
            return json.loads(body(key)).get("source", {})

        # d3: NoSuchKey during the range reads is permanent.
        k = src_key("12", "f002")
        put(("12", "f002"), k)
        proxy.arm(ranged_get(k))
        p = start(extract([k]))
        proxy.wait_held()
        s3.delete_object(Bucket=SRC, Key=k)
        proxy.release()
        _, err = p.communicate(timeout=300)
        last = err.strip().splitlines()[-1] if err.strip() else ""
        check(p.returncode == 1, f"d3 NoSuchKey mid-read exits 1 (got {p.returncode}: {last})")
        check("no such object" in last, "d3 ... and says no such object")
        check(last.count(f"s3://{SRC}/{k}") == 1, f"d9 the source URL is named once: {last}")

        # d3: an object replaced mid-walk is read again (exit 0, new version).
        k = src_key("12", "f003")
        put(("12", "f003"), k)
        proxy.arm(ranged_get(k), nth=2)
        p = start(extract([k]))
        proxy.wait_held()
        etag_b = put(("12", "f001"), k)
        proxy.release()
        _, err = p.communicate(timeout=300)
        check(p.returncode == 0, f"d3 object changed mid-read: read again, exit 0 (got {p.returncode}: {err[-300:]})")
        check(stamp(ref_key("12", "f003")).get("etag") == etag_b, "d3 ... references stamped with the new ETag")
        pinned = [h for (m, path, h) in proxy.log if m == "GET" and path.startswith(f"/{SRC}/{k}")]
        check(len(pinned) > 2 and all(any(x.lower() == "if-match" for x in h) for h in pinned),
              f"d3 every range GET of the walk carries If-Match ({len(pinned)} GETs)")

        rc, _, err = run(extract([k], extra=["--kinds", "bogus"]))
        check(rc == 2, f"d3 usage error exits 2 (got {rc})")

        # d2: a reference set made from an older source version never lands last.
        k = src_key("12", "f007")
        put(("12", "f007"), k)
        proxy.arm(put_of(ref_key("12", "f007")))
        a = start(extract([k]))
        proxy.wait_held()
        etag_b = put(("18", "f001"), k)
        rc, _, err = run(extract([k]))
        check(rc == 0, f"d2 extract of version B exits 0 (got {rc}: {err[-300:]})")
        b_body = body(ref_key("12", "f007"))
        proxy.release()
        _, err = a.communicate(timeout=300)
        check(a.returncode == 0, f"d2 extract of version A exits 0 (got {a.returncode}: {err[-300:]})")
        check(body(ref_key("12", "f007")) == b_body, "d2 version B's references stay")
        check(stamp(ref_key("12", "f007")).get("etag") == etag_b, "d2 ... stamped with B's ETag")

        # d1: the best series keeps the newer update.
        put(("12", "f007"), k)
        keys12 = [src_key("12", h) for h in ("f001", "f002", "f003", "f007")]
        for h in ("f001", "f002", "f003"):
            put(("12", h), src_key("12", h))
        rc, _, err = run(extract(keys12))
        check(rc == 0, f"d1 12z indexed (got {rc}: {err[-300:]})")
        best = "nos/nos.dbofs.fields.best.nc.zarr"
        proxy.arm(put_of(best))
        x = start(update([ref_key("12", "f007")]))
        proxy.wait_held()
        k18 = src_key("18", "f001")
        put(("18", "f001"), k18)
        rc1, _, e1 = run(extract([k18]))
        rc2, _, e2 = run(update([ref_key("18", "f001")]))
        check(rc1 == 0 and rc2 == 0, f"d1 18z f001 indexed and aggregated ({rc1}, {rc2}: {e1[-200:]}{e2[-200:]})")
        proxy.release()
        _, err = x.communicate(timeout=300)
        check(x.returncode == 0, f"d1 update X exits 0 (got {x.returncode}: {err[-300:]})")
        refs = json.loads(body(best))["refs"]
        url = refs.get("zeta/3.0.0", [""])[0]
        check(url == f"s3://{SRC}/{k18}", f"d1 best series takes 18z f001 for 19z (zeta/3.0.0 -> {url})")

        # d4: duplicates and the record cap.
        k = src_key("12", "f002")
        put(("12", "f002"), k)
        mark = len(proxy.log)
        rc, _, err = run(extract([k] * 400))
        check(rc == 1 and "more than the limit" in err, f"d4 400 records over the cap: exit 1 (got {rc})")
        n_before = sum(1 for (m, path, _) in proxy.log[mark:] if m == "PUT" and ref_key("12", "f002") in path)
        check(n_before == 0, "d4 ... nothing written")
        mark = len(proxy.log)
        rc, _, err = run(extract([k] * 400, extra=["--max-records", "500"]))
        puts = sum(1 for (m, path, _) in proxy.log[mark:] if m == "PUT" and ref_key("12", "f002") in path)
        check(rc == 0 and puts == 1, f"d4 400 identical records indexed once (exit {rc}, {puts} PUTs)")

        # d9: a missing bucket is reported as such.
        rc, _, err = run(extract([src_key("12", "f001")], bucket="noaa-nos-ofs-pds"))
        check(rc == 1 and "no such bucket" in err, f"d9 missing bucket: exit 1, named ({rc}: {err[-200:]})")

        # d5: no credential at any log level.
        for level in ("trace", "debug", "info", "warn", "error"):
            rc, out, err = run(extract([src_key("12", "f001")]), {"RUST_LOG": level})
            text = out + err
            leaked = KEY_ID in text or SECRET in text
            check(rc == 0 and not leaked,
                  f"d5 RUST_LOG={level}: exit {rc}, {len(text.splitlines())} lines, credentials "
                  f"{'LEAKED' if leaked else 'absent'}")
        # d8: anonymous auto, unsigned access denied -> signed once.
        proxy.deny_unsigned = {SRC}
        k = src_key("12", "f002")
        put(("12", "f002"), k)
        auto = [binary, *extract([k]), "--models", "dbofs", "--anonymous", "auto"]
        r = subprocess.run(auto, env=env, capture_output=True, text=True, timeout=300)
        check(r.returncode == 0 and "retrying with credentials" in r.stderr,
              f"d8 unsigned read denied: retried signed, exit 0 (got {r.returncode}: {r.stderr[-300:]})")
        nocred = {k2: v for k2, v in env.items() if not k2.startswith("AWS_ACCESS") and not k2.startswith("AWS_SECRET")}
        nocred.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
                      AWS_EC2_METADATA_DISABLED="true")
        r = subprocess.run(auto, env=nocred, capture_output=True, text=True, timeout=300)
        check(r.returncode == 1 and "access denied" in r.stderr,
              f"d8 ... without credentials: exit 1, access denied (got {r.returncode}: {r.stderr[-300:]})")
        proxy.deny_unsigned = set()

        # d6: SIGTERM during an idle long poll.
        sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}")
        q = sqs.create_queue(QueueName="consist-new", Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
        proxy.arm(lambda m, p, h: m == "POST" and "ReceiveMessage" in (h.get("X-Amz-Target") or ""))
        w = subprocess.Popen([binary, "worker", "--queue", q, "--dest", f"s3://{DEST}/nos", "--wait-seconds", "5",
                              "--models", "dbofs", "--anonymous", "never"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(w.stderr), daemon=True)
        reader.start()
        proxy.wait_held()
        w.send_signal(signal.SIGTERM)
        # Let the receive through only once the worker has taken the signal.
        deadline = time.time() + 60
        while not any("shutdown requested" in line for line in lines) and time.time() < deadline:
            time.sleep(0.02)
        sqs.send_message(QueueUrl=q, MessageBody=event(SRC, [src_key("12", "f001")]))
        proxy.release()
        w.wait(timeout=120)
        reader.join(10)
        err = "".join(lines)
        check(w.returncode == 0, f"d6 worker exits 0 after SIGTERM (got {w.returncode})")
        got = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=0, MaxNumberOfMessages=1,
                                  AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        check(len(got) == 1, "d6 the message the open poll received is visible again at once"
              + ("" if got else f": {err[-400:]}"))
        check("visibility_timeout=120" in err, "d6 the worker used the queue's own visibility timeout")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
