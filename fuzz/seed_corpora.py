#!/usr/bin/env python3
"""Seed the fuzz corpora (fuzz/corpus/<target>/) from the fixtures.

Whole files seed `open_file`; for the structure targets, structures are cut
out of the fixtures (by signature, or by following the superblock, symbol
table nodes and object header continuations) and prefixed with the selector
bytes each harness in fuzz/harness/hdf5.rs expects. SNS messages come from
/work/shared/reference/seed-README.md, keys from /work/shared/ofs/README.md,
layout cache entries are written here.
Standard library only.
"""
import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
MAIN = os.path.dirname(ROOT)
FILES = os.path.join(MAIN, "fixtures", "files")
CORPUS = os.path.join(ROOT, "corpus")
# The seed's SNS messages, committed with the static-binary test.
MESSAGES = os.path.join(MAIN, "tests", "static", "messages")
# Key examples from the shared OFS field guide, when it is beside the repo.
OFS_DOC = os.path.join(os.path.dirname(MAIN), "shared", "ofs", "README.md")
SLICE = 4096
MAX_PER_TARGET = 3000

counts = {}


def put(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if counts.get(target, 0) >= MAX_PER_TARGET:
        return
    name = hashlib.sha1(data).hexdigest()
    p = os.path.join(d, name)
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1


def u(b, at, n):
    if at + n > len(b):
        return None
    return int.from_bytes(b[at:at + n], "little")


def superblock(b):
    """(signature offset, version, size of offsets, size of lengths, root header)."""
    sig = b"\x89HDF\r\n\x1a\n"
    for at in [0] + [1 << k for k in range(9, 40)]:
        if at >= len(b):
            return None
        if b[at:at + 8] == sig:
            v = b[at + 8]
            if v in (0, 1):
                so, sl = b[at + 13], b[at + 14]
                p = at + 24 + (4 if v == 1 else 0) + 4 * so
                root = u(b, p + so, so)  # symbol table entry: name offset, header
            else:
                so, sl = b[at + 9], b[at + 10]
                root = u(b, at + 12 + 3 * so, so)
            return at, v, so, sl, root
    return None


MSG_SEL = {3: 0, 1: 1, 8: 2, 0xB: 3, 4: 4, 5: 5, 6: 6, 2: 7, 0x15: 8, 0xC: 9, 0x11: 10}


def v1_messages(b, start, end):
    """(kind, body) of v1 messages in b[start:end]."""
    out, p = [], start
    while p + 8 <= end:
        kind, size = u(b, p, 2), u(b, p + 2, 2)
        body = b[p + 8:p + 8 + size]
        out.append((kind, body))
        p += 8 + size
    return out


def v2_messages(b, start, end, flags):
    out, p = [], start
    hdr = 4 + (2 if flags & 0x04 else 0)
    while p + hdr <= end:
        kind, size = b[p], u(b, p + 1, 2)
        body = b[p + hdr:p + hdr + size]
        out.append((kind, body))
        p += hdr + size
    return out


def headers(b, base, root):
    """Walk v1 headers reachable from the root via SNOD entries and
    continuations; v2 OHDR/OCHK found by signature. Yields seed tuples."""
    seen = set()
    todo = [root] if root is not None else []
    # Object header addresses named by symbol table nodes.
    for m in re.finditer(b"SNOD", b):
        p = m.start()
        n = u(b, p + 6, 2) or 0
        for e in range(min(n, 64)):
            a = u(b, p + 8 + e * 40 + 8, 8)
            if a is not None:
                todo.append(a)
    while todo:
        a = todo.pop()
        if a is None or a in seen or base + a + 16 > len(b):
            continue
        seen.add(a)
        p = base + a
        if b[p] != 1:
            continue
        size = u(b, p + 8, 4)
        yield ("object_header", b"\x00" + b[p:p + min(SLICE, 16 + size)])
        blocks = [(p + 16, p + 16 + size)]
        while blocks:
            s, e = blocks.pop()
            for kind, body in v1_messages(b, s, min(e, len(b))):
                if kind in MSG_SEL:
                    yield ("messages", bytes([MSG_SEL[kind]]) + body)
                if kind == 0xC:
                    yield from attribute_value(body)
                if kind == 0x10 and len(body) >= 16:
                    ca, cl = u(body, 0, 8), u(body, 8, 8)
                    if base + ca + cl <= len(b) and cl < 1 << 20:
                        yield ("object_header", b"\x00" + b[base + ca:base + ca + cl])
                        blocks.append((base + ca, base + ca + cl))
    for m in re.finditer(b"OHDR", b):
        p = m.start()
        flags = b[p + 5]
        q = p + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        n = 1 << (flags & 3)
        size = u(b, q, n)
        if size is None:
            continue
        yield ("object_header", b"\x01" + b[p:p + min(SLICE, q + n + size + 4 - p)])
        for kind, body in v2_messages(b, q + n, q + n + size, flags):
            if kind in MSG_SEL:
                yield ("messages", bytes([MSG_SEL[kind]]) + body)
            if kind == 0xC:
                yield from attribute_value(body)
            if kind == 0x10 and len(body) >= 16:
                ca, cl = u(body, 0, 8), u(body, 8, 8)
                if base + ca + cl <= len(b) and cl < 1 << 20:
                    c = base + ca
                    yield ("object_header", bytes([1 | (flags << 1) & 0xFF]) + b[c:c + cl])
                    for kind2, body2 in v2_messages(b, c + 4, c + cl - 4, flags):
                        if kind2 in MSG_SEL:
                            yield ("messages", bytes([MSG_SEL[kind2]]) + body2)
                        if kind2 == 0xC:
                            yield from attribute_value(body2)


def pad8(n):
    return (n + 7) // 8 * 8


def attribute_value(body):
    """value_decode seed: datatype of an attribute message + its data."""
    if len(body) < 8:
        return
    v = body[0]
    ns, ts, ss = u(body, 2, 2), u(body, 4, 2), u(body, 6, 2)
    if v == 1:
        p = 8
        name, p = p, p + pad8(ns)
        dt, p = p, p + pad8(ts)
        ds, p = p, p + pad8(ss)
    elif v in (2, 3):
        if body[1] & 3:
            return
        p = 8 + (1 if v == 3 else 0)
        name, p = p, p + ns
        dt, p = p, p + ts
        ds, p = p, p + ss
    else:
        return
    dtb, dsb, data = body[dt:dt + ts], body[ds:ds + ss], body[p:]
    if len(dtb) < 8 or len(dsb) < 4:
        return
    esize = u(dtb, 4, 4) or 1
    rank = dsb[1]
    if dsb[0] == 2 and dsb[3] == 2:
        count = 0
    else:
        dims_at = 8 if dsb[0] == 1 else 4
        count = 1
        for k in range(rank):
            count *= u(dsb, dims_at + 8 * k, 8) or 0
    count = min(count, 255, len(data) // esize)
    yield ("value_decode", struct.pack("<H", len(dtb)) + dtb + bytes([count]) + data[:count * esize])


def structures(path, b):
    sb = superblock(b)
    if sb is None:
        return
    base, version, so, sl, root = sb
    yield ("superblock", b"\x01" + b[base:base + 256])
    if so != 8 or sl != 8:
        return
    yield from headers(b, base, root)
    for m in re.finditer(b"TREE", b):
        p = m.start()
        kind = b[p + 4]
        if kind == 0:
            yield ("btree_v1", b"\x00\x00" + b[p:p + SLICE])
        elif kind == 1:
            for rank in (1, 2, 3, 4):
                yield ("btree_v1", bytes([1, rank]) + b[p:p + SLICE])
    for m in re.finditer(b"SNOD", b):
        yield ("btree_v1", b"\x02\x00" + b[m.start():m.start() + SLICE])
    for m in re.finditer(b"HEAP", b):
        yield ("btree_v1", b"\x03\x08" + b[m.start():m.start() + SLICE])
    for m in re.finditer(b"GCOL", b):
        p = m.start()
        size = u(b, p + 8, 8) or 0
        yield ("global_heap", b[p:p + min(size, 1 << 16)])
    for m in re.finditer(b"BTHD", b):
        p = m.start()
        node_size = u(b, p + 6, 4) or 0
        root = u(b, p + 16, 8)
        node = b""
        if root is not None and root != (1 << 64) - 1 and node_size < 1 << 16:
            node = b[base + root:base + root + node_size]
        yield ("btree_v2", b"\x00\x00\x00\x00" + b[p:p + 38] + node)
        yield ("btree_v2", b"\x02\x00\x00\x00" + b[p:p + 38] + node)
    for m in re.finditer(b"FRHP", b):
        p = m.start()
        if (u(b, p + 7, 2) or 0) != 0:
            continue  # filtered heap: variable-size header
        hdr = b[p:p + 146]
        root, rows = u(b, p + 132, 8), u(b, p + 140, 2)
        blk = b""
        if root is not None and root != (1 << 64) - 1:
            blk = b[base + root:base + root + SLICE]
        sel = 0 if rows == 0 else 1
        yield ("fractal_heap", bytes([sel]) + struct.pack("<H", 146) + hdr + blk)
        yield ("fractal_heap", bytes([3]) + struct.pack("<H", 146) + hdr + blk)
        yield ("fractal_heap", bytes([2]) + struct.pack("<H", 146) + hdr + bytes([0, 0x10, 0, 0, 0, 0, 0, 0, 0]))
    for sig, sel in ((b"FHDB", 0), (b"FHIB", 1)):
        for m in re.finditer(sig, b):
            p = m.start()
            h = u(b, p + 5, 8)
            if h is None or base + h + 146 > len(b) or b[base + h:base + h + 4] != b"FRHP":
                continue
            hdr = b[base + h:base + h + 146]
            for row in (0, 1, 2):
                yield ("fractal_heap", bytes([sel | row << 3]) + struct.pack("<H", 146) + hdr + b[p:p + SLICE])
    for m in re.finditer(b"FAHD", b):
        p = m.start()
        db = u(b, p + 16, 8)
        blk = b"" if db is None or db == (1 << 64) - 1 else b[base + db:base + db + SLICE]
        yield ("arrays", b"\x00" + struct.pack("<H", 28) + b[p:p + 28] + blk)
    for m in re.finditer(b"EAHD", b):
        p = m.start()
        ib = u(b, p + 60, 8)
        blk = b"" if ib is None or ib == (1 << 64) - 1 else b[base + ib:base + ib + SLICE]
        yield ("arrays", b"\x01" + struct.pack("<H", 72) + b[p:p + 72] + blk)
    for sig, kind in ((b"EASB", 1), (b"EADB", 2), (b"EAIB", 0)):
        for m in re.finditer(sig, b):
            p = m.start()
            h = u(b, p + 6, 8)
            if h is None or base + h + 72 > len(b) or b[base + h:base + h + 4] != b"EAHD":
                continue
            hdr = b[base + h:base + h + 72]
            for level in range(6) if kind else (0,):
                yield ("arrays", bytes([1 | kind << 2 | level << 4]) + struct.pack("<H", 72) + hdr + b[p:p + SLICE])


def sns():
    bodies = [open(os.path.join(MESSAGES, n), encoding="utf-8").read().strip()
              for n in sorted(os.listdir(MESSAGES))]
    for body in bodies:
        put("sns_message", body.encode())
        put("sns_message", ("\ufeff" + body).encode())
        try:
            inner = json.loads(body)["Message"]
        except (ValueError, KeyError):
            continue
        put("sns_message", inner.encode())
        try:
            for rec in json.loads(inner)["Records"]:
                put("ofs_key", rec["s3"]["object"]["key"].encode())
        except (ValueError, KeyError, TypeError):
            pass
    put("sns_message", json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                                   "Time": "2023-03-14T01:07:15.001Z", "Bucket": "noaa-ofs-pds"}).encode())
    put("sns_message", b'{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},'
                       b'"object":{"key":"dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc+%2B","size":1}}}]}')


