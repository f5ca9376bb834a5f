#!/usr/bin/env python3
"""End-to-end test of the kerchunk-nos pipeline against a real S3/SNS/SQS
server (moto_server, started here on a free loopback port and killed at the
end).

    e2e.py --bin target/debug/kerchunk-nos [--work DIR] [--fault-rate 0.2]

1. Buckets noaa-ofs-pds (source) and nextgen-dmac (destination); SNS topics
   NewOFSObject / NOSZarrUpdated fed by S3 TopicConfigurations; SQS queues
   subscribed to them (so bodies are SNS envelopes), each with a DLQ
   (maxReceiveCount 3).
2. A small dbofs forecast: cycle 2023-03-23 12z f001-f008 + n001-n006 and
   18z f001-f006 (make_ofs.py --scale small), uploaded -> notifications.
   Poison: a bad-JSON message, a message naming a missing object, and a
   corrupt HDF5 file uploaded as .nc.
3. `kerchunk-nos worker` on both queues with --exit-when-idle, talking to
   moto through a fault-injecting proxy (a fraction of GETs answered 500 or
   dropped).
4. Checks: every file's reference set exists and reads back through fsspec
   (reference fs, remote_protocol s3 at the moto endpoint) + xarray equal to
   netCDF4 reads of the originals; model runs hold every forecast hour once,
   in time order, each hour's data from its file; the best series takes the
   newest cycle per valid time; the three poison messages are in the DLQ
   and nothing else is; queues are empty.
5. `kerchunk-nos backfill` of the same day into another prefix gives
   byte-identical references and aggregates.
"""
import argparse
import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import boto3  # noqa: E402
import fsspec  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fault_proxy  # noqa: E402
from common import (DAY, DEST, ROOT, SRC, aws_env, check, event, failures, generate, moto_server,  # noqa: E402
                    ref_key, src_key)

CYCLES = {"12": [f"f{h:03d}" for h in range(1, 9)] + [f"n{h:03d}" for h in range(1, 7)],
          "18": [f"f{h:03d}" for h in range(1, 7)]}


def setup(endpoint):
    s3 = boto3.client("s3", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    sns = boto3.client("sns", endpoint_url=endpoint)
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=DEST)

    def queue(name):
        dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        q = sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": "4",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        })["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return q, arn, dlq

    new_q, new_arn, new_dlq = queue("nextgen-nos-newofsobject")
    upd_q, upd_arn, upd_dlq = queue("nextgen-nos-updatemultizarr")
    t_new = sns.create_topic(Name="NewOFSObject")["TopicArn"]
    t_upd = sns.create_topic(Name="NOSZarrUpdated")["TopicArn"]
    sns.subscribe(TopicArn=t_new, Protocol="sqs", Endpoint=new_arn)
    sns.subscribe(TopicArn=t_upd, Protocol="sqs", Endpoint=upd_arn)
    s3.put_bucket_notification_configuration(Bucket=SRC, NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": t_new, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_bucket_notification_configuration(Bucket=DEST, NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": t_upd, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "nos/"}]}}}]})
    return s3, sqs, dict(new_q=new_q, new_dlq=new_dlq, upd_q=upd_q, upd_dlq=upd_dlq)


def drain(sqs, url):
    """Receives every message of a queue (for DLQ inspection)."""
    bodies = []
    for _ in range(20):
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60)
        msgs = r.get("Messages", [])
        if not msgs:
            break
        bodies += [m["Body"] for m in msgs]
    return bodies


def depth(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in a.values())


def open_refs(s3, endpoint, key):
    refs = json.loads(s3.get_object(Bucket=DEST, Key=key)["Body"].read())
    opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": endpoint}}
    fs = fsspec.filesystem("reference", fo=refs, remote_protocol="s3", remote_options=opts)
    return xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False, decode_cf=False)


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def compare_file(ds, nc_path):
    """Every variable of the original (netCDF4 engine, raw) equals the refs'."""
    bad = []
    with xr.open_dataset(nc_path, engine="netcdf4", decode_cf=False) as orig:
        for name, var in orig.variables.items():
            if name not in ds.variables:
                bad.append(f"{name}: missing")
                continue
            if not same(var.values, ds[name].values):
                bad.append(f"{name}: values differ")
    return bad


