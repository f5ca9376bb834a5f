"""What the Icechunk read-back checks share (check_icechunk.py,
icechunk_readers.py, read_icechunk_groups.py): the check log, the fixtures
written as repositories, opening a repository (local or on moto S3) and
comparing what xarray reads from it with netCDF4-python.

They run in three venvs: target/venv-zarr3 (icechunk 1.1.x, Python 3.11),
target/venv-icechunk2 (icechunk 2.x, Python 3.12) and, for the writing half
of icechunk_readers.py, the oracle venv (no icechunk, zarr 2). So this module
imports at the top only what all three have (numpy, xarray), imports icechunk
only where a repository is opened, and uses only icechunk API both lines have.
"""
import glob
import os
import subprocess
import sys

import numpy as np
import xarray as xr

# Known, documented differences (README "Icechunk output"): a netCDF variable
# without _FillValue whose chunks are not all written gets the HDF5 fill value
# as zarr fill_value (so absent chunks read as netCDF returns them), which
# xarray then also uses as a mask, exactly as for the JSON references.
KNOWN = {("netcdf4_features.nc", "default_chunks")}

# Single files written with `refs --icechunk` (relative to fixtures/files),
# each with the variables left out (with a warning: not representable in
# Zarr v3 here).
SINGLES = {
    "netcdf4_features.nc": ["labels", "obs", "ragged"],
    "netcdf4_classic.nc": [],
    "ofs/dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc": [],
}

passed = failed = 0


def check(ok, what):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    if not ok:
        print("FAIL", what)


def finish(tag):
    """Print the tally and exit: 1 if any check failed or none ran.

    `os._exit`, not `sys.exit`: the tally is the result, and icechunk's
    Rust runtime can abort the interpreter while it is torn down after the
    last check (seen once in CI with icechunk-python 1.1.21: SIGABRT after
    "535 passed, 0 failed"), which would fail a run that passed.
    """
    print(f"{tag}: {passed} passed, {failed} failed")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if failed or not passed else 0)


def run(bin_, *args, expect=0):
    """`kerchunk-nos ARGS`, checked to exit with `expect`."""
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "error")}
    p = subprocess.run([bin_, *args], capture_output=True, text=True, env=env)
    if p.returncode != expect:
        print(p.stderr[-2000:])
    check(p.returncode == expect, f"exit {p.returncode} != {expect}: {' '.join(args)}")
    return p


def make_run(bin_, root, work):
    """Three members of one dbofs model run (fixtures/make_ofs.py) under
    work/src, and the JSON references of each (`refs`) in work; returns both
    lists of paths, in forecast-hour order."""
    src = os.path.join(work, "src")
    for h in ("f001", "f002", "f003"):
        subprocess.run([sys.executable, os.path.join(root, "fixtures", "make_ofs.py"), "--model", "dbofs",
                        "--kind", "fields", "--hour", h, "--cycle", "2023-03-23T12", "--out", src],
                       check=True, capture_output=True)
    ncs = sorted(glob.glob(f"{src}/*/*.nc"))
    check(len(ncs) == 3, f"three generated members: {ncs}")
    jsons = [os.path.join(work, os.path.basename(nc) + ".json") for nc in ncs]
    for nc, j in zip(ncs, jsons):
        run(bin_, "refs", nc, "-o", j)
    return ncs, jsons


def container(nc):
    """The file:// virtual chunk container of a NetCDF file's references."""
    return "file://" + os.path.dirname(os.path.realpath(nc)) + "/"


def access(containers):
    """authorize_virtual_chunk_access for virtual chunk containers: file://
    ones need no credentials, others are moto's S3."""
    import icechunk

    # icechunk 2.x deprecates None (anonymous) for a file:// container in
    # favour of a sentinel; 1.1.x has no sentinel and takes None.
    local = getattr(getattr(icechunk, "credentials", None), "LocalFileSystemAccess", None)
    moto = icechunk.s3_credentials(access_key_id="testing", secret_access_key="testing")
    return icechunk.containers_credentials(
        {c: local if c.startswith("file://") else moto for c in containers})


def local_repo(path, containers):
    import icechunk

    return icechunk.Repository.open(icechunk.local_filesystem_storage(path),
                                    authorize_virtual_chunk_access=access(containers))


def moto_repo(endpoint, bucket, prefix, containers):
    import icechunk

    st = icechunk.s3_storage(bucket=bucket, prefix=prefix, endpoint_url=endpoint, allow_http=True,
                             force_path_style=True, region="us-east-1", access_key_id="testing",
                             secret_access_key="testing")
    return icechunk.Repository.open(st, authorize_virtual_chunk_access=access(containers))


def dataset(repo, snapshot=None, group=None):
    """The branch main (or a snapshot) of a repository, opened by xarray."""
    session = repo.readonly_session(snapshot_id=snapshot) if snapshot else repo.readonly_session("main")
    return xr.open_zarr(session.store, group=group, consolidated=False, zarr_format=3)


def snapshots(repo):
    """Snapshot ids of the branch main, newest first (the last is the empty
    root commit)."""
    return [s.id for s in repo.ancestry(branch="main")]


def same(a, b):
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a.shape == b.shape and np.array_equal(a, b)


def oracle(ncs, dim=None):
    """netCDF4-python through xarray: one file, or `xr.concat` along dim."""
    if not dim:
        return xr.open_dataset(ncs[0])
    return xr.concat([xr.open_dataset(p) for p in ncs], dim=dim, data_vars="minimal",
                     coords="minimal", compat="override")


def comparisons(ds, orig, fixture=None, skip=()):
    """(ok, what) for each variable of orig (but skip and KNOWN): in ds, with
    equal values and the same dimension names; and for each of skip: not in
    ds."""
    for name in orig.variables:
        if name in skip or (fixture, name) in KNOWN:
            continue
        if name not in ds.variables:
            yield False, f"{name} missing"
            continue
        yield same(ds[name].values, orig[name].values), f"{name} differs"
        yield tuple(ds[name].dims) == tuple(orig[name].dims), f"dims of {name}"
    for name in skip:
        yield name not in ds.variables, f"{name} should be left out"


def compare(ds, orig, label, fixture=None, skip=()):
    for ok, what in comparisons(ds, orig, fixture, skip):
        check(ok, f"{label}: {what}")


def check_unauthorized(path, label):
    """A reader that does not authorize the virtual chunk container cannot
    read the virtual chunks of the local repository at path."""
    try:
        ds = dataset(local_repo(path, []))
        big = max(ds.data_vars, key=lambda n: ds[n].size)
        ds[big].values
        check(False, f"{label}: unauthorized virtual chunk read succeeded")
    except Exception:
        check(True, "")
