"""Check combined reference sets (kerchunk::combine) against xarray and
against kerchunk 0.2.7's MultiZarrToZarr on the same single-file JSONs.

    combine_check.py MANIFEST.json

MANIFEST (written by kerchunk/tests/combine.rs) is a list of cases:
  {name, concat_dim, identical_dims, static_vars: "first"|"stack",
   inputs: [single-file JSON], originals: [NetCDF], out: combined JSON,
   xarray: bool}

1. xarray (cases with xarray=true): our combined refs opened with
   engine="zarr", consolidated=False over fsspec's reference filesystem must
   equal xr.concat of the original NetCDF files (netCDF4 engine) along
   concat_dim with data_vars="minimal", coords="minimal", compat="override"
   (= variables without the dim from the first file), NaN-aware and exact,
   for every variable, with the same dims. decode_times=False on both.
2. golden: MultiZarrToZarr(inputs, concat_dims=[dim], identical_dims=...,
   remote_protocol="file") vs ours: same keys; same [url, offset, length];
   same inline bytes; same parsed metadata. Every difference must be one of
   INTENDED below, else the check fails.
3. Also reports which variables MZZ's own output gets wrong when read with
   xarray (informational).

INTENDED differences (ours vs MZZ 0.2.7):

| case | MZZ | ours | why |
|---|---|---|---|
| static-first: array without the concat dim, not a coordinate nor in identical_dims (ROMS h, mask_*, dt, ...; FVCOM nv, h, ...), static_vars=first | stacked: new leading concat axis, one copy per input | taken once from the first input, unchanged | they do not vary within a run; N copies only bloat the refs and change the variables' dims (StaticVars::Stack reproduces MZZ) |
| overhang: record variable whose one chunk along the concat dim is longer than the file's extent (FVCOM iint, Itime, Itime2: shape [1], chunks [1024]) | chunks [1024], every input maps to key 0, the last input wins: all other times read the padding | chunks [1], one reference per input with length cut to the valid bytes (inlined when < inline_threshold) | MZZ's result is wrong data |
| coordinate with more than 100 values | zstd-compressed | uncompressed | no zstd dependency; the values are small |
| inline text encoding | ASCII str else base64 | UTF-8 str else base64 | same bytes after decoding (compared as bytes here) |
"""
import base64
import json
import sys

import fsspec
import numpy as np
import xarray as xr
from kerchunk.combine import MultiZarrToZarr


def drop_duplicate_dims(refs):
    """Arrays whose _ARRAY_DIMENSIONS repeat a name (FVCOM siglay/siglev:
    a dimension scale with 2 dims gets its own name twice, kerchunk-identical
    translation limitation, see kerchunk/README.md) make xarray refuse the
    whole group. Drop them for the xarray comparison; returns their names."""
    bad = set()
    for k, v in refs.items():
        if k.endswith("/.zattrs"):
            d = json.loads(v).get("_ARRAY_DIMENSIONS", [])
            if len(set(d)) != len(d):
                bad.add(k.rsplit("/", 1)[0])
    kept = {k: v for k, v in refs.items() if k.rsplit("/", 1)[0] not in bad}
    return kept, sorted(bad)


def open_refs(refs):
    fs = fsspec.filesystem("reference", fo=refs, remote_protocol="file")
    return xr.open_dataset(fs.get_mapper(""), engine="zarr",
                           backend_kwargs={"consolidated": False},
                           decode_times=False)


def expected(case):
    dss = [xr.open_dataset(p, decode_times=False) for p in case["originals"]]
    return xr.concat(dss, dim=case["concat_dim"], data_vars="minimal",
                     coords="minimal", compat="override", join="override")


