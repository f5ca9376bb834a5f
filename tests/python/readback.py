#!/usr/bin/env python3
"""Read a reference set back and compare every array with h5py, bit for bit.

    readback.py REFS.json ORIGINAL.h5 [--allow-missing PATH ...] [--no-xarray]

Every URL in the reference set is replaced by ORIGINAL (so refs made with any
url, e.g. "file://fixture" or "s3://...", read the local copy). Then:

1. zarr 2 over fsspec ``ReferenceFileSystem``: every h5py dataset is read
   with h5py and with zarr and compared: same shape, same dtype, same bytes
   (floats: ``array_equal(equal_nan=True)`` plus an exact bit comparison;
   vlen strings: h5py bytes decoded to str; object arrays element-wise).
2. xarray ``open_dataset(engine="zarr", consolidated=False, decode_cf=False,
   backend_kwargs={"storage_options": ...})`` per group: every variable's raw
   values against h5py the same way.

Allowed deviations, each checked, never assumed:

* netCDF-4 variables on an unlimited dimension with fewer records written
  than the dimension's length: netCDF-C (and xarray's netcdf4 engine) give
  them the dimension's length, unwritten records reading as the fill value;
  our refs do the same, so h5py's shape is shorter. When the shapes differ
  and the file is netCDF-4, the array is compared with netCDF4-python's
  read instead (auto mask/scale/chartostring off, bit for bit), and
  h5py's data must equal the leading block.
* xarray converts big-endian arrays to native byte order: in the xarray
  pass (only) dtypes are compared ignoring byte order; the values must
  still be identical (h5py's array is byte-swapped to native first).
* a dataset h5py itself cannot read whole (e.g. hdfgroup/tlayouto.h5
  declares a (8589934592, 268435457) dataspace): reported as "h5py cannot
  read either" and not counted only when our read fails with the same
  exception type and message as h5py's; a small corner is then compared.

Datasets kerchunk skips by design (dimension scales without stored data) are
not expected. Others absent from the refs are mismatches unless named with
``--allow-missing`` (e.g. datasets the translator reported as warnings).
Prints one line per variable; exits 1 on any mismatch.
"""
import argparse
import json
import sys

import fsspec
import h5py
import numpy as np
import zarr


def rewrite_urls(refs, url):
    out = {}
    for k, v in refs.items():
        if isinstance(v, list) and v:
            out[k] = [url] + list(v[1:])
        else:
            out[k] = v
    return out


def load_refs(path, original):
    with open(path) as f:
        doc = json.load(f)
    refs = doc["refs"] if "refs" in doc else doc
    refs = rewrite_urls(refs, original)
    return {"version": 1, "refs": refs}


def h5_expected_absent(ds):
    """kerchunk skips dimension scales that have no stored data."""
    if not h5py.h5ds.is_scale(ds.id):
        return False
    if ds.shape is None:
        return True
    if ds.chunks is None:
        return ds.id.get_offset() is None
    return ds.id.get_num_chunks() == 0


def h5_read(ds):
    if ds.shape is None:
        return np.empty((0,), dtype=ds.dtype)
    a = ds[()]
    if ds.dtype.kind == "O":
        a = np.asarray(a, dtype=object)
        flat = a.reshape(-1)
        for i, v in enumerate(flat):
            if isinstance(v, bytes):
                flat[i] = v.decode("utf-8", errors="replace")
        a = flat.reshape(a.shape)
    return np.asarray(a)


def native(a):
    """The same values in native byte order (recursively for structs)."""
    return a.astype(a.dtype.newbyteorder("="))


