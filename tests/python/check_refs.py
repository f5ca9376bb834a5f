#!/usr/bin/env python3
"""Run the readback and kerchunk-comparison checks over every translated
fixture: our refs (target/kerchunk-ours, written by `cargo test -p kerchunk
--test fixtures`) must read back bit-identical to h5py, and match kerchunk
0.2.7's refs (fixtures/kerchunk-golden) except for the intended differences
listed in compare_kerchunk.py. Prints one line per file and a final
"N passed, N failed" line; exits 1 on any failure.

Each check is its own interpreter (h5py and netCDF4 cannot share a process,
and one file's failure must not leak into the next); they run on every core
at once, results printed in file order."""
import json
import os
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[2]
OURS = ROOT / "target" / "kerchunk-ours"
FILES = ROOT / "fixtures" / "files"
GOLDEN = ROOT / "fixtures" / "kerchunk-golden"
PY = sys.executable
HERE = pathlib.Path(__file__).resolve().parent


# Readers of refs for HDF5 filters without a numcodecs built-in (LZF, LZ4,
# bitshuffle, SZIP) need imagecodecs' numcodecs classes registered; h5py
# (the oracle) needs hdf5plugin's filter plugins to read such files.
WITH_CODECS = (
    "import sys, runpy, imagecodecs.numcodecs, hdf5plugin; "
    "imagecodecs.numcodecs.register_codecs(); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run(args):
    if args[0] == PY:
        args = [PY, "-c", WITH_CODECS] + args[1:]
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr)


def main():
    refs = sorted(p for p in OURS.rglob("*.json"))
    if len(refs) < 35:
        sys.exit(f"only {len(refs)} reference sets under {OURS}: run `cargo test -p kerchunk --test fixtures` first")
    def check_one(ref):
        """(name, ok, what was checked, output) for one translated fixture."""
        rel = ref.relative_to(OURS).as_posix()[: -len(".json")]
        original = FILES / rel
        warnings = ref.with_name(ref.name[: -len(".json")] + ".warnings.tsv")
        allow = []
        if warnings.exists():
            for line in warnings.read_text().splitlines():
                if line.strip():
                    allow += ["--allow-missing", line.split("\t")[0]]
        code, out = run([PY, str(HERE / "readback.py"), str(ref), str(original)] + allow)
        ok = code == 0
        msg = "readback"
        golden = GOLDEN / (rel + ".json")
        if ok and golden.exists():
            code, out2 = run([PY, str(HERE / "compare_kerchunk.py"), str(ref), str(golden), "--warnings", str(warnings),
                              "--original", str(original)])
            out += out2
            ok = code == 0
            msg = "readback+kerchunk"
        return rel, ok, msg, out

    # vlen sequences of numbers (TranslateOptions::vlen_sequences, opt-in:
    # xarray cannot open a zarr group holding them, so zarr only), written
    # by `cargo test -p kerchunk --lib vlen_sequences`
    vlen = sorted((ROOT / "target" / "kerchunk-vlen").glob("*.json"))
    if len(vlen) < 2:
        sys.exit("no target/kerchunk-vlen refs: run `cargo test -p kerchunk --lib` first")

    def check_vlen(ref):
        rel = ref.relative_to(ref.parent).as_posix()[: -len(".json")]
        allow = []
        for w in json.loads(ref.read_text()).get("warnings", []):
            allow += ["--allow-missing", w["path"]]
        code, out = run([PY, str(HERE / "readback.py"), str(ref), str(FILES / rel), "--no-xarray"] + allow)
        ok = code == 0 and "vlen" not in "".join(l for l in out.splitlines() if "allowed" in l)
        return rel, ok, "vlen_sequences: zarr readback", out

    passed = failed = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = [pool.submit(check_one, r) for r in refs] + [pool.submit(check_vlen, r) for r in vlen]
        for fut in results:
            rel, ok, msg, out = fut.result()
            if ok:
                passed += 1
                print(f"ok    {rel} ({msg})", flush=True)
            else:
                failed += 1
                print(f"FAIL  {rel} ({msg})\n" + "\n".join("      " + l for l in out.splitlines()[-25:]), flush=True)
    print(f"refs: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