def nc_values(path, var):
    with xr.open_dataset(path, engine="netcdf4", decode_cf=False) as d:
        return d[var].values


def check_aggregate(s3, endpoint, key, members, files, label):
    """members: [(cycle, hour)] expected in time order."""
    ds = open_refs(s3, endpoint, key)
    t = ds["ocean_time"].values
    want = np.concatenate([nc_values(files[m], "ocean_time") for m in members])
    check(len(t) == len(set(t.tolist())) and np.all(np.diff(t) > 0), f"{label}: times strictly increasing, no duplicates")
    check(same(t, want), f"{label}: holds exactly {len(members)} hours {[h for _, h in members]}")
    ok = len(t) == len(members)
    for i, m in enumerate(members):
        if not ok:
            break
        for var in ("zeta", "temp"):
            if not same(ds[var].values[i], nc_values(files[m], var)[0]):
                ok = False
                print(f"      {label}: {var} at index {i} differs from {m}")
    check(ok, f"{label}: zeta/temp of every hour read back equal to its file")
    ds.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", default=None)
    ap.add_argument("--fault-rate", type=float, default=0.2)
    ap.add_argument("--make-ofs", default=str(ROOT / "fixtures/make_ofs.py"))
    args = ap.parse_args()
    work = pathlib.Path(args.work or (ROOT / "target/e2e"))
    if work.exists():
        shutil.rmtree(work / "run", ignore_errors=True)
    (work / "run").mkdir(parents=True, exist_ok=True)
    binary = str(pathlib.Path(args.bin).resolve())

    aws_env("testing", "testing")

    servers = contextlib.ExitStack()
    port = servers.enter_context(moto_server(work / "run/moto.log"))
    proxy = None
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3, sqs, q = setup(endpoint)
        pairs = [(cycle, h) for cycle, hours in CYCLES.items() for h in hours]
        files = generate(work / "gen", pairs, pathlib.Path(args.make_ofs))

        # Upload: each PUT notifies SNS -> SQS.
        for (cycle, h), path in sorted(files.items()):
            s3.upload_file(str(path), SRC, src_key(cycle, h))
        # Poison messages.
        sqs.send_message(QueueUrl=q["new_q"], MessageBody="{this is not json")
        missing = src_key("12", "f030")
        sqs.send_message(QueueUrl=q["new_q"], MessageBody=event(SRC, [missing]))
        s3.put_object(Bucket=SRC, Key=src_key("12", "f047"), Body=b"\x89HDF\r\n\x1a\n" + b"\0garbage" * 64)

        proxy, proxy_port, counters = fault_proxy.start(port, args.fault_rate)
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy_port}", RUST_LOG="info")
        cmd = [binary, "worker", "--queue", q["new_q"], "--update-queue", q["upd_q"],
               "--dest", f"s3://{DEST}/nos", "--concurrency", "4", "--visibility-timeout", "4",
               "--wait-seconds", "1", "--exit-when-idle", "--models", "dbofs", "--log-json",
               "--anonymous", "never"]
        print("running:", " ".join(cmd[1:]), flush=True)
        t0 = time.time()
        with open(work / "run/worker.log", "w") as log:
            rc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=log, timeout=900).returncode
        print(f"worker exited {rc} after {time.time() - t0:.1f} s; proxy: {counters.forwarded} forwarded, "
              f"{counters.errors_500} injected 500s, {counters.dropped} dropped connections", flush=True)
        check(rc == 0, "worker exit code 0")
        check(counters.errors_500 + counters.dropped > 0, "faults were injected")
        log_text = (work / "run/worker.log").read_text()
        check("ChangeMessageVisibility failed" not in log_text, "visibility extensions succeeded")
        check("testing" not in log_text, "no credentials in the logs")

        # Every file's reference set, read back equal to the original.
        listed = {o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=DEST)
                  for o in p.get("Contents", [])}
        all_ok = True
        for (cycle, h), path in sorted(files.items()):
            key = ref_key("nos", cycle, h)
            if key not in listed:
                all_ok = False
                print(f"      missing {key}")
                continue
            ds = open_refs(s3, endpoint, key)
            bad = compare_file(ds, path)
            ds.close()
            if bad:
                all_ok = False
                print(f"      {key}: {bad[:5]}")
        check(all_ok, f"all {len(files)} single-file reference sets exist and read back equal to netCDF4")
        check(ref_key("nos", "12", "f047") not in listed and ref_key("nos", "12", "f030") not in listed,
              "no output for the corrupt / missing files")

        fc12 = [("12", f"f{h:03d}") for h in range(1, 9)]
        fc18 = [("18", f"f{h:03d}") for h in range(1, 7)]
        check_aggregate(s3, endpoint, f"nos/nos.dbofs.fields.{DAY}.t12z.nc.zarr", fc12, files, "model run 12z")
        check_aggregate(s3, endpoint, f"nos/nos.dbofs.fields.{DAY}.t18z.nc.zarr", fc18, files, "model run 18z")
        best = fc12[:6] + fc18  # 12z f007/f008 are superseded by 18z f001/f002
        check_aggregate(s3, endpoint, "nos/nos.dbofs.fields.best.nc.zarr", best, files, "best time series")

        dead = drain(sqs, q["new_dlq"])
        kinds = sorted("not json" if "not json" in b else "missing" if "f030" in b else
                       "corrupt" if "f047" in b else "other" for b in dead)
        check(kinds == ["corrupt", "missing", "not json"], f"DLQ holds exactly the 3 poison messages ({kinds})")
        check(not drain(sqs, q["upd_dlq"]), "update DLQ empty")
        check(depth(sqs, q["new_q"]) == 0 and depth(sqs, q["upd_q"]) == 0, "queues empty")

        # Backfill of the same day into another prefix: identical outputs.
        env_direct = dict(os.environ, AWS_ENDPOINT_URL=endpoint, RUST_LOG="warn")
        r = subprocess.run([binary, "backfill", "--model", "dbofs", "--from", "2023-03-23", "--to", "2023-03-23",
                            "--bucket", SRC, "--dest", f"s3://{DEST}/backfill", "--anonymous", "never"],
                           env=env_direct, capture_output=True, text=True, timeout=600)
        report = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        # The corrupt file is a permanent failure: exit 1 (3 only when a retry could help).
        check(r.returncode == 1 and report.get("failed") == 1 and report.get("indexed") == len(files),
              f"backfill indexed {report.get('indexed')} files, 1 failure (the corrupt file), exit {r.returncode}")
        same_bytes = True
        for name in [ref_key("", c, h)[1:] for (c, h) in files] + [
                f"nos.dbofs.fields.{DAY}.t12z.nc.zarr", f"nos.dbofs.fields.{DAY}.t18z.nc.zarr",
                "nos.dbofs.fields.best.nc.zarr"]:
            a = s3.get_object(Bucket=DEST, Key=f"nos/{name}")["Body"].read()
            try:
                b = s3.get_object(Bucket=DEST, Key=f"backfill/{name}")["Body"].read()
            except s3.exceptions.NoSuchKey:
                b = None
            if a != b:
                same_bytes = False
                print(f"      {name} differs between worker and backfill")
        check(same_bytes, "backfill outputs byte-identical to the worker's")
    finally:
        if proxy is not None:
            proxy.shutdown()
        servers.close()

    print()
    if failures:
        print(f"e2e: {len(failures)} check(s) failed: {failures}")
        return 1
    print("e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
