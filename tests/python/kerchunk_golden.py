#!/usr/bin/env python3
"""Produce kerchunk 0.2.7 golden reference sets for every fixture.

For each file under fixtures/files (recursively) run
``SingleHdf5ToZarr(f, url="file://fixture", inline_threshold=500).translate()``
(kerchunk's defaults otherwise: spec=1, vlen_encode="embed", error="warn")
and write ``fixtures/kerchunk-golden/<relpath>.json`` (compact, sorted keys).
Datasets kerchunk quashes with a warning are recorded, per file, in
``fixtures/kerchunk-golden/_summary.json`` together with files that fail
outright. Exit status is 0 even when some files fail (failures are data).

Usage: kerchunk_golden.py [--files DIR] [--out DIR] [--url URL]
"""
import argparse
import json
import pathlib
import sys
import traceback
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", default=str(ROOT / "fixtures" / "files"))
    ap.add_argument("--out", default=str(ROOT / "fixtures" / "kerchunk-golden"))
    ap.add_argument("--url", default="file://fixture")
    ap.add_argument("--inline-threshold", type=int, default=500)
    args = ap.parse_args()

    import kerchunk
    from kerchunk.hdf import SingleHdf5ToZarr

    files_dir = pathlib.Path(args.files)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"kerchunk": kerchunk.__version__, "url": args.url, "files": {}}
    paths = sorted(p for p in files_dir.rglob("*") if p.is_file())
    for path in paths:
        rel = path.relative_to(files_dir).as_posix()
        entry = {"status": "ok", "warnings": []}
        try:
            with open(path, "rb") as f, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                refs = SingleHdf5ToZarr(
                    f, url=args.url, inline_threshold=args.inline_threshold
                ).translate()
            entry["warnings"] = [
                str(w.message).splitlines()[1] if "\n" in str(w.message) else str(w.message)
                for w in caught
                if "quashed" in str(w.message) or issubclass(w.category, UserWarning)
            ]
            target = out_dir / (rel + ".json")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w") as out:
                json.dump(refs, out, sort_keys=True, separators=(",", ":"))
            entry["keys"] = len(refs["refs"])
        except Exception as e:  # record, keep going
            entry = {
                "status": "failed",
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=5),
            }
        summary["files"][rel] = entry
        print(f"{entry['status']:7} {rel}"
              + (f"  ({len(entry.get('warnings', []))} warnings)" if entry.get("warnings") else "")
              + (f"  {entry.get('error')}" if entry["status"] != "ok" else ""))
    with open(out_dir / "_summary.json", "w") as out:
        json.dump(summary, out, indent=1, sort_keys=True)
    n_ok = sum(1 for e in summary["files"].values() if e["status"] == "ok")
    print(f"{n_ok}/{len(paths)} files translated; summary in {out_dir / '_summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
