//! Shared code of the fuzz targets. The harness bodies live in
//! `fuzz/harness/` so the stable regression tests can `#[path]`-include the
//! very same code.

#![forbid(unsafe_code)]

#[path = "../harness/hdf5.rs"]
pub mod hdf5;

#[path = "../harness/ingest.rs"]
pub mod ingest;

#[path = "../harness/netcdf3.rs"]
pub mod netcdf3;
