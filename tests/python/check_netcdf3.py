#!/usr/bin/env python3
"""NetCDF-3 references against netCDF4-python, xarray and kerchunk.

For every file of fixtures/netcdf3/ (written by fixtures/netcdf3_fixtures.py):
run `kerchunk-nos refs` (the CLI, so the format dispatch is what is tested)
with the default inline threshold, with inlining off, and with
`--split-contiguous 600` (zarr read-back only), then

1. read every variable back through fsspec's reference filesystem + zarr 2
   and compare with netCDF4-python (auto mask/scale and chartostring off):
   shape, dtype (byte order aside), every byte, `_ARRAY_DIMENSIONS`,
   `fill_value` (= `_FillValue`, else null) and every attribute (value,
   type and scalar-or-array, as netCDF4-python returns it); global
   attributes too;
2. open both with xarray (zarr engine over the refs, netCDF4 engine over
   the file), CF-decoded and raw: same variables, dims, dtypes, values
   (NaN-aware) and attributes;
3. where kerchunk 0.2.7's NetCDF3ToZarr can read the file (it needs scipy,
   installed into target/venv-kerchunk-nc3, a venv layered on the oracle
   venv; it cannot read CDF-5), our data references must equal kerchunk's
   key for key (inlining off on both sides); metadata differences are
   printed and must be the documented ones (kerchunk README, NetCDF-3
   table): kerchunk writes attributes as str() and uses missing_value as
   the fill value;
4. three NetCDF-3 files of one ROMS-like run: `kerchunk-nos combine` of
   their refs equals xarray's concat of the files.

Ends with "check_netcdf3: N passed, N failed"; exit 1 on any failure.
"""

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import fsspec
import netCDF4
import numpy as np
import xarray as xr
import zarr

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures" / "netcdf3"
OUT = ROOT / "target" / "netcdf3-ours"
KVENV = ROOT / "target" / "venv-kerchunk-nc3"
SCIPY = "scipy==1.16.3"


