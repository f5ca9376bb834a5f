//! Fuzz harness body of the `netcdf3` target, shared verbatim by the
//! cargo-fuzz target (`kerchunk_nos_fuzz::netcdf3`) and the stable replay
//! (`hdf5-lite/tests/netcdf3_fuzz_regressions.rs`, via `#[path]`).
//!
//! Input: a whole file. The pure header parser must either parse within
//! the input, or say "short" with a need past the input's end, or say
//! "malformed"; then the file is opened through the format dispatch
//! (`open_any`, which also computes every variable's layout and maps it
//! into the HDF5 model): any error must name the file.
#![allow(dead_code)]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use hdf5_lite::netcdf3::{self, HeaderError, header};
use hdf5_lite::{MemorySource, Options, RangeSource};

/// Name given to the in-memory file; every open error must mention it.
pub const FILE_NAME: &str = "fuzz-input.nc";

/// The shared runtime (`fuzz/harness/common.rs`).
pub use common::runtime;

/// The shared limits, with the chunk limit `netcdf3::layouts` gets below.
pub fn options() -> Options {
    Options {
        max_chunks_per_dataset: 100_000,
        ..common::options()
    }
}

pub fn netcdf3(rt: &tokio::runtime::Runtime, data: &[u8]) -> Result<(), String> {
    match header::parse(data) {
        Ok(h) => {
            assert!(h.length <= data.len() as u64, "header past the input");
            if let Ok(ls) = netcdf3::layouts(&h, 100_000) {
                assert_eq!(ls.len(), h.variables.len());
                for l in &ls {
                    let _ = l.end();
                }
            }
        }
        Err(HeaderError::Short { need, estimate, .. }) => {
            assert!(
                need > data.len() as u64,
                "short with {need} <= {}",
                data.len()
            );
            assert!(estimate >= need);
        }
        Err(e @ HeaderError::Bad { .. }) => {
            let _ = e.to_string();
        }
    }
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new(FILE_NAME, data.to_vec()));
    match rt.block_on(hdf5_lite::open_any(src, &options())) {
        Ok((opened, _)) => {
            let _ = format!("{:?}", opened.model()).len();
            Ok(())
        }
        Err(e) => {
            let msg = e.to_string();
            assert_eq!(e.file(), FILE_NAME, "error names another file: {msg}");
            assert!(
                msg.contains(FILE_NAME),
                "error does not name the file: {msg}"
            );
            Err(msg)
        }
    }
}
