"""Generate the synthetic OFS runs used by kerchunk/tests/combine.rs.

    combine_make_cycle.py OUT_DIR [--make-ofs PATH]

Writes (legacy layout, --scale small) under OUT_DIR:
  dbofs  cycles 2023-03-23T06 and T12: n001..n006, f001..f006
  sfbofs cycle  2023-03-23T03:         n001..n006, f001..f006
and prints one `key<TAB>size` line per file (make_ofs.py's output).
One Python process for all files (~0.1 s per file).
"""
import argparse
import contextlib
import importlib.util
import io
import sys

RUNS = [
    ("dbofs", "2023-03-23T06"),
    ("dbofs", "2023-03-23T12"),
    ("sfbofs", "2023-03-23T03"),
]
HOURS = [f"n{h:03d}" for h in range(1, 7)] + [f"f{h:03d}" for h in range(1, 7)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--make-ofs", default=str(__import__("pathlib").Path(__file__).resolve().parents[2] / "fixtures" / "make_ofs.py"))
    a = p.parse_args()
    spec = importlib.util.spec_from_file_location("make_ofs", a.make_ofs)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for model, cycle in RUNS:
        for hour in HOURS:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                mod.main(["--model", model, "--kind", "fields", "--hour", hour,
                          "--cycle", cycle, "--out", a.out, "--scale", "small"])
            sys.stdout.write(buf.getvalue())


if __name__ == "__main__":
    main()
