#!/usr/bin/env python3
"""Parquet references (`kerchunk-nos refs|combine ... OUT.parq`) against
independent readers.

    check_parquet.py [BIN]      (default: cargo build, target/debug/kerchunk-nos)

For every fixture file (fixtures/files, same set as check_refs.py):
  1. `BIN refs FILE -o x.json` and `BIN refs FILE -o x.parq`.
  2. Every key of the JSON set, read through fsspec's reference filesystem
     opened on the Parquet directory (LazyReferenceMapper, fastparquet
     engine: what `fsspec.filesystem("reference", fo="x.parq")` does), gives
     the same bytes as through the JSON set (metadata: the same parsed
     document); every chunk key of the grid absent from the JSON set is absent
     from the Parquet set too (zarr reads the fill value).
  3. Format oracle: kerchunk 0.2.7's own `kerchunk.df.refs_to_dataframe` on the
     same JSON; its `.zmetadata` parses equal to ours, we write the same
     record files, and each of our record files (decoded with pyarrow, a
     second Parquet reader) has kerchunk's rows (kerchunk pads the last record
     with null rows up to record_size; we do not: the padding must be null).
  4. Where xarray opens the JSON set, xarray on the Parquet set gives the same
     values for every variable.
Combined model run (three forecast hours of a dbofs cycle, fixtures/make_ofs.py,
as tests/cli_combine.sh) with a small --record-size so arrays span several
record files: xarray on combine's run.parq equals xr.concat of the NetCDF
files and the JSON aggregate's read-back.
Pipeline: extract_single + update_model_run on a local stand-in bucket;
the aggregate's Parquet form (KEY.parq/, --output-format json,parquet) holds
exactly the JSON aggregate's references; parquet alone still writes the JSON anchor;
default json writes no Parquet; an unknown format is a usage error (exit 2).
Bad input: a .parq path that exists as a file, a non-empty directory that is
not a Parquet reference set: exit 1, a message naming the path, nothing
changed or left behind; a previous Parquet set is replaced.
Prints "parquet: N passed, N failed"; exits 1 on any failure.
"""
import base64
import glob
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import fsspec
import numpy as np
import pyarrow.parquet as pq
import xarray as xr
from fsspec.implementations.reference import LazyReferenceMapper
from kerchunk.df import refs_to_dataframe

ROOT = pathlib.Path(__file__).resolve().parents[2]
FILES = ROOT / "fixtures" / "files"
PY = sys.executable

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL ", what)
    return ok


def run(args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True)


def is_meta(k):
    return k.startswith(".z") or "/.z" in k


