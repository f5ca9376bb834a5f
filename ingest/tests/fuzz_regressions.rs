//! Replays the fuzz regressions of the ingest targets on stable `cargo test`:
//! every file under `fuzz/regressions/{sns_message,ofs_key}/` goes through
//! the same harness function the cargo-fuzz target runs
//! (`fuzz/harness/ingest.rs`, included below), which must not panic. The
//! loader (`fuzz/harness/regressions.rs`) is shared with hdf5-lite's replay
//! and fails on a missing or empty directory.

#[path = "../../fuzz/harness/ingest.rs"]
mod harness;
#[path = "../../fuzz/harness/regressions.rs"]
mod regressions;

#[test]
fn replay_sns_message() {
    regressions::replay("sns_message", harness::sns_message);
}

#[test]
fn replay_ofs_key() {
    regressions::replay("ofs_key", harness::ofs_key);
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
