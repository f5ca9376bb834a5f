//! `hdf5-lite`: a pure-Rust reader of HDF5 metadata.
//!
//! It reads what an indexer needs (groups, attributes, datatypes, layouts,
//! filters, fill values and the address of every chunk) and nothing else:
//! no raw data is decoded. Parsers are pure functions over byte slices (one
//! module per structure of the HDF5 File Format Specification); the
//! [`walk`] engine decides which byte ranges to fetch next and asks a
//! [`source::RangeSource`] for a whole wave of them at once, so round trips
//! grow with the depth of the file's structure, not with its object count.

#![forbid(unsafe_code)]
// No panics on data from a file or message: outside tests, failures are typed
// errors. (Integration tests, examples and unit tests may unwrap.)
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// `get_ranges(&[a..b])` asks for one byte range; that is not the
// `vec![a..b]`-meant-as-values mistake this lint looks for.
#![allow(clippy::single_range_in_vec_init)]

pub mod error;
pub mod model;
pub mod source;

pub use error::{Error, FormatError};
pub use model::*;
pub use source::{FileSource, MemorySource, RangeSource, SourceError, SourceOptions, open_url};
pub mod walk;
pub use walk::{Options, Prefetched, Stats, open, open_path, open_prefetched};
pub mod btree_v1;
pub mod btree_v2;
pub mod checksum;
pub mod data;
pub mod extensible_array;
pub mod fixed_array;
pub mod fractal_heap;
pub mod global_heap;
pub mod layout_cache;
pub mod local_heap;
pub mod messages;
pub mod netcdf3;
pub mod open_any;
pub use open_any::{Opened, open_any, open_any_prefetched};
pub mod object_header;
pub mod parse;
pub mod sohm;
pub mod superblock;
pub mod value;
