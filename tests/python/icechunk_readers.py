#!/usr/bin/env python3
"""The Icechunk repositories kerchunk-nos writes, read by every supported
icechunk-python line (README "Icechunk output", readers).

  icechunk_readers.py write BIN ROOT WORK   (oracle venv: no icechunk needed)
      writes repositories with `refs|combine --icechunk file://...` under
      WORK and a manifest WORK/manifest.json of what each must hold;
  icechunk_readers.py read WORK MAJOR       (a reader venv)
      opens every repository of the manifest with the installed icechunk
      (whose major version must be MAJOR), zarr 3 and xarray, and checks
      every variable equal to netCDF4-python (xr.open_dataset / xr.concat of
      the NetCDF files), the dimension names, the snapshot history (the
      first combine's commit still reads as 2 members) and that a reader
      that does not authorize the virtual chunk container cannot read.

tests/icechunk_readers_test.sh runs `read` with icechunk 2.x (Python 3.12)
and 1.1.x (Python 3.11) on the same repositories, and checks the reads left
every file of them unchanged.
"""
import glob
import json
import os
import subprocess
import sys
import warnings

passed = failed = 0

# Known, documented differences (README "Icechunk output"), as in
# check_icechunk.py: a variable without _FillValue whose chunks are not all
# written is masked with the HDF5 fill value.
KNOWN = {("netcdf4_features.nc", "default_chunks")}


def check(ok, what):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    if not ok:
        print("FAIL", what)


def finish(tag):
    print(f"icechunk-readers {tag}: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


def write(bin_, root, work):
    fix = os.path.join(root, "fixtures", "files")

    def run(*args):
        p = subprocess.run([bin_, *args], capture_output=True, text=True,
                           env={**os.environ, "RUST_LOG": "error"})
        if p.returncode != 0:
            print(p.stderr[-2000:])
        check(p.returncode == 0, f"exit {p.returncode}: {' '.join(args)}")

    def container(nc):
        return "file://" + os.path.dirname(os.path.realpath(nc)) + "/"

    repos = []
    singles = {
        "netcdf4_features.nc": ["labels", "obs", "ragged"],  # left out with a warning
        "netcdf4_classic.nc": [],
        "ofs/dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc": [],
    }
    for rel, skip in singles.items():
        nc = os.path.join(fix, rel)
        base = os.path.basename(rel)
        repo = os.path.join(work, "r-" + base)
        run("refs", nc, "-o", os.path.join(work, base + ".json"), "--icechunk", "file://" + repo)
        repos.append({"repo": repo, "label": base, "fixture": base, "ncs": [nc], "skip": skip,
                      "containers": [container(nc)], "virtual": rel.startswith("ofs/")})

    # A model run committed twice: 2 members, then 3.
    src = os.path.join(work, "src")
    for h in ("f001", "f002", "f003"):
        subprocess.run([sys.executable, os.path.join(root, "fixtures", "make_ofs.py"), "--model", "dbofs",
                        "--kind", "fields", "--hour", h, "--cycle", "2023-03-23T12", "--out", src],
                       check=True, capture_output=True)
    ncs = sorted(glob.glob(f"{src}/*/*.nc"))
    check(len(ncs) == 3, f"three generated members: {ncs}")
    jsons = []
    for nc in ncs:
        j = os.path.join(work, os.path.basename(nc) + ".json")
        run("refs", nc, "-o", j)
        jsons.append(j)
    repo = os.path.join(work, "run")
    for n in (2, 3):
        run("combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(work, f"run{n}.json"),
            *jsons[:n], "--icechunk", "file://" + repo)
    repos.append({"repo": repo, "label": "model run", "fixture": "run", "ncs": ncs, "skip": [],
                  "containers": [container(ncs[0])], "virtual": True, "concat": "ocean_time",
                  "history": [3, 2]})
    with open(os.path.join(work, "manifest.json"), "w") as f:
        json.dump(repos, f, indent=1)
    finish("write")


def read(work, major):
    import icechunk
    import numpy as np
    import xarray as xr

    warnings.simplefilter("ignore")
    got = icechunk.__version__
    check(got.split(".")[0] == major, f"icechunk {got} is not a {major}.x release")
    # icechunk 2.x deprecates None (anonymous) for a file:// container in
    # favour of a sentinel; 1.1.x has no sentinel and takes None.
    local = getattr(getattr(icechunk, "credentials", None), "LocalFileSystemAccess", None)

    def open_repo(path, containers):
        st = icechunk.local_filesystem_storage(path)
        return icechunk.Repository.open(st, authorize_virtual_chunk_access={c: local for c in containers})

    def dataset(session):
        return xr.open_zarr(session.store, consolidated=False, zarr_format=3)

    def same(a, b):
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        return a.shape == b.shape and np.array_equal(a, b)

    def oracle(ncs, dim):
        if not dim:
            return xr.open_dataset(ncs[0])
        return xr.concat([xr.open_dataset(p) for p in ncs], dim=dim, data_vars="minimal",
                         coords="minimal", compat="override")

    def compare(ds, orig, r, label):
        for name in orig.variables:
            if name in r["skip"] or (r["fixture"], name) in KNOWN:
                continue
            ok = name in ds.variables and same(ds[name].values, orig[name].values)
            check(ok, f"{label}: {name}")
            if name in ds.variables:
                check(tuple(ds[name].dims) == tuple(orig[name].dims), f"{label}: dims of {name}")
        for name in r["skip"]:
            check(name not in ds.variables, f"{label}: {name} should be left out")

    with open(os.path.join(work, "manifest.json")) as f:
        repos = json.load(f)
    check(len(repos) == 4, "manifest lists 4 repositories")
    for r in repos:
        label = f"icechunk {got}: {r['label']}"
        try:
            repo = open_repo(r["repo"], r["containers"])
            compare(dataset(repo.readonly_session("main")), oracle(r["ncs"], r.get("concat")), r, label)
            if "history" in r:
                # ancestry: newest first; the root commit holds nothing.
                snaps = [s.id for s in repo.ancestry(branch="main")]
                check(len(snaps) == r["history"][0], f"{label}: {len(snaps)} snapshots")
                if len(snaps) >= 2:
                    old = dataset(repo.readonly_session(snapshot_id=snaps[1]))
                    check(old.sizes.get(r["concat"]) == r["history"][1], f"{label}: first commit's members")
                    compare(old, oracle(r["ncs"][: r["history"][1]], r["concat"]), r, label + " (first commit)")
        except Exception as e:  # a reader that cannot open the repository at all
            check(False, f"{label}: {type(e).__name__}: {e}")
            continue
        if r["virtual"]:
            try:
                unauth = dataset(open_repo(r["repo"], []).readonly_session("main"))
                big = max(unauth.data_vars, key=lambda n: unauth[n].size)
                unauth[big].values
                check(False, f"{label}: unauthorized virtual chunk read succeeded")
            except Exception:
                check(True, "")
    finish(f"read {got}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "write":
        write(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "read":
        read(*sys.argv[2:])
    else:
        sys.exit(__doc__)
