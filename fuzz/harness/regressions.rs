//! The one loader of `fuzz/regressions/<target>/`, `#[path]`-included by the
//! stable replay tests (`hdf5-lite/tests/fuzz_regressions.rs`,
//! `ingest/tests/fuzz_regressions.rs`). Test-only code: it panics.
//!
//! Every file is replayed, `oom-*`/`crash-*`/`timeout-*` alike: a finding is
//! committed here once it is fixed, so it must pass like everything else.
//! A missing directory or an empty one fails the test: a replay that finds
//! nothing would pass without testing anything.
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// `fuzz/regressions/<target>/`. Every includer's manifest directory sits one
/// level below the repository root (`hdf5-lite/`, `ingest/`, `fuzz/`).
pub fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target)
}

/// Every file of `fuzz/regressions/<target>/` as (path, bytes), sorted by
/// name. Panics if the directory is missing, unreadable or empty.
pub fn load(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = dir(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (no regressions for {target})", dir.display()));
    let mut out: Vec<_> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, b)
        })
        .collect();
    out.sort();
    assert!(
        !out.is_empty(),
        "{}: no regression inputs for {target}",
        dir.display()
    );
    out
}

/// Run `f` on every regression of `target` (at least one); fail naming every
/// input that panicked. Returns the number of inputs replayed.
pub fn replay(target: &str, f: impl Fn(&[u8])) -> usize {
    let cases = load(target);
    let failed: Vec<_> = cases
        .iter()
        .filter(|(_, d)| catch_unwind(AssertUnwindSafe(|| f(d))).is_err())
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: panicked on {failed:#?}");
    cases.len()
}