def binary():
    b = os.environ.get("KERCHUNK_NOS_BIN")
    if b:
        return b
    subprocess.run(["cargo", "build", "-q", "-p", "ingest"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / "kerchunk-nos")


def our_refs(bin_, path, threshold, split=None):
    out = OUT / f"{path.name}.t{threshold}{f'.s{split}' if split else ''}.json"
    OUT.mkdir(parents=True, exist_ok=True)
    extra = ["--split-contiguous", str(split)] if split else []
    subprocess.run(
        [bin_, "refs", str(path), "-o", str(out), "--url", str(path),
         "--inline-threshold", str(threshold)] + extra,
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.read_text())


def mapper(refs):
    fs = fsspec.filesystem("reference", fo=refs, remote_protocol="file")
    return fs.get_mapper("")


def same_value(ours, theirs):
    """`ours` (from JSON) is exactly the netCDF4-python attribute value."""
    if isinstance(theirs, str):
        return isinstance(ours, str) and ours == theirs
    if isinstance(theirs, bytes):
        return isinstance(ours, str) and ours == theirs.decode()
    arr = np.asarray(theirs)
    kind = arr.dtype.kind
    if isinstance(theirs, np.ndarray):
        if not isinstance(ours, list) or len(ours) != arr.size:
            return False
        items = ours
    else:
        if isinstance(ours, list):
            return False
        items = [ours]
    for o, t in zip(items, arr.ravel()):
        if kind in "iu":
            if not isinstance(o, int) or isinstance(o, bool) or o != int(t):
                return False
        elif kind == "f":
            if not isinstance(o, float):
                return False
            if math.isnan(float(t)):
                if not math.isnan(o):
                    return False
            elif o != float(t) or np.array(o, dtype=arr.dtype) != t:
                return False
        else:
            return False
    return True


def check_attrs(where, ours, nc_attrs, problems):
    if set(ours) != set(nc_attrs):
        problems.append(f"{where}: attribute names {sorted(ours)} != {sorted(nc_attrs)}")
    for k in set(ours) & set(nc_attrs):
        if not same_value(ours[k], nc_attrs[k]):
            problems.append(f"{where}: attribute {k}: ours {ours[k]!r}, netCDF4 {nc_attrs[k]!r}")


def native(a):
    return a.astype(a.dtype.newbyteorder("="))


def check_zarr(path, refs, problems):
    g = zarr.open_group(mapper(refs), mode="r")
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        nc.set_auto_chartostring(False)
        check_attrs("global", dict(g.attrs), {k: nc.getncattr(k) for k in nc.ncattrs()}, problems)
        names = set(nc.variables)
        if set(g.array_keys()) != names:
            problems.append(f"arrays {sorted(g.array_keys())} != variables {sorted(names)}")
        for name in sorted(names & set(g.array_keys())):
            v, z = nc[name], g[name]
            a = v[...]
            a = np.asarray(a)
            where = f"variable {name}"
            if z.shape != a.shape:
                problems.append(f"{where}: shape {z.shape} != {a.shape}")
                continue
            if z.dtype.newbyteorder("=") != a.dtype.newbyteorder("="):
                problems.append(f"{where}: dtype {z.dtype} != {a.dtype}")
                continue
            data = native(np.asarray(z[...]))
            if np.ascontiguousarray(data).tobytes() != np.ascontiguousarray(native(a)).tobytes():
                problems.append(f"{where}: bytes differ: ours {data.ravel()[:4]} netCDF4 {a.ravel()[:4]}")
            attrs = dict(z.attrs)
            dims = attrs.pop("_ARRAY_DIMENSIONS", None)
            if dims != list(v.dimensions):
                problems.append(f"{where}: _ARRAY_DIMENSIONS {dims} != {list(v.dimensions)}")
            nc_attrs = {k: v.getncattr(k) for k in v.ncattrs() if k != "_FillValue"}
            check_attrs(where, attrs, nc_attrs, problems)
            fv = z.fill_value
            if "_FillValue" in v.ncattrs():
                want = np.asarray(v.getncattr("_FillValue"), dtype=a.dtype).ravel()[0]
                got = np.asarray(fv, dtype=a.dtype) if fv is not None else None
                if got is None or got.tobytes() != want.tobytes():
                    problems.append(f"{where}: fill_value {fv!r} != _FillValue {want!r}")
            elif fv is not None:
                problems.append(f"{where}: fill_value {fv!r} without a _FillValue")


def equal_attr(a, b):
    """Same value, same kind (str / int / float), same shape; NaN == NaN."""
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        return type(a) is type(b) and a == b
    for x, y in ((a, b), (b, a)):
        # numpy turns [0, 2**64-1] into float64: compare such lists as ints
        if isinstance(x, list) and x and all(type(i) is int for i in x):
            y = np.asarray(y)
            return y.dtype.kind in "iu" and y.shape == (len(x),) and [int(i) for i in y] == x
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True  # JSON's [] has no dtype
    # JSON integers carry no signedness: an unsigned attribute reads back
    # as Python int (values still compared exactly)
    kind = {"u": "i"}
    if kind.get(a.dtype.kind, a.dtype.kind) != kind.get(b.dtype.kind, b.dtype.kind):
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a.astype("f8"), b.astype("f8"), equal_nan=True))
    return bool(np.array_equal(a, b))


def check_xarray(path, refs, problems):
    for decode in (True, False):
        tag = "decoded" if decode else "raw"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = xr.open_dataset(mapper(refs), engine="zarr", consolidated=False,
                                   decode_cf=decode).load()
            theirs = xr.open_dataset(path, engine="netcdf4", decode_cf=decode).load()
        if set(ours.variables) != set(theirs.variables):
            problems.append(f"xarray {tag}: variables {sorted(ours.variables)} != {sorted(theirs.variables)}")
        for k in set(ours.attrs) | set(theirs.attrs):
            if k not in ours.attrs or k not in theirs.attrs or not equal_attr(ours.attrs[k], theirs.attrs[k]):
                problems.append(f"xarray {tag}: global attribute {k}: {ours.attrs.get(k)!r} != {theirs.attrs.get(k)!r}")
        for name in sorted(set(ours.variables) & set(theirs.variables)):
            o, t = ours[name].variable, theirs[name].variable
            where = f"xarray {tag} {name}"
            if o.dims != t.dims:
                problems.append(f"{where}: dims {o.dims} != {t.dims}")
                continue
            if o.dtype.newbyteorder("=") != t.dtype.newbyteorder("="):
                problems.append(f"{where}: dtype {o.dtype} != {t.dtype}")
                continue
            ov, tv = o.values, t.values
            eq_nan = ov.dtype.kind in "fcmM"
            if not np.array_equal(ov, tv, equal_nan=eq_nan):
                problems.append(f"{where}: values differ: {ov.ravel()[:4]} != {tv.ravel()[:4]}")
            for k in set(o.attrs) | set(t.attrs):
                if k not in o.attrs or k not in t.attrs or not equal_attr(o.attrs[k], t.attrs[k]):
                    problems.append(f"{where}: attribute {k}: {o.attrs.get(k)!r} != {t.attrs.get(k)!r}")


