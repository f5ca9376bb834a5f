#!/usr/bin/env python3
"""Incremental FMRC aggregates (issue 17) against moto_server, every S3
request counted at tests/e2e/hold_proxy.py:

    fmrc_moto.py --bin target/debug/kerchunk-nos [--work DIR]

  r1  after 1 and after 3 days of history (synthetic dbofs references, 24 a
      day, time values inlined, made by `kerchunk-nos rebuild`), each of the
      next cycle's six forecast hours costs the same S3 requests whatever
      the history: no LIST, at most 4 GETs + 3 PUTs (model run, best
      series, member index, the new reference; index, model run, best
      series), and `rebuild` afterwards finds nothing to change (the
      incremental outputs are byte-identical to a from-scratch rebuild).
  r2  two updates race (after f003 made the index and aggregates): A's
      (f001) best-series PUT is held while B (f002) runs to completion;
      released, A's conditional PUT is refused and A splices again: every
      hour in the model run, the best series and the index.
  r3  the same with A's member-index PUT held: B registers first, A's
      index PUT is refused, A reads the index again; nothing is lost.
  r4  a deleted member index is rebuilt from a listing by the next update
      (one LIST), and the outputs still equal a rebuild.
  r5  with --output-format json,parquet, the first update writes the best
      series' Parquet form whole and the next one PUTs only the objects it
      changed (the static grid's record file is not rewritten).
"""
import argparse
import base64
import json
import pathlib
import shutil
import struct
import sys
import time

import boto3

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from common import DEST, Cli, aws_env, check, summary  # noqa: E402
from common import event as _event  # noqa: E402
from hold_proxy import moto_behind_proxy  # noqa: E402

EPOCH_2016 = 1451606400
DAY0 = 19358  # 2023-01-01


def zarray(shape, chunks, dtype):
    return json.dumps({"chunks": chunks, "compressor": None, "dtype": dtype, "fill_value": 1e37,
                       "filters": None, "order": "C", "shape": shape, "zarr_format": 2}, separators=(",", ":"))


def reference(day, cycle, hour):
    """(name, JSON) of a synthetic dbofs reference set: ocean_time inline,
    zeta and two 4-d variables as 80 kB remote chunks (never inlined)."""
    ymd = time.strftime("%Y%m%d", time.gmtime((DAY0 + day) * 86400))
    name = f"nos.dbofs.fields.{hour}.{ymd}.t{cycle:02d}z.nc"
    url = f"s3://noaa-ofs-pds/dbofs.{ymd}/{name}"
    c = (DAY0 + day) * 86400 + cycle * 3600
    valid = c + int(hour[1:]) * 3600 if hour[0] == "f" else c + (int(hour[1:]) - 6) * 3600
    refs = {
        ".zgroup": '{"zarr_format":2}',
        ".zattrs": json.dumps({"file": name}),
        "ocean_time/.zarray": zarray([1], [1], "<f8"),
        "ocean_time/.zattrs": '{"_ARRAY_DIMENSIONS":["ocean_time"],"units":"seconds since 2016-01-01 00:00:00"}',
        "ocean_time/0": "base64:" + base64.b64encode(struct.pack("<d", valid - EPOCH_2016)).decode(),
        "h/.zarray": zarray([4, 5], [4, 5], "<f8"),
        "h/.zattrs": '{"_ARRAY_DIMENSIONS":["eta_rho","xi_rho"]}',
        "h/0.0": [url, 100, 800],
        "zeta/.zarray": zarray([1, 4, 5], [1, 4, 5], "<f4"),
        "zeta/.zattrs": '{"_ARRAY_DIMENSIONS":["ocean_time","eta_rho","xi_rho"]}',
        "zeta/0.0.0": [url, 1000, 80000],
    }
    for i in range(2):
        refs[f"v{i}/.zarray"] = zarray([1, 2, 4, 5], [1, 1, 4, 5], "<f4")
        refs[f"v{i}/.zattrs"] = '{"_ARRAY_DIMENSIONS":["ocean_time","s_rho","eta_rho","xi_rho"]}'
        refs[f"v{i}/0.0.0.0"] = [url, 100000 * (2 + 2 * i), 80000]
        refs[f"v{i}/0.1.0.0"] = [url, 100000 * (3 + 2 * i), 80000]
    return name, json.dumps({"version": 1, "refs": refs})


