#!/usr/bin/env python3
"""Compare our reference set with kerchunk 0.2.7's for the same file.

    compare_kerchunk.py OURS.json GOLDEN.json

Rules: every key kerchunk produced must be in ours; every ``[url, offset,
length]`` must have the same offset and length (urls are ignored); inline
data must be the same bytes (text vs base64 does not matter); ``.zarray``
must be equal field by field and ``.zattrs``/``.zgroup`` equal as parsed JSON
(NaN-aware). The ONLY allowed divergences are listed in INTENDED below; each
one that applies is printed with its reason. Exit 1 on anything else.
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


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("golden")
    ap.add_argument("--warnings", help="our warnings TSV (path<TAB>reason)")
    args = ap.parse_args()
    ours, gold = load(args.ours), load(args.golden)
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
                if field == "fill_value" and g.get(field) is None:
                    # absent chunks in ours?
                    grid = [math.ceil(s / c) if c else 0 for s, c in zip(o["shape"], o["chunks"])]
                    n_grid = math.prod(grid)
                    n_have = sum(1 for k in ours if array_of(k) == arr and not k.rsplit("/", 1)[-1].startswith("."))
                    if n_have < n_grid:
                        note("fill-absent-chunks", key, f"{g.get(field)!r} -> {o.get(field)!r}")
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
            if not same(parse_meta(gv), parse_meta(ov)):
                problems.append(f"{key}: ours {parse_meta(ov)!r} != kerchunk {parse_meta(gv)!r}")
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
            # kerchunk re-minifies inline text that parses as JSON (ujson)
            try:
                if same(json.loads(gb), json.loads(ob)):
                    continue
            except Exception:
                pass
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