def equal(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def compare_xarray(ds, exp):
    bad = []
    if set(ds.variables) != set(exp.variables):
        bad.append(f"variables differ: only ours {sorted(set(ds.variables) - set(exp.variables))}, "
                   f"only xarray {sorted(set(exp.variables) - set(ds.variables))}")
    for v in sorted(set(ds.variables) & set(exp.variables)):
        if ds[v].dims != exp[v].dims:
            bad.append(f"{v}: dims {ds[v].dims} != {exp[v].dims}")
        elif not equal(ds[v].values, exp[v].values):
            bad.append(f"{v}: values differ")
    return bad


def norm(key, v):
    leaf = key.rsplit("/", 1)[-1]
    if isinstance(v, (bytes, str)) and leaf.startswith(".z"):
        return ("meta", json.loads(v))
    if isinstance(v, list):
        return ("ref", tuple(v))
    if isinstance(v, bytes):
        return ("data", v)
    if v.startswith("base64:"):
        return ("data", base64.b64decode(v[7:]))
    return ("data", v.encode())


def golden(case, ours, mzz):
    """Differences between our refs and MZZ's, grouped by variable, with
    the intended reason or None."""
    dim = case["concat_dim"]
    first = json.load(open(case["inputs"][0]))["refs"]
    arrays = {k.rsplit("/", 1)[0] for k in first if k.endswith("/.zarray")}
    dims_of = {a: json.loads(first.get(f"{a}/.zattrs", "{}")).get("_ARRAY_DIMENSIONS", [])
               for a in arrays}
    all_dims = set(sum(dims_of.values(), []))
    ident = set(case["identical_dims"])

    def reason(var):
        if var == dim:
            return "coordinate" if len(case["inputs"]) > 100 else None
        if var not in arrays:
            return None
        za = json.loads(first[f"{var}/.zarray"])
        d = dims_of[var]
        if dim in d:
            ax = d.index(dim)
            if za["chunks"][ax] > za["shape"][ax]:
                return "overhang"
            return None
        if var in ident or var in all_dims:
            return None
        return "static-first" if case["static_vars"] == "first" else None

    diffs = {}
    for k in sorted(set(ours) | set(mzz)):
        a = norm(k, ours[k]) if k in ours else None
        b = norm(k, mzz[k]) if k in mzz else None
        if a != b:
            var = k.rsplit("/", 1)[0] if "/" in k else ""
            diffs.setdefault(var, []).append((k, a, b))
    return {var: (reason(var), items) for var, items in diffs.items()}


def main():
    cases = json.load(open(sys.argv[1]))
    failures = []
    for case in cases:
        name = case["name"]
        dim = case["concat_dim"]
        ours = json.load(open(case["out"]))["refs"]
        singles = [json.load(open(p)) for p in case["inputs"]]
        # dicts, not paths: given paths, MZZ reads them with fs.cat, which
        # returns them in sorted path order, so input order (first input for
        # identical arrays, later input wins for duplicates) would be by file
        # name instead of the given order
        mzz = MultiZarrToZarr(singles, concat_dims=[dim],
                              identical_dims=case["identical_dims"],
                              remote_protocol="file").translate()["refs"]
        print(f"== {name}: {len(case['inputs'])} inputs, {len(ours)} keys (MZZ {len(mzz)})")

        if case["xarray"]:
            exp = expected(case)
            kept, dropped = drop_duplicate_dims(ours)
            exp = exp.drop_vars(dropped)
            if dropped:
                print(f"   not compared (duplicate dim names, translation limitation): {dropped}")
            ds = open_refs({"version": 1, "refs": kept})
            bad = compare_xarray(ds, exp)
            if bad:
                # a difference the single-file translations already have
                # (read through zarr the same way) is not the combine's
                per_file = [open_refs({"version": 1, "refs": drop_duplicate_dims(s["refs"])[0]})
                            for s in singles]
                via_refs = xr.concat(per_file, dim=dim, data_vars="minimal",
                                     coords="minimal", compat="override", join="override")
                inherited = [b for b in bad if b.endswith("values differ")
                             and equal(ds[b.split(":")[0]].values,
                                       via_refs[b.split(":")[0]].values)]
                if inherited:
                    print(f"   (info) differ from the NetCDF originals but equal to xr.concat of the "
                          f"single-file refs (translation, not combine): "
                          f"{[b.split(':')[0] for b in inherited]}")
                bad = [b for b in bad if b not in inherited]
            for b in bad:
                failures.append(f"{name}: xarray: {b}")
            print(f"   xarray vs xr.concat(originals): {len(exp.variables)} variables, "
                  f"{'OK' if not bad else 'FAIL ' + '; '.join(bad)}")
            try:
                m = open_refs({"version": 1, "refs": drop_duplicate_dims(mzz)[0]})
                wrong = []
                for v in exp.variables:
                    if v in m.variables and exp[v].dims == m[v].dims and \
                            not equal(m[v].values, exp[v].values):
                        wrong.append(v)
                print(f"   (info) MZZ output read with xarray differs from the originals in: "
                      f"{wrong or 'nothing'} (variables whose dims MZZ changed are not compared)")
            except Exception as e:  # noqa: BLE001
                print(f"   (info) MZZ output does not open: {e}")

        diffs = golden(case, ours, mzz)
        unexplained = {v: d for v, d in diffs.items() if d[0] is None}
        by_reason = {}
        for v, (r, _) in diffs.items():
            if r:
                by_reason.setdefault(r, []).append(v)
        for r, vs in sorted(by_reason.items()):
            print(f"   intended difference [{r}]: {', '.join(sorted(vs))}")
        for v, (_, items) in sorted(unexplained.items()):
            for k, a, b in items[:5]:
                failures.append(f"{name}: golden: {k}: ours {str(a)[:200]} != MZZ {str(b)[:200]}")
        same = len(set(ours) & set(mzz)) - sum(
            1 for _, items in diffs.values() for k, a, b in items if a and b)
        print(f"   golden vs MZZ: {same} keys identical, "
              f"{'OK' if not unexplained else 'FAIL in ' + ', '.join(sorted(unexplained))}")
    if failures:
        print("\nFAILURES:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nall combine checks passed")


if __name__ == "__main__":
    main()
