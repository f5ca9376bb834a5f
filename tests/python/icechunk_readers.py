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
import json
import os
import sys
import warnings

from icechunk_common import (SINGLES, check, check_unauthorized, compare, container, dataset, finish,
                             local_repo, make_run, oracle, run, snapshots)


def write(bin_, root, work):
    fix = os.path.join(root, "fixtures", "files")
    repos = []
    for rel, skip in SINGLES.items():
        nc = os.path.join(fix, rel)
        base = os.path.basename(rel)
        repo = os.path.join(work, "r-" + base)
        run(bin_, "refs", nc, "-o", os.path.join(work, base + ".json"), "--icechunk", "file://" + repo)
        repos.append({"repo": repo, "label": base, "fixture": base, "ncs": [nc], "skip": skip,
                      "containers": [container(nc)], "virtual": rel.startswith("ofs/")})

    # A model run committed twice: 2 members, then 3.
    ncs, jsons = make_run(bin_, root, work)
    repo = os.path.join(work, "run")
    for n in (2, 3):
        run(bin_, "combine", "--concat-dim", "ocean_time", "--preset", "roms", os.path.join(work, f"run{n}.json"),
            *jsons[:n], "--icechunk", "file://" + repo)
    repos.append({"repo": repo, "label": "model run", "fixture": "run", "ncs": ncs, "skip": [],
                  "containers": [container(ncs[0])], "virtual": True, "concat": "ocean_time",
                  "history": [3, 2]})
    with open(os.path.join(work, "manifest.json"), "w") as f:
        json.dump(repos, f, indent=1)
    finish("icechunk-readers write")


def read(work, major):
    import icechunk

    warnings.simplefilter("ignore")
    got = icechunk.__version__
    check(got.split(".")[0] == major, f"icechunk {got} is not a {major}.x release")
    with open(os.path.join(work, "manifest.json")) as f:
        repos = json.load(f)
    check(len(repos) == 4, "manifest lists 4 repositories")
    for r in repos:
        label = f"icechunk {got}: {r['label']}"
        try:
            repo = local_repo(r["repo"], r["containers"])
            compare(dataset(repo), oracle(r["ncs"], r.get("concat")), label, r["fixture"], r["skip"])
            if "history" in r:
                # ancestry: newest first; the root commit holds nothing.
                snaps = snapshots(repo)
                check(len(snaps) == r["history"][0], f"{label}: {len(snaps)} snapshots")
                if len(snaps) >= 2:
                    old = dataset(repo, snapshot=snaps[1])
                    check(old.sizes.get(r["concat"]) == r["history"][1], f"{label}: first commit's members")
                    compare(old, oracle(r["ncs"][: r["history"][1]], r["concat"]), label + " (first commit)",
                            r["fixture"], r["skip"])
        except Exception as e:  # a reader that cannot open the repository at all
            check(False, f"{label}: {type(e).__name__}: {e}")
            continue
        if r["virtual"]:
            check_unauthorized(r["repo"], label)
    finish(f"icechunk-readers read {got}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "write":
        write(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "read":
        read(*sys.argv[2:])
    else:
        sys.exit(__doc__)