def kerchunk_python():
    """The oracle venv plus scipy (kerchunk's NetCDF3ToZarr needs it)."""
    py = KVENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(KVENV)], check=True)
        site = subprocess.run([str(py), "-c", "import site;print(site.getsitepackages()[0])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        import site as _site
        Path(site, "oracle-venv.pth").write_text(_site.getsitepackages()[0] + "\n")
    ok = subprocess.run([str(py), "-c", "import scipy, kerchunk"], capture_output=True)
    if ok.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", SCIPY], check=True)
    return str(py)


KERCHUNK_CHILD = """
import json, sys, warnings
warnings.simplefilter("ignore")
from kerchunk.netCDF3 import NetCDF3ToZarr
try:
    r = NetCDF3ToZarr(sys.argv[1], inline_threshold=int(sys.argv[2])).translate()
    print(json.dumps({"ok": r}))
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
"""

META = (".zarray", ".zattrs", ".zgroup")


def check_kerchunk(py, path, ours, problems, notes):
    """Data references equal kerchunk's; metadata differences classified."""
    r = subprocess.run([py, "-c", KERCHUNK_CHILD, str(path), "500"], capture_output=True, text=True)
    doc = json.loads(r.stdout or '{"error": "no output"}')
    if "error" in doc:
        notes.append(f"kerchunk with inline_threshold=500 fails: {doc['error'][:90]}")
    r = subprocess.run([py, "-c", KERCHUNK_CHILD, str(path), "0"], capture_output=True, text=True)
    doc = json.loads(r.stdout or '{"error": "no output"}')
    if "error" in doc:
        notes.append(f"kerchunk cannot read it ({doc['error'][:90]})")
        return
    k = doc["ok"]["refs"]
    o = ours["refs"]
    kd = {x: v for x, v in k.items() if not x.endswith(META)}
    od = {x: v for x, v in o.items() if not x.endswith(META)}
    with netCDF4.Dataset(path) as nc:
        numrecs = {len(d) for d in nc.dimensions.values() if d.isunlimited()}
        for x in sorted(set(kd) - set(od)):
            # kerchunk's extra records of a single packed record variable
            if numrecs and int(x.split("/")[-1].split(".")[0]) >= max(numrecs):
                notes.append(f"{x.split('/')[0]}: kerchunk has record {x.split('/')[-1]} past numrecs={max(numrecs)} (reads past the end of the file)")
            else:
                problems.append(f"kerchunk data key {x} not in ours")
        for x in sorted(set(od) - set(kd)):
            problems.append(f"our data key {x} not in kerchunk's")
        for x in sorted(set(kd) & set(od)):
            if kd[x] != od[x]:
                problems.append(f"kerchunk {x}: {kd[x]} != ours {od[x]}")
        for name, v in nc.variables.items():
            kz, oz = json.loads(k[f"{name}/.zarray"]), json.loads(o[f"{name}/.zarray"])
            for f in ("shape", "chunks", "dtype"):
                if kz[f] != oz[f]:
                    if f == "shape" and v.dimensions and nc.dimensions[v.dimensions[0]].isunlimited() \
                            and kz[f][1:] == oz[f][1:] and kz[f][0] > oz[f][0]:
                        notes.append(f"{name}: kerchunk shape {kz[f]}, netCDF4 {list(v.shape)} (records counted with padding)")
                        continue
                    problems.append(f"kerchunk {name}/.zarray {f}: {kz[f]} != ours {oz[f]}")
            if kz["fill_value"] != oz["fill_value"]:
                why = "missing_value used as fill" if "missing_value" in v.ncattrs() else "?"
                if why == "?":
                    problems.append(f"kerchunk {name} fill_value {kz['fill_value']} != ours {oz['fill_value']}")
                else:
                    notes.append(f"{name}: kerchunk fill_value {kz['fill_value']} ({why}), ours {oz['fill_value']} (_FillValue)")
            ka, oa = json.loads(k[f"{name}/.zattrs"]), json.loads(o[f"{name}/.zattrs"])
            stringified = [a for a in oa if a in ka and ka[a] != oa[a] and isinstance(ka[a], str)
                           and not isinstance(oa[a], str)]
            if stringified:
                notes.append(f"{name}: kerchunk writes {len(stringified)} numeric attribute(s) as str ({stringified[0]}={ka[stringified[0]]!r})")
            nuls = [a for a in oa if isinstance(ka.get(a), str) and "\0" in ka[a]
                    and ka[a].replace("\0", "") == oa[a]]
            if nuls:
                notes.append(f"{name}: kerchunk keeps NULs in char attribute {nuls[0]} ({ka[nuls[0]]!r}; netCDF4-python: {oa[nuls[0]]!r})")
            other = [a for a in set(ka) | set(oa) if a not in stringified + nuls and ka.get(a) != oa.get(a)
                     and a not in ("_FillValue", "missing_value")]
            for a in other:
                problems.append(f"kerchunk {name}.{a}: {ka.get(a)!r} != ours {oa.get(a)!r}")


def check_combine(bin_, problems):
    """Three NetCDF-3 files of a ROMS-like run (record dimension
    ocean_time): `kerchunk-nos combine` of their refs equals xr.concat."""
    d = OUT / "combine"
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for k, fmt in enumerate(["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_OFFSET"]):
        p = d / f"run_{k}.nc"
        with netCDF4.Dataset(p, "w", format=fmt) as nc:
            nc.createDimension("ocean_time", None)
            nc.createDimension("eta", 4)
            nc.createDimension("xi", 5)
            t = nc.createVariable("ocean_time", "f8", ("ocean_time",))
            t.units = "seconds since 2024-01-01"
            z = nc.createVariable("zeta", "f4", ("ocean_time", "eta", "xi"), fill_value=np.float32(1e37))
            h = nc.createVariable("h", "f8", ("eta", "xi"))
            h[:] = np.arange(20).reshape(4, 5)
            s = nc.createVariable("flag", "i2", ("ocean_time",))
            for i in range(2):
                t[i] = (2 * k + i) * 3600.0
                z[i] = np.full((4, 5), k * 10 + i, "f4")
                s[i] = k
            z[1, 0, 0] = 1e37
        subprocess.run([bin_, "refs", str(p), "-o", f"{p}.json"], check=True, capture_output=True)
        files.append(p)
    out = d / "combined.json"
    subprocess.run([bin_, "combine", "--concat-dim", "ocean_time", str(out)] + [f"{p}.json" for p in files],
                   check=True, capture_output=True)
    ours = xr.open_dataset(mapper(json.loads(out.read_text())), engine="zarr", consolidated=False).load()
    ref = xr.concat([xr.open_dataset(p).load() for p in files], dim="ocean_time",
                    data_vars="minimal", coords="minimal", compat="override")
    if set(ours.variables) != set(ref.variables):
        problems.append(f"combine: variables {sorted(ours.variables)} != {sorted(ref.variables)}")
    for v in set(ours.variables) & set(ref.variables):
        a, b = ours[v], ref[v]
        if a.dims != b.dims or a.dtype != b.dtype or not np.array_equal(a.values, b.values, equal_nan=True):
            problems.append(f"combine: {v} differs: {a.dims} {a.dtype} {a.values.ravel()[:4]} != {b.dims} {b.dtype} {b.values.ravel()[:4]}")


def main():
    bin_ = binary()
    files = sorted(FIX.glob("*.nc"))
    if not files:
        print(f"check_netcdf3: no fixtures in {FIX} (run fixtures/netcdf3_fixtures.py)")
        return 1
    kpy = kerchunk_python()
    passed = failed = 0
    for path in files:
        problems, notes = [], []
        try:
            # fixed variables split into row blocks of <= 600 bytes
            split = our_refs(bin_, path, 0, 600)
            check_zarr(path, split, problems)
            for thr in (500, 0):
                refs = our_refs(bin_, path, thr)
                check_zarr(path, refs, problems)
                check_xarray(path, refs, problems)
            check_kerchunk(kpy, path, refs, problems, notes)
        except Exception as e:  # a failure to open or read is a failure
            problems.append(f"{type(e).__name__}: {e}")
        if problems:
            failed += 1
            print(f"FAIL  {path.name}")
            for p in problems[:25]:
                print(f"      {p}")
        else:
            passed += 1
            print(f"ok    {path.name}")
        for n in sorted(set(notes))[:6]:
            print(f"      kerchunk differs: {n}")
    problems = []
    try:
        check_combine(bin_, problems)
    except Exception as e:  # noqa: BLE001
        problems.append(f"{type(e).__name__}: {e}")
    if problems:
        failed += 1
        print("FAIL  combine of three NetCDF-3 files vs xr.concat")
        for p in problems[:25]:
            print(f"      {p}")
    else:
        passed += 1
        print("ok    combine of three NetCDF-3 files vs xr.concat")
    print(f"check_netcdf3: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