def compare(expected, got, ignore_byteorder=False):
    """Return None when equal, else a short reason."""
    got = np.asarray(got)
    if ignore_byteorder and expected.dtype != got.dtype \
            and expected.dtype.newbyteorder("=") == got.dtype.newbyteorder("="):
        # value-preserving swaps; the bytes are compared below
        expected, got = native(expected), native(got)
    if expected.shape != got.shape:
        return f"shape {got.shape} != h5py {expected.shape}"
    if expected.dtype.kind == "O" or got.dtype.kind == "O":
        e = expected.reshape(-1).tolist()
        g = got.reshape(-1).tolist()
        def differ(x, y):
            # vlen sequences: numpy arrays, equal in dtype and values
            if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                return not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
                            and x.dtype == y.dtype and np.array_equal(x, y))
            return x != y
        bad = [i for i, (x, y) in enumerate(zip(e, g)) if differ(x, y)]
        return None if not bad else f"{len(bad)} object elements differ (first at {bad[0]}: {g[bad[0]]!r} != {e[bad[0]]!r})"
    if expected.dtype.names and got.dtype.names:
        # compare member by member: numpy names zarr's padding entries f1, f2...
        for name in expected.dtype.names:
            if name not in got.dtype.names:
                return f"member {name!r} missing"
            why = compare(np.ascontiguousarray(expected[name]), np.ascontiguousarray(got[name]), ignore_byteorder)
            if why:
                return f"member {name!r}: {why}"
        return None
    if expected.dtype != got.dtype:
        # same bytes under a different dtype would still be a wrong reading
        return f"dtype {got.dtype} != h5py {expected.dtype}"
    if expected.dtype.kind in "fc":
        if not np.array_equal(expected, got, equal_nan=True):
            diff = ~((expected == got) | (np.isnan(expected) & np.isnan(got)))
            idx = np.argwhere(diff)[0].tolist() if diff.ndim else []
            return f"{int(diff.sum())} values differ (first at {idx})"
    if expected.tobytes() != got.tobytes():
        return "bytes differ"
    return None


NC_READ = """
import sys, numpy as np, netCDF4
path, name, out = sys.argv[1:]
nc = netCDF4.Dataset(path, "r")
nc.set_auto_maskandscale(False)
nc.set_always_mask(False)
nc.set_auto_chartostring(False)
np.save(out, np.asarray(nc[name.strip("/")][...]), allow_pickle=True)
"""


class Reader:
    """h5py reads, with the netCDF-4 and h5py-cannot-read fallbacks."""

    def __init__(self, h5, path):
        self.h5, self.path = h5, path
        self.is_nc4 = "_NCProperties" in h5.attrs or any_netcdf4_attr(h5)

    def nc_read(self, name):
        """netCDF4-python's raw read of variable `name`, in a subprocess:
        h5py's and netCDF4's HDF5 copies cannot both open files in one
        process ("NetCDF: HDF error" / H5DSis_scale failures)."""
        import subprocess
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".npy") as out:
            subprocess.run([sys.executable, "-c", NC_READ, self.path, name, out.name], check=True,
                           capture_output=True)
            return np.load(out.name, allow_pickle=True)

    def check(self, name, read_ours, ignore_byteorder=False):
        """Compare our array with h5py's; returns (reason or None, note)."""
        ds = self.h5[name]
        try:
            expected = h5_read(ds)
        except Exception as e:
            h5err = f"{type(e).__name__}: {e}"
            try:
                read_ours()
                return f"h5py fails ({h5err}) but ours reads", ""
            except Exception as e2:
                ours = f"{type(e2).__name__}: {e2}"
            if ours != h5err:
                return f"h5py fails ({h5err}), ours fails differently ({ours})", ""
            return None, f"h5py cannot read either ({h5err})"
        got = np.asarray(read_ours())
        if expected.shape != got.shape and self.is_nc4 and len(expected.shape) == len(got.shape) \
                and all(e <= g for e, g in zip(expected.shape, got.shape)):
            # netCDF dimension length (unlimited dim, fewer records written)
            lead = tuple(slice(0, e) for e in expected.shape)
            why = compare(expected, np.ascontiguousarray(got[lead]), ignore_byteorder)
            if why:
                return f"leading block vs h5py: {why}", ""
            ncarr = self.nc_read(name)
            if ds.dtype.kind == "O":
                ncarr = np.asarray(ncarr, dtype=object)
            why = compare(ncarr, got, ignore_byteorder)
            if why:
                return f"vs netCDF4-python {ncarr.shape}: {why}", ""
            return None, f"= netCDF4-python, shape {ncarr.shape} (h5py {expected.shape})"
        return compare(expected, got, ignore_byteorder), ""