def event(bucket, keys):
    return _event(bucket, keys, time="2023-01-01T13:00:00.000Z")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", default=str(ROOT / "target/fmrc-moto"))
    args = ap.parse_args()
    binary = str(pathlib.Path(args.bin).resolve())
    work = pathlib.Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    aws_env("AKIAFMRCFAKE", "fmrcFakeSecret")
    with moto_behind_proxy(work / "moto.log") as (port, proxy):
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket=DEST)
        cli = Cli(binary, proxy.port)
        start, run = cli.start, cli.run

        def put_ref(folder, day, cycle, hour):
            name, body = reference(day, cycle, hour)
            key = f"{folder}/{name}.zarr"
            s3.put_object(Bucket=DEST, Key=key, Body=body.encode())
            return key

        def update(key):
            return ["update_model_run", event(DEST, [key])]

        def rebuild(folder):
            rc, out, err = run(["rebuild", "--dest", f"s3://{DEST}/{folder}"])
            return rc, (json.loads(out) if rc == 0 else {"error": err[-400:]})

        def requests(since):
            """(method, kind) of the requests to the destination bucket since `since`."""
            out = []
            for m, path, _ in proxy.log[since:]:
                if not path.startswith(f"/{DEST}"):
                    continue
                kind = "LIST" if m == "GET" and ("list-type" in path or "prefix=" in path) else m
                out.append(kind)
            return out

        def body(key):
            return s3.get_object(Bucket=DEST, Key=key)["Body"].read()

        def times(key):
            raw = base64.b64decode(json.loads(body(key))["refs"]["ocean_time/0"][len("base64:"):])
            return [round((t + EPOCH_2016 - DAY0 * 86400) / 3600) for t in struct.unpack(f"<{len(raw) // 8}d", raw)]

        # r1: requests per update do not grow with the history.
        per_history = {}
        for days in (1, 3):
            folder = f"h{days}"
            for d in range(days):
                for cycle in (0, 6, 12, 18):
                    for h in range(1, 7):
                        put_ref(folder, d, cycle, f"f{h:03d}")
            rc, rep = rebuild(folder)
            check(rc == 0 and len(rep.get("aggregates", [])) == 4 * days + 1,
                  f"r1 rebuild of {days} day(s): index, {4 * days} model runs and the best series ({rc}, {rep})")
            counts, walls = [], []
            for h in range(1, 7):
                key = put_ref(folder, days, 0, f"f{h:03d}")
                mark = len(proxy.log)
                t0 = time.monotonic()
                rc, out, err = run(update(key))
                walls.append(time.monotonic() - t0)
                reqs = requests(mark)
                counts.append(tuple(sorted(reqs)))
                written = json.loads(out).get("written", []) if rc == 0 else []
                check(rc == 0 and len(written) == 2,
                      f"r1 {days} day(s), update of f{h:03d}: exit {rc}, {len(reqs)} requests "
                      f"({reqs.count('GET')} GET, {reqs.count('PUT')} PUT, {reqs.count('LIST')} LIST)"
                      + ("" if rc == 0 else f": {err[-300:]}"))
                check("LIST" not in reqs and reqs.count("GET") <= 4 and reqs.count("PUT") <= 3
                      and len(reqs) <= 7, f"r1 ... within the bound (<= 4 GET + 3 PUT, no LIST): {reqs}")
                # the best series is spliced on its JSON text (the model run
                # too, from its second hour on), found by binary search, not
                # by a scan of the text
                check(err.count("aggregate spliced (text graft, searched)") == (1 if h == 1 else 2),
                      "r1 ... spliced on the stored JSON text (searched, not scanned), "
                      "not combined from every member")
            per_history[days] = counts
            print(f"info  {days} day(s): update_model_run CLI wall, median of 6: "
                  f"{sorted(walls)[3] * 1000:.0f} ms (not asserted)", flush=True)
            rc, rep = rebuild(folder)
            check(rc == 0 and rep.get("aggregates") == [],
                  f"r1 {days} day(s): a rebuild afterwards changes nothing ({rep})")
            best = f"{folder}/nos.dbofs.fields.best.nc.zarr"
            check(times(best) == list(range(1, 24 * days + 7)),
                  f"r1 ... the best series holds every hour once, in order ({len(times(best))} steps)")
        check(per_history[1] == per_history[3],
              f"r1 the same requests per update after 1 and 3 days: {per_history[1]} vs {per_history[3]}")

        # r2/r3: racing updates lose no member.
        for case, (what, needle) in enumerate([("best-series", "nos.dbofs.fields.best.nc.zarr"),
                                                ("member-index", "fmrc-index/")]):
            folder = f"race{case}"
            # An existing index, model run and best series (f003) ...
            rc, _, err = run(update(put_ref(folder, 0, 0, "f003")))
            check(rc == 0, f"r{2 + case} setup: f003 aggregated ({rc}" + (f": {err[-200:]})" if rc else ")"))
            # ... then f001 (A) and f002 (B) race.
            a = put_ref(folder, 0, 0, "f001")
            b = put_ref(folder, 0, 0, "f002")
            proxy.arm(lambda m, p, h, n=f"/{DEST}/{folder}/{needle}": m == "PUT" and p.startswith(n))
            pa = start(update(a))
            proxy.wait_held()
            rc_b, _, err_b = run(update(b))
            proxy.release()
            _, err_a = pa.communicate(timeout=300)
            tag = f"r{2 + case}"
            ok = pa.returncode == 0 and rc_b == 0
            check(ok, f"{tag} {what} PUT of A held while B runs: both exit 0 ({pa.returncode}, {rc_b}"
                  + (")" if ok else f": {err_a[-200:]}{err_b[-200:]})"))
            check("written concurrently" in err_a or "reading again" in err_a,
                  f"{tag} ... A's conditional write was refused and A read again")
            run_key = f"{folder}/nos.dbofs.fields.20230101.t00z.nc.zarr"
            best = f"{folder}/nos.dbofs.fields.best.nc.zarr"
            check(times(run_key) == [1, 2, 3] and times(best) == [1, 2, 3],
                  f"{tag} ... every hour in the model run and the best series ({times(run_key)}, {times(best)})")
            index = json.loads(body(f"{folder}/fmrc-index/dbofs.fields.legacy.json"))
            check(len(index["members"]) == 3 and a in index["members"] and b in index["members"],
                  f"{tag} ... and in the member index")
            rc, rep = rebuild(folder)
            check(rc == 0 and rep.get("aggregates") == [], f"{tag} ... equal to a rebuild ({rep})")

        # r4: a deleted index is rebuilt from a listing.
        folder = "h1"
        s3.delete_object(Bucket=DEST, Key=f"{folder}/fmrc-index/dbofs.fields.legacy.json")
        key = put_ref(folder, 1, 6, "f001")
        mark = len(proxy.log)
        rc, _, err = run(update(key))
        reqs = requests(mark)
        check(rc == 0 and reqs.count("LIST") == 1 and "no FMRC index" in err,
              f"r4 missing index: rebuilt from one listing, with a warning ({rc}, {reqs})")
        rc, rep = rebuild(folder)
        check(rc == 0 and rep.get("aggregates") == [], f"r4 ... outputs equal a rebuild ({rep})")

        # r5: with --output-format json,parquet an update rewrites only the
        # Parquet objects it changed (S3's ETag is the MD5 of what a PUT
        # would send): the best series' static grid `h` is not rewritten.
        best_parq = f"/{DEST}/{folder}/nos.dbofs.fields.best.nc.zarr.parq/"
        for h in (2, 3):
            key = put_ref(folder, 1, 6, f"f{h:03d}")
            mark = len(proxy.log)
            rc, _, err = run(update(key) + ["--output-format", "json,parquet"])
            puts = sorted(p.split("?", 1)[0][len(best_parq):] for m, p, _ in proxy.log[mark:]
                          if m == "PUT" and p.startswith(best_parq))
            listed = sorted(o["Key"].split(".parq/", 1)[1] for o in s3.list_objects_v2(
                Bucket=DEST, Prefix=best_parq[len(DEST) + 2:])["Contents"])
            if h == 2:
                check(rc == 0 and puts == listed,
                      f"r5 first Parquet form of the best series written whole ({rc}, {puts}, {listed})"
                      + ("" if rc == 0 else f": {err[-300:]}"))
            else:
                check(rc == 0 and ".zmetadata" in puts and any(p.startswith("zeta/") for p in puts)
                      and not any(p.startswith("h/") for p in puts) and set(puts) < set(listed),
                      f"r5 next update: only the changed Parquet objects are PUT ({puts} of {listed})")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
