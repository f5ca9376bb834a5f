#!/usr/bin/env python3
"""`kerchunk-nos refs|combine --icechunk file://DIR` read back with
icechunk-python 1.1 + zarr 3 + xarray (the target/venv-zarr3 venv), against
netCDF4-python through xarray (xr.open_dataset / xr.concat of the NetCDF files).

Also: a second combine with more members is a new commit (history), and bad
input (a non-Icechunk URL, a non-empty non-repository directory, an array
conflicting with the repository's) exits 1 with nothing written.

usage: check_icechunk.py BIN ROOT
"""
import glob
import os
import subprocess
import sys
import tempfile
import warnings

import icechunk
import numpy as np
import xarray as xr

warnings.simplefilter("ignore")
BIN, ROOT = sys.argv[1], sys.argv[2]
FIX = os.path.join(ROOT, "fixtures", "files")
passed = failed = 0

# Known, documented differences (README "Icechunk output"): a netCDF variable
# without _FillValue whose chunks are not all written gets the HDF5 fill value
# as zarr fill_value (so absent chunks read as netCDF returns them), which
# xarray then also uses as a mask, exactly as for the JSON references.
KNOWN = {("netcdf4_features.nc", "default_chunks")}


def check(ok, what):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    if not ok:
        print("FAIL", what)


def run(*args, expect=0):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if p.returncode != expect:
        print(p.stderr[-2000:])
    check(p.returncode == expect, f"exit {p.returncode} != {expect}: {' '.join(args)}")
    return p


def repo(path, prefixes):
    storage = icechunk.local_filesystem_storage(path)
    return icechunk.Repository.open(
        storage, authorize_virtual_chunk_access={p: None for p in prefixes})


def open_repo(path, prefixes):
    r = repo(path, prefixes)
    return xr.open_zarr(r.readonly_session("main").store, consolidated=False, zarr_format=3)


def history(path, prefixes):
    return [s.id for s in repo(path, prefixes).ancestry(branch="main")]


def same(a, b):
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a.shape == b.shape and np.array_equal(a, b)


def compare(ds, orig, label, fixture, skip=()):
    for name in orig.variables:
        if name in skip or (fixture, name) in KNOWN:
            continue
        ok = name in ds.variables and same(ds[name].values, orig[name].values)
        check(ok, f"{label}: {name}")
        if name in ds.variables:
            check(tuple(ds[name].dims) == tuple(orig[name].dims), f"{label}: dims of {name}")


w = tempfile.mkdtemp(prefix="check-icechunk-")

# 1. single files: refs --icechunk
fixtures = {
    "netcdf4_features.nc": {"labels", "obs", "ragged"},  # not representable in Zarr v3 here: warned
    "netcdf4_classic.nc": set(),
    "ofs/dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc": set(),
}
for rel, skip in fixtures.items():
    src = os.path.join(FIX, rel)
    base = os.path.basename(rel)
    dest = os.path.join(w, "r-" + base)
    run("refs", src, "-o", os.path.join(w, base + ".json"), "--icechunk", "file://" + dest)
    prefix = "file://" + os.path.dirname(os.path.realpath(src)) + "/"
    ds = open_repo(dest, [prefix])
    compare(ds, xr.open_dataset(src), base, base, skip)
    for name in skip:
        check(name not in ds.variables, f"{base}: {name} should be left out")
    # a reader that does not authorize the container cannot read virtual chunks
    if rel.startswith("ofs/"):
        try:
            unauth = open_repo(dest, [])
            big = max(unauth.data_vars, key=lambda n: unauth[n].size)
            unauth[big].values
            check(False, f"{base}: unauthorized virtual chunk read succeeded")
        except Exception:
            check(True, "")

# 2. a model run: combine 2 members, then 3 (a new commit)
src = os.path.join(w, "src")
for h in ("f001", "f002", "f003"):
    subprocess.run([sys.executable, os.path.join(ROOT, "fixtures", "make_ofs.py"), "--model", "dbofs",
                    "--kind", "fields", "--hour", h, "--cycle", "2023-03-23T12", "--out", src],
                   check=True, capture_output=True)
ncs = sorted(glob.glob(f"{src}/*/*.nc"))
jsons = []
for f in ncs:
    j = os.path.join(w, os.path.basename(f) + ".json")
    run("refs", f, "-o", j)
    jsons.append(j)
run_repo = os.path.join(w, "run")
url = "file://" + run_repo
prefix = "file://" + os.path.dirname(os.path.realpath(ncs[0])) + "/"


