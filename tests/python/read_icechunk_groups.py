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

from icechunk_common import comparisons, dataset, moto_repo, oracle, snapshots

warnings.simplefilter("ignore")
spec = json.load(open(sys.argv[1]))


def check_repo(r):
    repo = moto_repo(spec["endpoint"], r["bucket"], r["prefix"], [spec["container"]])
    failures, sizes = [], {}
    for group, g in r["groups"].items():
        try:
            ds = dataset(repo, group=group)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            failures.append(f"{group}: cannot open: {e}")
            continue
        sizes[group] = int(ds.sizes.get(g["dim"], 0))
        failures += [f"{group}: {what}" for ok, what in comparisons(ds, oracle(g["files"], g["dim"])) if not ok]
    return {"failures": failures, "sizes": sizes, "snapshots": len(snapshots(repo))}


print(json.dumps([check_repo(r) for r in spec["repos"]]))
