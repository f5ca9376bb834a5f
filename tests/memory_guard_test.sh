#!/usr/bin/env bash
# The memory rule of deploy/README.md, measured: peak RSS of extract_single
# stays under 1.25 x (32 MiB + 70 x --max-metadata-bytes) on the worst case
# per metadata byte (a v1 B-tree of uncompressed chunks just under the
# inline threshold, every chunk inlined), both when the guard fires (exit 1,
# "limit exceeded") and when the file fits (exit 0).
#
# The constants are read from ingest/tests/deploy_manifests.rs (which checks
# the manifests' limits against them) and the guard from
# deploy/argo/workflowtemplate-extract-single.yaml, so the rule the
# manifests are held to is the one measured here. The file is generated with
# h5py (deterministic) into target/memory-guard/, read with --source-root.
# Env: KERCHUNK_NOS_BIN (default target/debug/kerchunk-nos, rebuilt unless
# set), KERCHUNK_NOS_PYTHON (default .venv/bin/python).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
oracle_python memory_guard_test
test_binary memory_guard_test
exec "$PY" - "$ROOT" "$BIN" <<'EOF'
import json, os, re, shutil, subprocess, sys

import yaml

root, binary = sys.argv[1], sys.argv[2]
MiB = 1024 * 1024
src = open(f"{root}/ingest/tests/deploy_manifests.rs").read()


def const(name):
    m = re.search(rf"const {name}: f64 = ([0-9.]+);", src)
    if not m:
        sys.exit(f"memory_guard_test: {name} not found in deploy_manifests.rs")
    return float(m.group(1))


baseline, per_byte, margin = const("BASELINE_MIB"), const("BYTES_PER_METADATA_BYTE"), const("MARGIN")
wt = yaml.safe_load(open(f"{root}/deploy/argo/workflowtemplate-extract-single.yaml"))
entry = next(t for t in wt["spec"]["templates"] if t["name"] == wt["spec"]["entrypoint"])
args = [str(a) for a in entry["container"]["args"]]
guard = int(args[args.index("--max-metadata-bytes") + 1])
print(f"rule: {margin} x ({baseline:.0f} MiB + {per_byte:.0f} x guard); manifest guard {guard} bytes")

work = f"{root}/target/memory-guard"
shutil.rmtree(work, ignore_errors=True)
key = "dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc"
os.makedirs(f"{work}/src/noaa-ofs-pds/{os.path.dirname(key)}")
# 160,000 chunks of 120 float32 = 480 bytes: under kerchunk's 500-byte
# inline threshold, so every chunk is read and inlined. About 5.2 MiB of
# v1 B-tree: more than the manifests' 4 MiB guard.
# Written by a separate process: on Linux a child's peak RSS (wait4's
# ru_maxrss) includes its parent's at fork time, so this one stays small.
n = 160_000
subprocess.run([sys.executable, "-c", f"""
import h5py, numpy as np
with h5py.File({f"{work}/src/noaa-ofs-pds/{key}"!r}, "w", libver="earliest") as f:
    d = f.create_dataset("x", shape=({n} * 120,), chunks=(120,), dtype="f4")
    d[:] = np.random.default_rng(19).random({n} * 120, dtype="f4")
"""], check=True)
own = open("/proc/self/status").read()
own_hwm = int(re.search(r"VmHWM:\s+(\d+)", own).group(1)) / 1024
print(f"this process: peak RSS {own_hwm:.0f} MiB (a floor of what is measured below)")

envelope = json.load(open(f"{root}/tests/static/messages/new-ofs-object-tbofs.json"))
inner = json.loads(envelope["Message"])
inner["Records"][0]["s3"]["object"]["key"] = key
envelope["Message"] = json.dumps(inner)
message = json.dumps(envelope)

failed = 0


def run(g, want_exit):
    global failed
    dest = f"{work}/dest-{g}"
    cmd = [binary, "extract_single", message, f"file://{dest}", "nos",
           "--source-root", f"{work}/src", "--max-metadata-bytes", str(g)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, RUST_LOG="warn"))
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss / 1024  # KiB -> MiB (Linux)
    bound = margin * (baseline + per_byte * g / MiB)
    ok_exit = code == want_exit and (want_exit == 0 or "limit exceeded" in err)
    ok_mem = peak <= bound
    print(f"{'PASS' if ok_exit and ok_mem else 'FAIL'} guard {g / MiB:.0f} MiB: exit {code} "
          f"(want {want_exit}), peak RSS {peak:.0f} MiB <= bound {bound:.0f} MiB")
    if not ok_exit:
        print("  " + err.strip()[-400:])
    if want_exit == 0 and code == 0:
        refs = json.load(open(f"{dest}/nos/{os.path.basename(key)}.zarr"))["refs"]
        inlined = sum(1 for k, v in refs.items() if re.fullmatch(r"x/\d+", k) and isinstance(v, str))
        if inlined != n:
            print(f"FAIL expected {n} inlined chunks, got {inlined}")
            failed += 1
    failed += not (ok_exit and ok_mem)


run(guard, 1)          # the manifests' guard fires on this file
# a guard the file fits under: all of it indexed. The walk fetches ~2.2x the
# 5.3 MiB of B-tree it parses here (look-behind windows that save waves, see
# hdf5_lite::Options), so 11.1 MiB: 4x the manifests' guard holds it.
run(4 * guard, 0)
shutil.rmtree(work, ignore_errors=True)
print(f"memory guard: {'all passed' if not failed else f'{failed} failed'}")
sys.exit(1 if failed else 0)
EOF
