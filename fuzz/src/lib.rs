//! Shared code of the fuzz targets. The harness bodies live in
//! `fuzz/harness/` so the stable regression tests can `#[path]`-include the
//! very same code.

#![forbid(unsafe_code)]

#[path = "../harness/hdf5.rs"]
pub mod hdf5;

// `ingest::message` and `ingest::ofs_key` depend only on serde_json and
// thiserror; compiling the two files here (instead of depending on the
// `ingest` crate) keeps the AWS SDK and aws-lc out of the sanitizer build.
#[allow(dead_code, unused_imports)]
#[path = "../../ingest/src/message.rs"]
pub mod ingest_message;
#[allow(dead_code, unused_imports)]
#[path = "../../ingest/src/ofs_key.rs"]
pub mod ingest_ofs_key;

/// What the ingest harness sees as the `ingest` crate.
pub mod ingest_api {
    pub use crate::ingest_message as message;
    pub use crate::ingest_ofs_key as ofs_key;
}

#[path = "../harness/ingest.rs"]
pub mod ingest;

#[path = "../harness/netcdf3.rs"]
pub mod netcdf3;