def concat(files):
    return xr.concat([xr.open_dataset(p) for p in files], dim="ocean_time",
                     data_vars="minimal", coords="minimal", compat="override")


run("combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(w, "run2.json"),
    jsons[1], jsons[0], "--icechunk", url)
compare(open_repo(run_repo, [prefix]), concat(ncs[:2]), "run of 2", "run")
h1 = history(run_repo, [prefix])
run("combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(w, "run3.json"),
    jsons[2], jsons[0], jsons[1], "--icechunk", url)
ds = open_repo(run_repo, [prefix])
compare(ds, concat(ncs), "run of 3", "run")
check(ds.sizes["ocean_time"] == 3, "run of 3: ocean_time length")
h2 = history(run_repo, [prefix])
check(len(h2) == len(h1) + 1 and h2[1:] == h1, f"second combine is one new commit: {h1} -> {h2}")
# the first commit still reads as the 2-member run (time travel)
old = xr.open_zarr(repo(run_repo, [prefix]).readonly_session(snapshot_id=h1[0]).store,
                   consolidated=False, zarr_format=3)
check(old.sizes["ocean_time"] == 2, "history: the first commit keeps 2 members")

# 3. bad input: exit 1, nothing written
out = os.path.join(w, "bad.json")
run("combine", "--concat-dim", "ocean_time", out, jsons[0], "--icechunk", "http://example.invalid/x", expect=1)
check(not os.path.exists(out), "non-Icechunk URL: no JSON written")
notrepo = os.path.join(w, "notrepo")
os.makedirs(notrepo)
open(os.path.join(notrepo, "data.txt"), "w").write("x")
run("refs", ncs[0], "-o", out, "--icechunk", "file://" + notrepo, expect=1)
check(sorted(os.listdir(notrepo)) == ["data.txt"] and not os.path.exists(out),
      "non-repository directory left untouched")
# one member into the 3-member run: ocean_time would shrink (a conflict)
run("refs", ncs[0], "-o", out, "--icechunk", url, expect=1)
check(history(run_repo, [prefix]) == h2 and not os.path.exists(out), "shape conflict: no commit")
# another model's arrays under the same names: other dtype/shape
run("refs", os.path.join(FIX, "netcdf4_features.nc"), "--icechunk", "file://" + os.path.join(w, "r-netcdf4_classic.nc"),
    expect=1)

# 4. an s3:// repository (moto): create, then a second commit
ep = os.environ.get("MOTO_ENDPOINT")
check(bool(ep), "MOTO_ENDPOINT set (the s3:// part must run)")
if ep:
    s3url = "s3://ice/runs/dbofs"
    run("combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(w, "s3run2.json"),
        jsons[0], jsons[1], "--icechunk", s3url, "--endpoint-url", ep)
    run("combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(w, "s3run3.json"),
        jsons[0], jsons[1], jsons[2], "--icechunk", s3url, "--endpoint-url", ep)
    st = icechunk.s3_storage(bucket="ice", prefix="runs/dbofs", endpoint_url=ep, allow_http=True,
                             force_path_style=True, region="us-east-1", access_key_id="testing",
                             secret_access_key="testing")
    r = icechunk.Repository.open(st, authorize_virtual_chunk_access={prefix: None})
    check(len(list(r.ancestry(branch="main"))) == 3, "s3: two combines are two commits")
    ds = xr.open_zarr(r.readonly_session("main").store, consolidated=False, zarr_format=3)
    compare(ds, concat(ncs), "s3 run of 3", "run")
    # concurrent writers to one repository, one group each: every commit
    # lands (a writer whose base moved rebases). Whether the processes
    # actually overlap is up to the scheduler; the assertion holds either way.
    before = len(list(r.ancestry(branch="main")))
    procs = [subprocess.Popen([BIN, "refs", ncs[i % 3], "--icechunk", s3url, "--icechunk-group", f"member{i}",
                               "--endpoint-url", ep], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    codes = [p.wait() for p in procs]
    check(codes == [0, 0, 0, 0], f"concurrent writers: exit codes {codes}")
    r = icechunk.Repository.open(st, authorize_virtual_chunk_access={prefix: None})
    check(len(list(r.ancestry(branch="main"))) == before + 4, "concurrent writers: four new commits")
    for i in range(4):
        g = xr.open_zarr(r.readonly_session("main").store, group=f"member{i}", consolidated=False, zarr_format=3)
        check(same(g["zeta"].values, xr.open_dataset(ncs[i % 3])["zeta"].values), f"concurrent writers: member{i}")

print(f"check-icechunk: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
