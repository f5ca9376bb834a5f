#!/usr/bin/env python3
"""Compare our reference set with kerchunk 0.2.7's for the same file.

    compare_kerchunk.py OURS.json GOLDEN.json [--warnings W.tsv] [--original FILE]

Rules: every key kerchunk produced must be in ours; every ``[url, offset,
length]`` must have the same offset and length (urls are ignored); inline
data must be the same bytes (text vs base64 does not matter); ``.zarray``
must be equal field by field and ``.zattrs``/``.zgroup`` equal as parsed JSON
(NaN-aware). The ONLY allowed divergences are listed in INTENDED below; each
one that applies is printed with its reason. Exit 1 on anything else.
Rules marked (needs --original) are checked against h5py's read of the
original file and never apply without it.
"""
import base64
import fnmatch
import json
import math
import sys
import zlib

# (rule id, key glob, reason). The checks for each rule are in `intended()`.
INTENDED = [
    ("array-kerchunk-dropped", "*",
     "kerchunk quashed this dataset (compound, fletcher32, scalar compact, null "
     "dataspace, filter it rejects...); we represent it. Check its readback."),
    ("fill-absent-chunks", "*/.zarray:fill_value",
     "netCDF variable with absent chunks: kerchunk writes null (zarr then returns "
     "uninitialised memory); we write the HDF5 fill value."),
    ("fill-null-complete", "*/.zarray:fill_value",
     "every chunk stored and no _FillValue attribute: kerchunk writes the HDF5 fill "
     "(often 0), which xarray then uses to mask real data (ROMS scalars equal to 0 "
     "read as NaN); we write null, so nothing is masked."),
    ("zero-length-chunks", "*/.zarray:chunks",
     "zero-length dimension: kerchunk writes chunk 0 (zarr cannot read it); we write 1."),
    ("vlen-embed-filters", "*/.zarray:filters",
     "embedded vlen strings: kerchunk keeps the file's compression after json2; "
     "we embed uncompressed json2 only."),
    ("vlen-embed-chunk", "*",
     "embedded vlen strings chunk: compared after decoding through each side's codecs."),
    ("compound-structured", "*",
     "compound dataset: kerchunk embeds it as a JSON object array with an extra "
     "member dimension; we reference it in place with a zarr structured dtype."),
    ("reported-unrepresentable", "*",
     "dataset we report as a translation warning (listed in --warnings FILE)."),
    ("masked-chunk-reencoded", "*",
     "chunk stored with a filter mask: kerchunk references the raw bytes (which do "
     "not decode); we inline them re-encoded through the full pipeline."),
    ("netcdf4-coordinates-dims", "*/.zattrs:_ARRAY_DIMENSIONS",
     "multi-dimensional netCDF-4 coordinate variable (e.g. FVCOM siglay(siglay, node)): "
     "HDF5 cannot attach scales to a scale, so kerchunk names every axis after the "
     "variable itself ([siglay, siglay]: duplicate dims, xarray 'conflicting sizes'); "
     "we name axes from _Netcdf4Coordinates + _Netcdf4Dimid like netCDF-C. Checked: "
     "kerchunk's names repeat, ours do not, and each changed name is a dimension "
     "other arrays use with the same length."),
    ("netcdf-dim-length", "*/.zarray:shape",
     "netCDF-4 variable on an unlimited dimension with fewer records written than "
     "the dimension's length: netCDF-C/xarray(netcdf4) give it the dimension's length "
     "(unwritten records = fill value), kerchunk the HDF5 extent (xarray then fails "
     "with 'conflicting sizes'). Checked: only unlimited-dimension axes grow, to the "
     "length another kerchunk array has on the same dimension name; readback compares "
     "the values with netCDF4-python."),
    ("spacepad-nullpad", "*",
     "space-padded fixed strings: HDF5 converts the trailing spaces to NULs when h5py "
     "reads them; kerchunk references the stored bytes (reads 'abc     '), we inline "
     "the converted bytes. Checked (needs --original): the string pad is "
     "H5T_STR_SPACEPAD and our chunk bytes equal h5py's read."),
    ("array-type-trailing-dims", "*",
     "H5T_ARRAY dataset: kerchunk embeds it as a JSON object array; we reference it "
     "in place with the element's axes as trailing zarr dimensions (h5py's view). "
     "Checked (needs --original): dtype = the base type, shape = dataspace + "
     "element dims, every chunk decodes to h5py's data."),
    ("kerchunk-ujson-minified", "*",
     "kerchunk's _encode_for_JSON passes every inline value through "
     "ujson.dumps(ujson.loads(v)); ujson parses a 1-byte chunk b'-' as 0 and kerchunk "
     "stores '0' (0x30) where the file holds 0x2d. Checked: ujson maps our (raw file) "
     "bytes to kerchunk's text exactly."),
    ("kerchunk-chunk-wrong", "*",
     "kerchunk's chunk keys/bytes disagree with the data h5py reads (HDF5 1.14.6 "
     "H5Dchunk_iter reports wrong chunk offsets for extensible-array datasets whose "
     "unlimited dimension is not the first: (0, 3k) for linear chunk k, so kerchunk "
     "writes keys 0.4-0.7 outside a 2x4 grid and misplaces the others). Checked (needs "
     "--original): every differing key of ours decodes to h5py's values for that "
     "chunk's region; kerchunk's does not or lies outside the chunk grid."),
]
REASONS = {r[0]: r[2] for r in INTENDED}


