#!/usr/bin/env python3
"""Benchmark: metadata scan of NetCDF-4/HDF5 files over HTTP, kerchunk-nos vs
kerchunk 0.2.7 (h5py through fsspec).

Not a timed test: it prints a table for a human. Run with the project venv:

    .venv/bin/python bench/bench.py            # or bench/run.sh
    .venv/bin/python bench/bench.py --reps 3 --delay-ms 20 --bandwidth 80

What it does:
1. Generates realistic OFS files with fixtures/make_ofs.py --scale real
   (dbofs fields, a ROMS file of ~33 MB; sfbofs fields, an FVCOM file of
   ~50 MB), cached under bench/out/ofs/, plus a few fixture files.
2. Starts bench/range_server.py (per-request delay, per-connection bandwidth,
   server-side counters: requests, bytes, waves; see its docstring).
3. For each file measures
   - ours:   `target/release/kerchunk-nos inspect URL --stats` (whole
             process wall time; output checked against the local file);
   - kc-def: kerchunk.hdf.SingleHdf5ToZarr(fsspec.open(url).open(), url)
             .translate() with fsspec's HTTP defaults (in-process wall time of
             open + translate, imports excluded, fresh filesystem instance);
   - kc-50M: the same with an s3fs-like 50 MiB read-ahead
             (block_size=50 MiB, cache_type="readahead").
   Requests, waves and bytes are the server's counters for that run.
4. Prints a markdown table, a per-wave breakdown of our runs on the OFS
   files, and writes bench/out/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
MAKE_OFS = os.path.join(ROOT, "fixtures", "make_ofs.py")

OFS_FILES = [
    # (model, hour, cycle) -> generated with --scale real --layout new
    ("dbofs", "f001", "2025-06-01T06"),
    ("sfbofs", "f001", "2025-06-01T03"),
]
FIXTURES = [
    "fixtures/files/netcdf4_features.nc",
    "fixtures/files/ofs/ngofs2.20241005/ngofs2.t03z.20241005.fields.n003.nc",
    "fixtures/files/ofs/dbofs.20241005/dbofs.t06z.20241005.stations.nowcast.nc",
    "fixtures/files/latest_chunk_indexes.h5",
]


def generate(python: str) -> list[str]:
    """Paths (relative to the serve dir) of the files to benchmark."""
    serve = os.path.join(OUT, "serve")
    os.makedirs(serve, exist_ok=True)
    names = []
    for model, hour, cycle in OFS_FILES:
        day = cycle[:10].replace("-", "")
        cc = cycle[11:13]
        rel = f"{model}.{day}/{model}.t{cc}z.{day}.fields.{hour}.nc"
        path = os.path.join(OUT, "ofs", rel)
        if not os.path.exists(path):
            subprocess.run(
                [python, MAKE_OFS, "--model", model, "--kind", "fields", "--hour", hour,
                 "--cycle", cycle, "--out", os.path.join(OUT, "ofs"), "--scale", "real", "--layout", "new"],
                check=True,
            )
        names.append(link(path, serve))
    for f in FIXTURES:
        names.append(link(os.path.join(ROOT, f), serve))
    return names


def link(path: str, serve: str) -> str:
    name = os.path.basename(path)
    dst = os.path.join(serve, name)
    if not os.path.exists(dst):
        shutil.copyfile(path, dst)
    return name


def server_stats(base: str, log=False) -> dict:
    q = "reset=1" + ("&log=1" if log else "")
    with urllib.request.urlopen(f"{base}/__stats?{q}") as r:
        return json.load(r)


def run_ours(binary: str, url: str, local: str) -> tuple[float, dict]:
    t = time.perf_counter()
    proc = subprocess.Popen([binary, "inspect", url, "--stats"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    p = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if p.returncode != 0:
        raise RuntimeError(f"kerchunk-nos failed on {url}: {p.stderr}")
    stats = json.loads([line for line in p.stderr.splitlines() if line.startswith("{")][-1])
    # Same answer as for the local file?
    q = subprocess.run([binary, "inspect", local], capture_output=True, text=True, check=True)
    a, b = json.loads(p.stdout), json.loads(q.stdout)
    a["source"] = b["source"] = None
    if a != b:
        raise RuntimeError(f"HTTP and local inspect differ for {url}")
    return wall, stats


def run_kerchunk(url: str, readahead: bool) -> float:
    import warnings

    import fsspec
    from kerchunk.hdf import SingleHdf5ToZarr

    warnings.simplefilter("ignore")  # kerchunk warns about features it skips
    kw = {"skip_instance_cache": True}
    if readahead:
        kw.update(block_size=50 * 2**20, cache_type="readahead")
    t = time.perf_counter()
    with fsspec.open(url, **kw) as f:
        refs = SingleHdf5ToZarr(f, url).translate()
    wall = time.perf_counter() - t
    if not refs.get("refs"):
        raise RuntimeError(f"kerchunk produced no refs for {url}")
    return wall


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def waves_breakdown(log: list[dict]) -> list[dict]:
    by = {}
    for e in log:
        w = by.setdefault(e["wave"], {"wave": e["wave"], "requests": 0, "bytes": 0, "t0": e["t_ms"], "t1": 0.0})
        w["requests"] += 1
        w["bytes"] += e.get("sent", 0)
        w["t1"] = max(w["t1"], e["t_ms"] + e.get("dur_ms", 0))
    return [dict(w, ms=round(w["t1"] - w["t0"], 1)) for w in sorted(by.values(), key=lambda w: w["wave"])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=os.path.join(ROOT, ".venv/bin/python"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/kerchunk-nos"))
    ap.add_argument("--reps", type=int, default=3, help="runs per variant; the median wall time is shown")
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--bandwidth", type=float, default=80.0, help="MB/s per connection")
    a = ap.parse_args()

    if not os.path.exists(a.bin):
        subprocess.run(["cargo", "build", "--release", "-p", "ingest"], cwd=ROOT, check=True)
    names = generate(a.python)
    serve = os.path.join(OUT, "serve")
    port_file = os.path.join(OUT, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    srv = subprocess.Popen(
        [a.python, os.path.join(HERE, "range_server.py"), "--root", serve, "--port-file", port_file,
         "--delay-ms", str(a.delay_ms), "--bandwidth", str(a.bandwidth)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            base = f"http://127.0.0.1:{f.read().strip()}"
        results = []
        for name in names:
            url = f"{base}/{name}"
            local = os.path.join(serve, name)
            size = os.path.getsize(local)
            row = {"file": name, "size": size}
            server_stats(base)
            walls, srvs, log = [], [], None
            for i in range(a.reps):
                w, st = run_ours(a.bin, url, local)
                walls.append(w)
                s = server_stats(base, log=(i == 0))
                log = log or s.pop("log", None)
                srvs.append(s)
            row["ours"] = dict(srvs[0], wall=statistics.median(walls), engine=st)
            row["ours_waves_detail"] = waves_breakdown(log or [])
            for key, ra in (("kc_default", False), ("kc_50mib", True)):
                walls, srvs = [], []
                for _ in range(a.reps):
                    walls.append(run_kerchunk(url, ra))
                    srvs.append(server_stats(base))
                row[key] = dict(srvs[0], wall=statistics.median(walls))
            results.append(row)
            print(f"done {name}", file=sys.stderr, flush=True)
    finally:
        srv.terminate()
        srv.wait()

    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"delay_ms": a.delay_ms, "bandwidth_MBps": a.bandwidth, "reps": a.reps, "results": results}, f, indent=1)

    print(f"\nServer: {a.delay_ms:g} ms per request, {a.bandwidth:g} MB/s per connection; "
          f"median of {a.reps} runs; req/waves/bytes counted at the server.\n")
    hdr = ("| file | size | ours wall | req | waves | bytes (% file) | kc-default wall | req | waves | bytes (% file) "
           "| kc-50MiB wall | req | waves | bytes (% file) | speedup vs default | vs 50MiB |")
    print(hdr)
    print("|" + "|".join(["---"] * (hdr.count("|") - 1)) + "|")
    for r in results:
        cells = [r["file"], fmt_bytes(r["size"])]
        for key in ("ours", "kc_default", "kc_50mib"):
            v = r[key]
            cells += [f"{v['wall'] * 1000:.0f} ms", str(v["requests"]), str(v["waves"]),
                      f"{fmt_bytes(v['bytes_sent'])} ({100 * v['bytes_sent'] / r['size']:.1f}%)"]
        cells += [f"{r['kc_default']['wall'] / r['ours']['wall']:.1f}x", f"{r['kc_50mib']['wall'] / r['ours']['wall']:.1f}x"]
        print("| " + " | ".join(cells) + " |")

    print("\nOur engine's own counters (Stats) and the per-wave breakdown at the server:")
    for r in results:
        e = r["ours"]["engine"]
        print(f"\n{r['file']}: engine requests={e['requests']} waves={e['waves']} bytes_fetched={e['bytes_fetched']} peak_rss={e.get('peak_rss_kib', 0) / 1024:.1f} MiB")
        for w in r["ours_waves_detail"]:
            print(f"  wave {w['wave']:>2}: {w['requests']:>4} req {fmt_bytes(w['bytes']):>10} {w['ms']:>7.1f} ms")


if __name__ == "__main__":
    main()