def grid(zarray):
    g = [-(-s // c) for s, c in zip(zarray["shape"], zarray["chunks"])]
    return g or [1]


def all_keys(field, g):
    for ind in np.ndindex(*g):
        yield field + "/" + ".".join(str(i) for i in ind)


def ref_fs(fo):
    return fsspec.filesystem("reference", fo=str(fo), remote_protocol="file")


def keys_equal(name, js, pq_dir):
    """Step 2."""
    refs = json.loads(pathlib.Path(js).read_text())["refs"]
    fj, fp = ref_fs(js), ref_fs(pq_dir)
    bad = []
    keys = sorted(refs)
    # one batched cat per set (per-key calls cost a round trip each through
    # fsspec's event loop); failures come back as exception values
    ja, pb = fj.cat(keys, on_error="return"), fp.cat(keys, on_error="return")
    for k in keys:
        a, b = ja.get(k), pb.get(k)
        if isinstance(a, Exception) or isinstance(b, Exception) or a is None or b is None:
            bad.append(f"{k}: {a!r:.80} / {b!r:.80}")
            continue
        if is_meta(k):
            same = json.loads(a) == json.loads(b) or (a == b)
        else:
            same = a == b
        if not same:
            bad.append(k)
    for k in refs:
        if k.endswith("/.zarray"):
            field = k[: -len("/.zarray")]
            g = grid(json.loads(refs[k]))
            if np.prod(g) > 100_000:
                continue
            for key in all_keys(field, g):
                if key not in refs and fp.exists(key):
                    bad.append(f"{key}: absent from JSON, present in Parquet")
    check(not bad, f"{name}: keys differ: {bad[:5]}")


def rows(path):
    t = pq.read_table(path)
    return [tuple(r.get(c) for c in ("path", "offset", "size", "raw")) for r in t.to_pylist()]


def format_equal(name, js, pq_dir, work):
    """Step 3."""
    theirs = work / "kerchunk.parq"
    refs_to_dataframe(str(js), str(theirs), record_size=int(json.loads((pq_dir / ".zmetadata").read_text())["record_size"]))
    zo = json.loads((pq_dir / ".zmetadata").read_text())
    zt = json.loads((theirs / ".zmetadata").read_text())
    zo.pop("warnings", None)
    check(zo == zt, f"{name}: .zmetadata differs from kerchunk's")
    ours = sorted(p.relative_to(pq_dir).as_posix() for p in pq_dir.rglob("*.parq"))
    kers = sorted(p.relative_to(theirs).as_posix() for p in theirs.rglob("*.parq"))
    # kerchunk skips records without any reference; we write them as null rows
    if not check(set(kers) <= set(ours), f"{name}: kerchunk's record files {kers[:4]} not among ours {ours[:4]}"):
        return
    null = (None, 0, 0, None)
    for rel in ours:
        a = rows(pq_dir / rel)
        if rel not in kers:
            check(all(r == null for r in a), f"{name}: {rel}: kerchunk has no such record, ours is not all null")
            continue
        b = rows(theirs / rel)
        ok = len(a) <= len(b) and a == b[: len(a)] and all(r == null for r in b[len(a):])
        check(ok, f"{name}: {rel} rows differ from kerchunk's")


def open_xr(fo):
    fs = ref_fs(fo)
    return xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False,
                           decode_times=False, mask_and_scale=False)


def values(ds, v):
    try:
        return ds[v].values, None
    except Exception as e:  # noqa: BLE001 - compared below
        return None, type(e).__name__


def same_dataset(name, a, b):
    """Same variables, dims and values; a variable the JSON side cannot read
    (too big for memory, undecodable) must fail the same way from Parquet."""
    bad = []
    for v in a.variables:
        if v not in b.variables or a[v].dims != b[v].dims:
            bad.append(v)
            continue
        (x, ex), (y, ey) = values(a, v), values(b, v)
        if ex or ey:
            ok = ex == ey
        else:
            ok = np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
        if not ok:
            bad.append(v)
    check(not bad, f"{name}: variables differ: {bad[:5]}")


def fixture(bin_, f, work):
    name = f.relative_to(FILES).as_posix()
    js, pq_dir = work / "x.json", work / "x.parq"
    r1, r2 = run([bin_, "refs", f, "-o", js]), run([bin_, "refs", f, "-o", pq_dir, "--record-size", "500"])
    if not check(r1.returncode == 0 and r2.returncode == 0, f"{name}: refs failed: {r1.stderr}{r2.stderr}"):
        return
    keys_equal(name, js, pq_dir)
    format_equal(name, js, pq_dir, work)
    try:
        a = open_xr(js)
    except Exception:  # noqa: BLE001 - xarray cannot open this file's JSON refs either
        return
    same_dataset(name, a, open_xr(pq_dir))


def combined(bin_, work):
    src = work / "src"
    for h in ("f001", "f002", "f003"):
        subprocess.run([PY, ROOT / "fixtures" / "make_ofs.py", "--model", "dbofs", "--kind", "fields",
                        "--hour", h, "--cycle", "2023-03-23T12", "--out", src], check=True, capture_output=True)
    ncs = sorted(glob.glob(f"{src}/*/*.nc"))
    singles = []
    for nc in ncs:
        out = work / (os.path.basename(nc) + ".zarr")
        check(run([bin_, "refs", nc, "-o", out]).returncode == 0, f"refs {nc}")
        singles.append(out)
    base = [bin_, "combine", "--concat-dim", "ocean_time", "--preset", "roms"]
    r1 = run(base + [work / "run.json"] + singles)
    r2 = run(base + ["--record-size", "2", work / "run.parq"] + singles)
    if not check(r1.returncode == 0 and r2.returncode == 0, f"combine failed: {r1.stderr}{r2.stderr}"):
        return singles
    recs = list((work / "run.parq").rglob("refs.1.parq"))
    check(recs, "combined: no array spans two record files (record_size 2)")
    keys_equal("combined", work / "run.json", work / "run.parq")
    format_equal("combined", work / "run.json", work / "run.parq", work)
    ds = open_xr(work / "run.parq")
    same_dataset("combined vs JSON", open_xr(work / "run.json"), ds)
    orig = xr.concat([xr.open_dataset(p, decode_times=False, mask_and_scale=False) for p in ncs],
                     dim="ocean_time", data_vars="minimal", coords="minimal", compat="override")
    bad = [v for v in orig.data_vars
           if v not in ds or not np.array_equal(ds[v].values, orig[v].values, equal_nan=True)]
    check(not bad, f"combined vs xr.concat: {bad[:5]}")
    check(list(ds.ocean_time.values) == list(orig.ocean_time.values), "combined ocean_time")
    # the lazy mapper really is in use
    check(isinstance(ref_fs(work / "run.parq").references, LazyReferenceMapper), "not lazy")
    return singles


def sns(bucket, key):
    inner = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "eventTime": "2023-03-23T13:05:00.000Z",
                          "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}}]}
    return json.dumps({"Type": "Notification", "Message": json.dumps(inner)})


def same_refs(name, js, pq_dir):
    """Every reference of the JSON aggregate, as the lazy Parquet mapper
    returns it; no chunk key more."""
    refs = json.loads(pathlib.Path(js).read_text())["refs"]
    lazy = LazyReferenceMapper(str(pq_dir))
    bad = []
    for k, v in refs.items():
        try:
            got = lazy[k]
        except KeyError:
            bad.append(f"{k}: missing")
            continue
        if is_meta(k):
            ok = json.loads(got) == json.loads(v)
        elif isinstance(v, list):
            ok = list(got) == v
        else:
            want = base64.b64decode(v[7:]) if v.startswith("base64:") else v.encode()
            ok = bytes(got) == want
        if not ok:
            bad.append(k)
    for k in refs:
        if k.endswith("/.zarray"):
            for key in all_keys(k[: -len("/.zarray")], grid(json.loads(refs[k]))):
                if key not in refs and key in lazy:
                    bad.append(f"{key}: absent from JSON, present in Parquet")
    check(not bad, f"{name}: references differ: {bad[:5]}")


def pipeline(bin_, work):
    """update_model_run --output-format: Parquet beside the JSON aggregate."""
    buckets = work / "buckets"
    for h in ("f001", "f002", "f003"):
        subprocess.run([PY, ROOT / "fixtures" / "make_ofs.py", "--model", "dbofs", "--kind", "fields",
                        "--hour", h, "--cycle", "2023-03-23T12", "--out", buckets / "noaa-ofs-pds"],
                       check=True, capture_output=True)
        key = f"dbofs.20230323/nos.dbofs.fields.{h}.20230323.t12z.nc"
        r = run([bin_, "extract_single", sns("noaa-ofs-pds", key), f"file://{buckets}/nextgen-dmac", "nos",
                 "--source-root", buckets])
        check(r.returncode == 0, f"extract_single {key}: {r.stderr}")
    dest = buckets / "nextgen-dmac"
    agg = dest / "nos" / "nos.dbofs.fields.20230323.t12z.nc.zarr"
    msg = sns("nextgen-dmac", "nos/nos.dbofs.fields.f003.20230323.t12z.nc.zarr")
    update = [bin_, "update_model_run", msg, "--dest", f"file://{dest}", "--source-root", buckets]
    r = run(update)
    check(r.returncode == 0 and agg.is_file() and not list(dest.rglob("*.parq")),
          f"default: JSON only: {r.stderr} {list(dest.rglob('*.parq'))[:3]}")
    r = run(update + ["--output-format", "json,parquet"])
    pq_dir = pathlib.Path(str(agg) + ".parq")
    if check(r.returncode == 0 and (pq_dir / ".zmetadata").is_file(), f"json,parquet: {r.stderr}"):
        same_refs("pipeline aggregate", agg, pq_dir)
    agg.unlink()
    r = run(update + ["--output-format", "parquet"])
    # the JSON aggregate is the compare-and-swap anchor: written in every case
    if check(r.returncode == 0 and agg.is_file() and (pq_dir / ".zmetadata").is_file(),
             f"parquet only: {r.returncode} {r.stderr}"):
        same_refs("pipeline aggregate (parquet only)", agg, pq_dir)
    r = run(update + ["--output-format", "json,netcdf"])
    check(r.returncode == 2 and "netcdf" in r.stderr, f"unknown format: {r.returncode} {r.stderr}")


def listing(d):
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))


