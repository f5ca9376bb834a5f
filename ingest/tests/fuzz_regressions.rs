//! Replays the fuzz regressions of the ingest targets on stable `cargo test`:
//! every file under `fuzz/regressions/{sns_message,ofs_key}/` goes through
//! the same harness function the cargo-fuzz target runs
//! (`fuzz/harness/ingest.rs`, included below), which must not panic.

/// What the shared harness calls `ingest_api`: here, the real crate.
mod ingest_api {
    pub use ingest::{message, ofs_key};
}

#[path = "../../fuzz/harness/ingest.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn oom_too() -> bool {
    std::env::var_os("FUZZ_REPLAY_OOM").is_some()
}

/// Every file of `fuzz/regressions/<target>/`, sorted by name.
fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        // `oom-*` inputs exhaust memory until their bug is fixed: replayed
        // only by `replay_oom_inputs` (ignored by default).
        .filter(|p| oom_too() || !p.file_name().unwrap().to_string_lossy().starts_with("oom-"))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

fn replay(target: &str, f: impl Fn(&[u8])) -> usize {
    let cases = regressions(target);
    let failed: Vec<_> = cases
        .iter()
        .filter(|(_, d)| catch_unwind(AssertUnwindSafe(|| f(d))).is_err())
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: panicked on {failed:#?}");
    cases.len()
}

#[test]
fn replay_sns_message() {
    let n = replay("sns_message", harness::sns_message);
    assert!(n > 0, "no sns_message regressions found");
}

#[test]
fn replay_ofs_key() {
    let n = replay("ofs_key", harness::ofs_key);
    assert!(n > 0, "no ofs_key regressions found");
}

/// The invariants the `ofs_key` target checks hold on the documented keys.
#[test]
fn harness_accepts_documented_keys() {
    for key in [
        "tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc",
        "dbofs.20240905/dbofs.t06z.20240905.fields.f030.nc",
        "cbofs/netcdf/202411/cbofs.t00z.20241115.fields.f001.nc",
        "dbofs/netcdf/2026/07/20/dbofs.t06z.20260720.fields.n001.nc",
        "nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr",
        "../../etc/passwd.nc",
        "dbofs.20230323/nos.dbofs.fields.f030.20230323.t12z.nc\u{0}",
    ] {
        harness::ofs_key(key.as_bytes());
    }
}
