//! Reference sets from hdf5-lite models.
//!
//! [`translate::translate`] turns a walked HDF5/NetCDF-4 file into a
//! kerchunk version-1 reference set (zarr v2 metadata plus
//! `[url, offset, length]` per chunk) that fsspec/zarr 2/xarray read like
//! kerchunk 0.2.7's `SingleHdf5ToZarr` output. Differences from kerchunk are
//! deliberate and listed in this crate's README.

#![forbid(unsafe_code)]
// No panics on data from a file or message: outside tests, failures are typed
// errors. (Integration tests, examples and unit tests may unwrap.)
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod attrs;
pub mod codecs;
pub mod combine;
pub mod dims;
pub mod error;
pub mod fmrc;
pub mod json;
pub mod netcdf3;
pub mod parquet;
pub mod refs;
mod refs_read;
pub mod refs_text;
pub mod translate;
pub mod zarr;

pub use error::Error;
pub use json::Json;
pub use netcdf3::translate_opened;
pub use refs::{Ref, RefSet};
pub use translate::{TranslateOptions, Translation, Warning, translate};
