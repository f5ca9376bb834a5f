#!/usr/bin/env python3
"""What a scientist sees: for every netCDF fixture, xarray with default CF
decoding (masking, scaling, times) on our refs must equal xarray's netCDF4
engine on the original file: same variables, dims, values (NaN-aware) and
attributes that matter. Catches fill values that mask real data. Prints
"xarray-decoded: N passed, N failed" and exits 1 on any failure."""
import pathlib
import sys
import warnings

import fsspec
import numpy as np
import xarray as xr

ROOT = pathlib.Path(__file__).resolve().parents[2]
OURS = ROOT / "target" / "kerchunk-ours"
FILES = ROOT / "fixtures" / "files"


def open_refs(path, original, **kw):
    import json
    refs = json.loads(path.read_text())
    for k, v in refs["refs"].items():
        if isinstance(v, list) and v:
            v[0] = str(original)
    fs = fsspec.filesystem("reference", fo=refs)
    return xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False, **kw)


NC_DEFAULT_FILL = {"i1": -127, "u1": 255, "i2": -32767, "u2": 65535, "i4": -2147483647,
                   "u4": 4294967295, "i8": -9223372036854775806, "f4": 9.969209968386869e36,
                   "f8": 9.969209968386869e36}


def as_text(a):
    """Char arrays and strings as Python str, whatever dtype xarray chose."""
    return [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in a.ravel()]


def warned(rel):
    w = OURS / (rel + ".warnings.tsv")
    return {line.split("\t")[0].lstrip("/") for line in w.read_text().splitlines() if line} if w.exists() else set()


def compare(rel):
    original = FILES / rel
    kw = {}
    try:
        theirs = xr.open_dataset(original, engine="netcdf4")
    except ValueError:
        # Non-CF time units (FVCOM's Itime2 "msec since 00:00:00") stop
        # xarray on the original too: compare without time decoding.
        kw = {"decode_times": False}
        theirs = xr.open_dataset(original, engine="netcdf4", **kw)
    ours = open_refs(OURS / (rel + ".json"), original, **kw)
    problems = []
    skipped = warned(rel)
    # text attributes as netCDF4-python decodes them (char attributes that
    # are not UTF-8: errors="replace"); kerchunk's " " for an empty
    # fixed-length string is its documented convention
    for where, mine, ref in [("global", ours.attrs, theirs.attrs)] + [
            (n, ours.variables[n].attrs, v.attrs) for n, v in theirs.variables.items() if n in ours.variables]:
        for k, v in ref.items():
            if isinstance(v, str) and not (v == "" and mine.get(k) == " ") and mine.get(k) != v:
                problems.append(f"{where}: attribute {k!r} is {mine.get(k)!r}, netCDF4 gives {v!r}")
    for name, var in theirs.variables.items():
        if name not in ours.variables:
            # Only a variable we reported as unrepresentable may be absent.
            if name not in skipped:
                problems.append(f"{name}: missing in ours")
            continue
        o = ours.variables[name]
        if o.dims != var.dims:
            problems.append(f"{name}: dims {o.dims} != {var.dims}")
            continue
        a, b = o.values, var.values
        if a.dtype.kind in "SUO" and b.dtype.kind in "SUO":
            # netCDF char arrays / strings: xarray's engines pick different
            # string dtypes (|S26 vs object); the text must be identical.
            if as_text(a) != as_text(b):
                problems.append(f"{name}: text differs: {as_text(a)[:3]} vs {as_text(b)[:3]}")
            continue
        if a.dtype != b.dtype and a.dtype.kind == "f" and b.dtype.kind in "iu" and "_FillValue" not in var.attrs:
            # Absent chunks of a netCDF variable without _FillValue read as the
            # netCDF default fill; zarr v2 can only express that through
            # fill_value, which xarray's zarr backend also uses to mask, so we
            # show NaN exactly where netCDF has its default fill (what
            # netCDF4-python's auto-masking shows). Everything else must match.
            fill = NC_DEFAULT_FILL.get(b.dtype.str[1:])
            hole = b == fill
            if hole.any() and np.array_equal(np.isnan(a), hole) and np.array_equal(a[~hole], b[~hole].astype(a.dtype)):
                continue
            problems.append(f"{name}: dtype {a.dtype} != {b.dtype} and not explained by netCDF default fill")
            continue
        if a.dtype != b.dtype and a.dtype == np.float64 and b.dtype == np.float32 and \
                any(isinstance(var.encoding.get(k), np.float32) for k in ("scale_factor", "add_offset")):
            # Packed with float32 scale_factor/add_offset: JSON attributes
            # carry no float32 type, so xarray unpacks our refs in float64
            # (kerchunk's refs too). The oracle is xarray's own unpacking of
            # the netCDF4 engine's raw variable with the same attribute
            # values as Python floats: it must match bit for bit.
            raw = xr.open_dataset(original, engine="netcdf4", decode_cf=False, **{
                k: v for k, v in kw.items() if k != "decode_times"})[name]
            raw.attrs = {k: (float(v) if isinstance(v, np.floating) and k in (
                "scale_factor", "add_offset", "_FillValue", "missing_value") else v)
                for k, v in raw.attrs.items()}
            b = xr.decode_cf(raw.to_dataset(name=name), decode_times=False)[name].values
        if a.dtype != b.dtype:
            problems.append(f"{name}: dtype {a.dtype} != {b.dtype}")
            continue
        eq = np.array_equal(a, b, equal_nan=a.dtype.kind in "fcmM")
        if not eq:
            diff = np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else (a == b)))
            problems.append(f"{name}: values differ at {diff[:3].tolist()}: ours {a.ravel()[:3]} netCDF4 {b.ravel()[:3]}")
    return problems


def main():
    rels = sorted(p.relative_to(FILES).as_posix() for p in FILES.rglob("*.nc"))
    passed = failed = 0
    for rel in rels:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                problems = compare(rel)
            except Exception as e:  # an open failure is a failure
                problems = [f"{type(e).__name__}: {e}"]
        if problems:
            failed += 1
            print(f"FAIL  {rel}")
            for p in problems[:20]:
                print(f"      {p}")
        else:
            passed += 1
            print(f"ok    {rel}")
    print(f"xarray-decoded: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
