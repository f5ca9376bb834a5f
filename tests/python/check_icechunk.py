#!/usr/bin/env python3
"""`kerchunk-nos refs|combine --icechunk file://DIR` read back with
icechunk-python 1.1 + zarr 3 + xarray (the target/venv-zarr3 venv), against
netCDF4-python through xarray (xr.open_dataset / xr.concat of the NetCDF files).

Also: a second combine with more members is a new commit (history), and bad
input (a non-Icechunk URL, a non-empty non-repository directory, an array
conflicting with the repository's) exits 1 with nothing written.

usage: check_icechunk.py BIN ROOT
"""
import functools
import os
import subprocess
import sys
import tempfile
import warnings

import icechunk_common
from icechunk_common import (SINGLES, check, check_unauthorized, compare, container, dataset, finish,
                             local_repo, make_run, moto_repo, oracle, same, snapshots)

warnings.simplefilter("ignore")
BIN, ROOT = sys.argv[1], sys.argv[2]
FIX = os.path.join(ROOT, "fixtures", "files")
run = functools.partial(icechunk_common.run, BIN)
w = tempfile.mkdtemp(prefix="check-icechunk-")

# 1. single files: refs --icechunk
for rel, skip in SINGLES.items():
    src = os.path.join(FIX, rel)
    base = os.path.basename(rel)
    dest = os.path.join(w, "r-" + base)
    run("refs", src, "-o", os.path.join(w, base + ".json"), "--icechunk", "file://" + dest)
    compare(dataset(local_repo(dest, [container(src)])), oracle([src]), base, base, skip)
    if rel.startswith("ofs/"):
        check_unauthorized(dest, base)

# 2. a model run: combine 2 members, then 3 (a new commit)
ncs, jsons = make_run(BIN, ROOT, w)
run_repo = os.path.join(w, "run")
url = "file://" + run_repo
prefix = container(ncs[0])
run("combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(w, "run2.json"),
    jsons[1], jsons[0], "--icechunk", url)
compare(dataset(local_repo(run_repo, [prefix])), oracle(ncs[:2], "ocean_time"), "run of 2", "run")
h1 = snapshots(local_repo(run_repo, [prefix]))
run("combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(w, "run3.json"),
    jsons[2], jsons[0], jsons[1], "--icechunk", url)
ds = dataset(local_repo(run_repo, [prefix]))
compare(ds, oracle(ncs, "ocean_time"), "run of 3", "run")
check(ds.sizes["ocean_time"] == 3, "run of 3: ocean_time length")
h2 = snapshots(local_repo(run_repo, [prefix]))
check(len(h2) == len(h1) + 1 and h2[1:] == h1, f"second combine is one new commit: {h1} -> {h2}")
# the first commit still reads as the 2-member run (time travel)
old = dataset(local_repo(run_repo, [prefix]), snapshot=h1[0])
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
check(snapshots(local_repo(run_repo, [prefix])) == h2 and not os.path.exists(out), "shape conflict: no commit")
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
    r = moto_repo(ep, "ice", "runs/dbofs", [prefix])
    check(len(snapshots(r)) == 3, "s3: two combines are two commits")
    compare(dataset(r), oracle(ncs, "ocean_time"), "s3 run of 3", "run")
    # concurrent writers to one repository, one group each: every commit
    # lands (a writer whose base moved rebases). Whether the processes
    # actually overlap is up to the scheduler; the assertion holds either way.
    before = len(snapshots(r))
    procs = [subprocess.Popen([BIN, "refs", ncs[i % 3], "--icechunk", s3url, "--icechunk-group", f"member{i}",
                               "--endpoint-url", ep], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    codes = [p.wait() for p in procs]
    check(codes == [0, 0, 0, 0], f"concurrent writers: exit codes {codes}")
    r = moto_repo(ep, "ice", "runs/dbofs", [prefix])
    check(len(snapshots(r)) == before + 4, "concurrent writers: four new commits")
    for i in range(4):
        g = dataset(r, group=f"member{i}")
        check(same(g["zeta"].values, oracle([ncs[i % 3]])["zeta"].values), f"concurrent writers: member{i}")

finish("check-icechunk")