def bad_input(bin_, work, singles):
    f = next(FILES.rglob("*.nc"))
    (work / "bad").mkdir()
    d = work / "bad"
    (d / "file.parq").write_bytes(b"keep")
    (d / "foreign.parq").mkdir()
    (d / "foreign.parq" / "data.txt").write_bytes(b"keep")
    before = listing(d)
    for target in ("file.parq", "foreign.parq"):
        for args in ([bin_, "refs", f, "-o", d / target],
                     [bin_, "combine", "--concat-dim", "ocean_time", d / target] + singles):
            r = run(args)
            check(r.returncode == 1 and target in r.stderr, f"{args[1]} -> {target}: exit {r.returncode} {r.stderr!r}")
    check(listing(d) == before, f"bad input changed {d}: {listing(d)}")
    check((d / "file.parq").read_bytes() == b"keep", "file.parq changed")
    # a previous Parquet set (and an empty directory) is replaced
    (d / "empty.parq").mkdir()
    r = run([bin_, "refs", f, "-o", d / "empty.parq"])
    check(r.returncode == 0 and (d / "empty.parq" / ".zmetadata").is_file(), f"empty dir: {r.stderr}")
    r = run([bin_, "refs", f, "-o", d / "empty.parq", "--record-size", "1"])
    check(r.returncode == 0 and json.loads((d / "empty.parq" / ".zmetadata").read_text())["record_size"] == 1,
          f"replace: {r.stderr}")
    want = sorted(before + ["empty.parq"] + ["empty.parq/" + p for p in listing(d / "empty.parq")])
    check(listing(d) == want, f"temporary directories left behind: {listing(d)}")