def any_netcdf4_attr(h5):
    found = []

    def visit(n, o):
        if isinstance(o, h5py.Dataset) and ("_Netcdf4Dimid" in o.attrs or "_Netcdf4Coordinates" in o.attrs):
            found.append(n)
            return True
    h5.visititems(visit)
    return bool(found)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("refs")
    ap.add_argument("original")
    ap.add_argument("--allow-missing", action="append", default=[])
    ap.add_argument("--no-xarray", action="store_true")
    args = ap.parse_args()

    refs = load_refs(args.refs, args.original)
    fs = fsspec.filesystem("reference", fo=refs, remote_protocol="file")
    root = zarr.open_group(fs.get_mapper(""), mode="r")
    h5 = h5py.File(args.original, "r")
    reader = Reader(h5, args.original)
    failures = 0
    datasets = []
    groups = ["/"]
    def visit(n, o):
        if isinstance(o, h5py.Dataset):
            datasets.append(n)
        elif isinstance(o, h5py.Group):
            groups.append("/" + n)
    h5.visititems(visit)

    print("== zarr 2 via ReferenceFileSystem")
    for name in datasets:
        ds = h5[name]
        if h5_expected_absent(ds):
            print(f"skip     /{name} (dimension scale without data)")
            continue
        try:
            za = root[name]
        except KeyError:
            if "/" + name in args.allow_missing or name in args.allow_missing:
                print(f"allowed  /{name} missing")
                continue
            print(f"MISSING  /{name}")
            failures += 1
            continue
        try:
            why, note = reader.check(name, lambda: za[()])
            if not why and note.startswith("h5py cannot read"):
                corner = tuple(slice(0, min(2, n)) for n in ds.shape)
                why = compare(ds[corner], za[corner])
                note += f"; corner {corner} equal" if not why else ""
        except Exception as e:
            why, note = f"read failed: {type(e).__name__}: {e}", ""
        if why:
            failures += 1
            print(f"MISMATCH /{name}: {why}")
        else:
            print(f"ok       /{name} {ds.shape} {ds.dtype}" + (f" ({note})" if note else ""))

    if not args.no_xarray:
        import xarray as xr

        print("== xarray (engine=zarr, decode_cf=False)")
        for g in groups:
            try:
                xds = xr.open_dataset(
                    "reference://",
                    engine="zarr",
                    consolidated=False,
                    decode_cf=False,
                    group=None if g == "/" else g.lstrip("/"),
                    backend_kwargs={"storage_options": {"fo": refs, "remote_protocol": "file"}},
                )
            except Exception as e:
                if "conflicting sizes for dimension 'phony_dim_" in str(e):
                    # kerchunk names phony dims per axis, so unrelated
                    # datasets share names; same with kerchunk's own refs
                    print(f"xfail    group {g}: {e}")
                    continue
                failures += 1
                print(f"FAILED   group {g}: {type(e).__name__}: {e}")
                continue
            for vname, var in xds.variables.items():
                h5name = (g.rstrip("/") + "/" + vname)
                if h5name not in h5:
                    # an xarray index without a stored dataset
                    print(f"skip     {h5name} (no h5py dataset)")
                    continue
                try:
                    why, note = reader.check(h5name, lambda: var.values, ignore_byteorder=True)
                except Exception as e:
                    why, note = f"read failed: {type(e).__name__}: {e}", ""
                if why:
                    failures += 1
                    print(f"MISMATCH {h5name} (xarray): {why}")
                else:
                    print(f"ok       {h5name} (xarray)" + (f" ({note})" if note else ""))
    print(f"{failures} mismatch(es)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