def keys():
    text = open(OFS_DOC, encoding="utf-8").read() if os.path.exists(OFS_DOC) else ""
    for k in set(re.findall(r"[A-Za-z0-9_./{}|-]+\.(?:nc|zarr|nc\.zarr)\b", text)):
        put("ofs_key", k.encode())
    for k in ("nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr", "dbofs.20230323/nos.dbofs.met.f030.20230323.t12z.nc",
              "dbofs/netcdf/2025/06/01/dbofs.t12z.20250601.fields.f030.nc", "wcofs.20230323/nos.wcofs.2ds.n024.20230323.t03z.nc",
              "../nos.dbofs.fields.f030.20230323.t12z.nc", "nos.dbofs.fields.best.nc.zarr"):
        put("ofs_key", k.encode())


def netcdf3():
    """NetCDF-3 fixtures (fixtures/netcdf3/): whole files, and their first
    4 KiB (headers cut short)."""
    d = os.path.join(MAIN, "fixtures", "netcdf3")
    for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        b = open(os.path.join(d, n), "rb").read()
        put("netcdf3", b)
        put("netcdf3", b[:SLICE])


def layout_entries():
    """Layout cache entries for the source `layout_entry` decodes against
    (fuzz/harness/hdf5.rs LAYOUT_SOURCE): with and without a drift line,
    adjacent, overlapping and far ranges."""
    head = "kerchunk-nos layout 1\npattern s#://noaa-ofs-pds/dbofs.########/dbofs.t##z.########.fields.f###.nc\n"
    for size, drift, ranges in ((33529964, 0, [(0, 65536), (751022, 3280)]),
                                (36677036, 1806, [(0, 65536), (65536, 2048), (70000, 512), (9000000, 4096)]),
                                (100, None, [(5, 10), (5, 10), (12, 1)])):
        text = head + f"size {size}\n" + ("" if drift is None else f"drift {drift}\n")
        text += "".join(f"{a} {n}\n" for a, n in ranges)
        put("layout_entry", text.encode())


def main():
    netcdf3()
    layout_entries()
    for dirpath, _, names in os.walk(FILES):
        for n in sorted(names):
            path = os.path.join(dirpath, n)
            b = open(path, "rb").read()
            if superblock(b) is None:
                continue
            put("open_file", b)
            for target, data in structures(path, b):
                put(target, data)
    sns()
    keys()
    for t in sorted(counts):
        print(f"{t:14} {counts[t]:5} seeds")


if __name__ == "__main__":
    sys.exit(main())