def guarded(name, fn, *args):
    """A crash (a reader raising) is a failure of this case; the rest goes on."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - reported
        check(False, f"{name}: {type(e).__name__}: {str(e)[:300]}")
        return None


def main():
    if len(sys.argv) > 1:
        bin_ = pathlib.Path(sys.argv[1]).resolve()
    else:
        subprocess.run(["cargo", "build", "-q", "-p", "ingest", "--bin", "kerchunk-nos"], cwd=ROOT, check=True)
        bin_ = ROOT / "target" / "debug" / "kerchunk-nos"
    files = sorted(p for p in FILES.rglob("*") if p.is_file() and p.suffix in (".h5", ".nc"))
    if len(files) < 20:
        sys.exit(f"only {len(files)} fixture files under {FILES}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for i, f in enumerate(files):
            work = tmp / f"f{i}"
            work.mkdir()
            before = failed
            guarded(f.relative_to(FILES).as_posix(), fixture, bin_, f, work)
            print(("ok    " if failed == before else "FAIL  ") + f.relative_to(FILES).as_posix())
        (tmp / "c").mkdir()
        singles = guarded("combined", combined, bin_, tmp / "c") or []
        (tmp / "p").mkdir()
        guarded("pipeline", pipeline, bin_, tmp / "p")
        guarded("bad input", bad_input, bin_, tmp / "f0", singles)
    print(f"parquet: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
