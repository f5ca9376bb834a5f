//! What every fuzz harness shares: the runtime and the limits of one run.
//! Each harness includes this file as its own `common` module (`#[path]`,
//! relative to `fuzz/harness/`), so the cargo-fuzz targets and the stable
//! regression replays that `#[path]`-include a harness need nothing more.
#![allow(dead_code)]

use hdf5_lite::Options;

/// Tight limits so a hostile file cannot make one run take minutes (a
/// harness may tighten them further).
pub fn options() -> Options {
    Options {
        max_metadata_bytes: 64 * 1024 * 1024,
        max_waves: 1000,
        max_objects: 100_000,
        max_chunks_per_dataset: 1_000_000,
        ..Options::default()
    }
}

/// A current-thread runtime, as the fuzz targets and tests use.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
