#!/usr/bin/env python3
"""Reads groups of Icechunk repositories on S3 (moto) with icechunk-python
1.1 + zarr 3 + xarray (the target/venv-zarr3 venv) and compares each with
`xr.concat` of its NetCDF files (netCDF4 engine). Used by
tests/python/check_icechunk_pipeline.py, which runs in the oracle venv (boto3,
moto) and cannot import icechunk/zarr 3.

usage: read_icechunk_groups.py SPEC.json
SPEC: {"endpoint", "container",
       "repos": [{"bucket", "prefix", "groups": {GROUP: {"dim": DIM, "files": [NC, ...]}}}, ...]}
Prints one JSON line: [{"failures": [...], "sizes": {GROUP: n}, "snapshots": n}, ...] (one per repo).
"""
import json
import sys
import warnings

import icechunk
import numpy as np
import xarray as xr

warnings.simplefilter("ignore")
spec = json.load(open(sys.argv[1]))


def same(a, b):
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a.shape == b.shape and np.array_equal(a, b)


def check_repo(r):
    st = icechunk.s3_storage(bucket=r["bucket"], prefix=r["prefix"], endpoint_url=spec["endpoint"],
                             allow_http=True, force_path_style=True, region="us-east-1",
                             access_key_id="testing", secret_access_key="testing")
    repo = icechunk.Repository.open(st, authorize_virtual_chunk_access=icechunk.containers_credentials({
        spec["container"]: icechunk.s3_credentials(access_key_id="testing", secret_access_key="testing")}))
    failures, sizes = [], {}
    for group, g in r["groups"].items():
        try:
            ds = xr.open_zarr(repo.readonly_session("main").store, group=group, consolidated=False,
                              zarr_format=3)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            failures.append(f"{group}: cannot open: {e}")
            continue
        orig = xr.concat([xr.open_dataset(f) for f in g["files"]], dim=g["dim"], data_vars="minimal",
                         coords="minimal", compat="override")
        sizes[group] = int(ds.sizes.get(g["dim"], 0))
        for name in orig.variables:
            if name not in ds.variables:
                failures.append(f"{group}: {name} missing")
            elif not same(ds[name].values, orig[name].values):
                failures.append(f"{group}: {name} differs")
            elif tuple(ds[name].dims) != tuple(orig[name].dims):
                failures.append(f"{group}: dims of {name}")
    return {"failures": failures, "sizes": sizes, "snapshots": len(list(repo.ancestry(branch="main")))}


print(json.dumps([check_repo(r) for r in spec["repos"]]))
