"""MultiZarrToZarr on the inputs combine_bench.rs wrote, timed in the same
run, and the table of ours vs MZZ (bench/combine_bench.sh).

    combine_mzz.py OUT_DIR "RESULT k=v ..."
"""
import glob
import json
import sys
import time

import ujson
from kerchunk.combine import MultiZarrToZarr

out, res = sys.argv[1], sys.argv[2]
r = dict(kv.split("=") for kv in res.split()[1:])
paths = sorted(glob.glob(f"{out}/in/*.json"))
ident = ["eta_rho", "xi_rho", "s_rho", "eta_psi", "xi_psi", "s_w", "eta_u", "xi_u", "eta_v",
         "xi_v", "lat_rho", "lat_psi", "lat_u", "lat_v", "lon_rho", "lon_psi", "lon_u", "lon_v"]


def mzz(inputs):
    return MultiZarrToZarr(inputs, concat_dims=["ocean_time"], identical_dims=ident,
                           remote_protocol="file").translate()


# the same split as ours: parse, combine on parsed inputs, end to end
t = time.perf_counter()
dicts = [ujson.load(open(p)) for p in paths]
parse = time.perf_counter() - t
t = time.perf_counter()
m = mzz(dicts)
comb = time.perf_counter() - t
t = time.perf_counter()
m2 = mzz(paths)
with open(f"{out}/mzz.json", "w") as f:
    ujson.dump(m2, f)
full = time.perf_counter() - t

# MZZ stacks static arrays: its key set is our --stack-static output's
ours_stack = json.load(open(f"{out}/ours_stack.json"))["refs"]
same_keys = set(ours_stack) == set(m["refs"])

rows = [
    ("parse JSON", float(r["parse_s"]), parse),
    ("combine (parsed inputs)", float(r["combine_s"]), comb),
    ("combine, --stack-static (MZZ's output)", float(r["stack_combine_s"]), comb),
    ("parse + combine + write", float(r["parse_combine_write_s"]), full),
]
print()
print(f"load average {open('/proc/loadavg').read().split()[0]}; {r['inputs']} inputs x {r['vars']} variables, {r['input_keys']} keys, "
      f"{r['in_mb']} MB of JSON in; out {r['out_keys']} keys ({r['out_mb']} MB); "
      f"ours on {r['threads']} threads (parse on one thread: {float(r['parse_1thread_s']):.4f} s)")
print()
print("| step | ours (s) | MultiZarrToZarr (s) | speed-up |")
print("|---|---|---|---|")
for name, ours, theirs in rows:
    print(f"| {name} | {ours:.4f} | {theirs:.2f} | {theirs / ours:.0f}x |")
print()
print(f"MZZ out keys {len(m['refs'])}; ours --stack-static {r['stack_out_keys']} "
      f"(same key set: {'yes' if same_keys else 'NO'}); ours default {r['out_keys']}")