def load(path):
    with open(path) as f:
        doc = json.load(f)
    return doc["refs"] if "refs" in doc else doc


def inline_bytes(v):
    if isinstance(v, str):
        if v.startswith("base64:"):
            return base64.b64decode(v[7:])
        return v.encode()
    return None


def parse_meta(v):
    b = inline_bytes(v) if not isinstance(v, dict) else json.dumps(v).encode()
    return json.loads(b.decode())


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return a == b


def decode_chunk(data, zarray):
    """Decode chunk bytes through a .zarray's filters (compressor is null)."""
    import numcodecs
    out = data
    for cfg in reversed(zarray.get("filters") or []):
        out = numcodecs.get_codec(dict(cfg)).decode(out)
    if zarray.get("compressor"):
        raise ValueError("compressor not expected")
    return out


def ujson_minified(ours_bytes, gold_bytes):
    """kerchunk's _encode_for_JSON turned our raw bytes into kerchunk's text?"""
    try:
        import ujson
        return ujson.dumps(ujson.loads(ours_bytes.decode())) == gold_bytes.decode()
    except Exception:
        return False


class Original:
    """h5py view of the original file, for the rules that need evidence."""

    def __init__(self, path):
        import h5py
        self.path = path
        self.h5 = h5py.File(path, "r")
        self.raw = open(path, "rb")

    def dataset(self, arr):
        import h5py
        o = self.h5.get("/" + arr)
        return o if isinstance(o, h5py.Dataset) else None

    def is_spacepad(self, arr):
        import h5py
        ds = self.dataset(arr)
        if ds is None:
            return False
        t = ds.id.get_type()
        return t.get_class() == h5py.h5t.STRING and not t.is_variable_str() \
            and t.get_strpad() == h5py.h5t.STR_SPACEPAD

    def value_bytes(self, v):
        if isinstance(v, list):
            off, n = v[1], v[2]
            self.raw.seek(off)
            return self.raw.read(n)
        return inline_bytes(v)

    def chunk_is_right(self, arr, key, v, zarray):
        """Does chunk `key` (value v) decode to h5py's data for its region?"""
        import numcodecs
        import numpy as np
        ds = self.dataset(arr)
        if ds is None or zarray is None:
            return False
        shape, chunks = zarray["shape"], zarray["chunks"]
        try:
            idx = [int(i) for i in key.rsplit("/", 1)[-1].split(".")]
        except ValueError:
            return False
        if len(idx) != len(shape) or any(i * c >= n for i, c, n in zip(idx, chunks, shape)):
            return False  # outside the chunk grid
        try:
            data = self.value_bytes(v)
            if zarray.get("compressor"):
                data = numcodecs.get_codec(dict(zarray["compressor"])).decode(data)
            for cfg in reversed(zarray.get("filters") or []):
                data = numcodecs.get_codec(dict(cfg)).decode(data)
            dt = np.dtype(zarray["dtype"]) if not isinstance(zarray["dtype"], list) else None
            if dt is None:
                return False
            got = np.frombuffer(bytes(data), dtype=dt).reshape(chunks)
        except Exception:
            return False
        region = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(idx, chunks, shape))
        # H5T_ARRAY datasets: h5py indexes the dataspace; the element's
        # axes trail in its result
        r = len(ds.shape)
        want = ds[region[:r]] if r else ds[()]
        want = np.asarray(want)[(slice(None),) * r + region[r:]]
        got = got[tuple(slice(0, r.stop - r.start) for r in region)]
        return np.ascontiguousarray(want).tobytes() == np.ascontiguousarray(got).astype(want.dtype).tobytes()


def in_grid(key, zarray):
    try:
        idx = [int(i) for i in key.rsplit("/", 1)[-1].split(".")]
    except ValueError:
        return False
    shape, chunks = zarray["shape"], zarray["chunks"]
    return len(idx) == len(shape) and all(0 <= i and i * c < n for i, c, n in zip(idx, chunks, shape))


def dims_of(refs, arr):
    k = f"{arr}/.zattrs" if arr else ".zattrs"
    if k not in refs:
        return None
    return parse_meta(refs[k]).get("_ARRAY_DIMENSIONS")


def dim_lengths(refs):
    """dimension name -> set of lengths over every array of a reference set."""
    out = {}
    for k in refs:
        if not k.endswith(".zarray"):
            continue
        arr = k[: -len("/.zarray")] if "/" in k else ""
        shape = parse_meta(refs[k]).get("shape") or []
        for name, n in zip(dims_of(refs, arr) or [], shape):
            out.setdefault(name, set()).add(n)
    return out


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("golden")
    ap.add_argument("--warnings", help="our warnings TSV (path<TAB>reason)")
    ap.add_argument("--original", help="the HDF5 file both reference sets describe")
    args = ap.parse_args()
    ours, gold = load(args.ours), load(args.golden)
    orig = Original(args.original) if args.original else None
    our_dim_lengths, gold_dim_lengths = dim_lengths(ours), dim_lengths(gold)
    warned = {}
    if args.warnings:
        with open(args.warnings) as f:
            for line in f:
                if "\t" in line:
                    p, r = line.rstrip("\n").split("\t", 1)
                    warned[p.lstrip("/")] = r
    problems, notes = [], []

    def note(rule, key, detail=""):
        notes.append(f"INTENDED {rule}: {key} {detail}".rstrip())

    gold_arrays = {k[: -len("/.zarray")] for k in gold if k.endswith(".zarray")}
    our_arrays = {k[: -len("/.zarray")] if "/" in k else "" for k in ours if k.endswith(".zarray")}

    def array_of(key):
        return key.rsplit("/", 1)[0] if "/" in key else ""

    def meta(refs, arr):
        k = f"{arr}/.zarray" if arr else ".zarray"
        return parse_meta(refs[k]) if k in refs else None

    # compounds: kerchunk "|O" embed vs our structured dtype
    skip_arrays = set()
    for arr in sorted(gold_arrays & our_arrays):
        g, o = meta(gold, arr), meta(ours, arr)
        if g and o and g.get("dtype") == "|O" and (isinstance(o.get("dtype"), list) or str(o.get("dtype")).startswith("|V")):
            note("compound-structured", arr)
            skip_arrays.add(arr)
    for arr in sorted(gold_arrays & our_arrays):
        ds = orig.dataset(arr) if orig is not None and arr not in skip_arrays else None
        if ds is None or ds.dtype.subdtype is None:
            continue
        import numpy as np
        base, sub = ds.dtype.subdtype
        o = meta(ours, arr)
        keys = [k for k in ours if array_of(k) == arr and not k.rsplit("/", 1)[-1].startswith(".")]
        if o and np.dtype(o["dtype"]) == base and list(o["shape"]) == list(ds.shape) + list(sub) \
                and keys and all(orig.chunk_is_right(arr, k, ours[k], o) for k in keys):
            note("array-type-trailing-dims", arr, f"{ds.dtype} -> {o['dtype']} {o['shape']}")
            skip_arrays.add(arr)
    for arr in sorted(gold_arrays & our_arrays):
        if arr in skip_arrays or orig is None or not orig.is_spacepad(arr):
            continue
        g, o = meta(gold, arr), meta(ours, arr)
        k0 = f"{arr}/" + ".".join("0" for _ in o["shape"]) if o["shape"] else f"{arr}/0"
        ds = orig.dataset(arr)
        import numpy as np
        want = np.ascontiguousarray(ds[()]).tobytes() if ds.shape else np.asarray(ds[()], dtype=ds.dtype).tobytes()
        same_meta = all(same(g.get(f), o.get(f)) for f in ("shape", "dtype"))
        if same_meta and isinstance(ours.get(k0), str) and inline_bytes(ours[k0]) == want \
                and all(k == k0 or k.rsplit("/", 1)[-1].startswith(".") for k in ours if array_of(k) == arr):
            note("spacepad-nullpad", arr, f"(h5py reads {want!r})")
            skip_arrays.add(arr)
    for arr in sorted(gold_arrays - our_arrays):
        if arr in warned:
            note("reported-unrepresentable", arr, f"({warned[arr]})")
            skip_arrays.add(arr)

    for key, gv in sorted(gold.items()):
        if array_of(key) in skip_arrays:
            continue
        if key not in ours:
            problems.append(f"missing in ours: {key}")
            continue
        ov = ours[key]
        base = key.rsplit("/", 1)[-1]
        if base == ".zarray":
            g, o = parse_meta(gv), parse_meta(ov)
            for field in sorted(set(g) | set(o)):
                if same(g.get(field), o.get(field)):
                    continue
                arr = array_of(key)
                if field == "fill_value" and o.get(field) is None and g.get(field) is not None:
                    grid = [math.ceil(s / c) if c else 0 for s, c in zip(o["shape"], o["chunks"])]
                    n_grid = math.prod(grid)
                    n_have = sum(1 for k in ours if array_of(k) == arr and not k.rsplit("/", 1)[-1].startswith("."))
                    zattrs = parse_meta(ours[arr + "/.zattrs"]) if arr + "/.zattrs" in ours else {}
                    if n_have >= n_grid and "_FillValue" not in zattrs:
                        note("fill-null-complete", key, f"{g.get(field)!r} -> null")
                        continue
                if field == "fill_value" and g.get(field) is None:
                    # absent chunks in ours?
                    grid = [math.ceil(s / c) if c else 0 for s, c in zip(o["shape"], o["chunks"])]
                    n_grid = math.prod(grid)
                    n_have = sum(1 for k in ours if array_of(k) == arr and not k.rsplit("/", 1)[-1].startswith("."))
                    if n_have < n_grid:
                        note("fill-absent-chunks", key, f"{g.get(field)!r} -> {o.get(field)!r}")
                        continue
                if field == "shape" and len(g["shape"]) == len(o["shape"]):
                    names = dims_of(ours, arr) or []
                    grown = [d for d, (a, b) in enumerate(zip(g["shape"], o["shape"])) if a != b]
                    if names and all(o["shape"][d] > g["shape"][d]
                                     and o["shape"][d] in gold_dim_lengths.get(names[d], set())
                                     for d in grown):
                        note("netcdf-dim-length", key, f"{g['shape']} -> {o['shape']}")
                        continue
                if field == "chunks" and [c or 1 for c in g["chunks"]] == o["chunks"]:
                    note("zero-length-chunks", key)
                    continue
                if field == "filters" and (g.get("filters") or [{}])[0].get("id") == "json2" \
                        and [f["id"] for f in (o.get("filters") or [])] == ["json2"]:
                    note("vlen-embed-filters", key)
                    continue
                problems.append(f"{key}: field {field}: ours {o.get(field)!r} != kerchunk {g.get(field)!r}")
        elif base in (".zattrs", ".zgroup"):
            gm_, om_ = parse_meta(gv), parse_meta(ov)
            if not same(gm_, om_):
                gd, od = gm_.get("_ARRAY_DIMENSIONS"), om_.get("_ARRAY_DIMENSIONS")
                rest_same = same({k: v for k, v in gm_.items() if k != "_ARRAY_DIMENSIONS"},
                                 {k: v for k, v in om_.items() if k != "_ARRAY_DIMENSIONS"})
                arr = array_of(key)
                oshape = (meta(ours, arr) or {}).get("shape") or []
                if rest_same and isinstance(gd, list) and isinstance(od, list) and len(gd) == len(od) == len(oshape) \
                        and len(set(gd)) < len(gd) and len(set(od)) == len(od) \
                        and all(a == b or our_dim_lengths.get(b) == {n}
                                for a, b, n in zip(gd, od, oshape)):
                    note("netcdf4-coordinates-dims", key, f"{gd} -> {od}")
                    continue
                problems.append(f"{key}: ours {om_!r} != kerchunk {gm_!r}")
        elif isinstance(gv, list):
            if isinstance(ov, list):
                if list(gv[1:]) != list(ov[1:]):
                    problems.append(f"{key}: ours {ov[1:]} != kerchunk {gv[1:]}")
            else:
                om = meta(ours, array_of(key))
                try:
                    decode_chunk(inline_bytes(ov), om)
                    note("masked-chunk-reencoded", key)
                except Exception as e:
                    problems.append(f"{key}: kerchunk ref {gv}, ours inline (undecodable: {e})")
        else:
            gb, ob = inline_bytes(gv), inline_bytes(ov)
            if ob is None:
                problems.append(f"{key}: kerchunk inline, ours {ov}")
                continue
            if gb == ob:
                continue
            # Metadata documents are compared as JSON (kerchunk re-minifies
            # them with ujson); data chunks must be byte-identical unless an
            # intended-difference rule below explains them.
            if key.rsplit("/", 1)[-1].startswith("."):
                try:
                    if same(json.loads(gb), json.loads(ob)):
                        continue
                except Exception:
                    pass
            if ujson_minified(ob, gb):
                note("kerchunk-ujson-minified", key, f"file bytes {ob!r}, kerchunk {gb!r}")
                continue
            arr = array_of(key)
            gm, om = meta(gold, arr), meta(ours, arr)
            if gm and om and gm.get("dtype") == "|O":
                try:
                    if same(decode_chunk(gb, gm).tolist(), decode_chunk(ob, om).tolist()):
                        note("vlen-embed-chunk", key)
                        continue
                except Exception as e:
                    problems.append(f"{key}: embedded chunk decode failed: {e}")
                    continue
            if gm and om:
                try:
                    decode_chunk(gb, gm)
                    golden_ok = True
                except Exception:
                    golden_ok = False
                if not golden_ok:
                    try:
                        decode_chunk(ob, om)
                        note("masked-chunk-reencoded", key)
                        continue
                    except Exception:
                        pass
            problems.append(f"{key}: inline bytes differ ({len(ob)} vs kerchunk {len(gb)})")

    for key in sorted(set(ours) - set(gold)):
        arr = array_of(key)
        if arr in skip_arrays:
            continue
        if arr in our_arrays and arr not in gold_arrays:
            if key.endswith("/.zarray"):
                note("array-kerchunk-dropped", arr)
            continue
        problems.append(f"extra in ours: {key}")

    # chunk-level differences: when the original is at hand, keep only the
    # ones where ours is wrong or kerchunk is right
    if orig is not None:
        kept = []
        for p in problems:
            key = None
            for prefix in ("missing in ours: ", "extra in ours: "):
                if p.startswith(prefix):
                    key = p[len(prefix):]
            if key is None and ": " in p:
                key = p.split(": ", 1)[0]
            base = key.rsplit("/", 1)[-1] if key else ""
            if not key or base.startswith("."):
                kept.append(p)
                continue
            arr = array_of(key)
            om, gm = meta(ours, arr), meta(gold, arr)
            if key in ours:
                ours_ok = orig.chunk_is_right(arr, key, ours[key], om)
            else:
                # a key we lack must lie outside our grid (else zarr reads fill there)
                ours_ok = om is not None and not in_grid(key, om)
            gold_ok = key in gold and orig.chunk_is_right(arr, key, gold[key], gm)
            if ours_ok and not gold_ok:
                note("kerchunk-chunk-wrong", key, "(ours = h5py, kerchunk's is not)")
            else:
                kept.append(p)
        problems = kept

    for n in notes:
        print(n)
    for p in problems:
        print("DIFF", p)
    used = sorted({n.split()[1].rstrip(":") for n in notes})
    for rule in used:
        print(f"  [{rule}] {REASONS[rule]}")
    print(f"{len(problems)} unexpected difference(s), {len(notes)} intended")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
