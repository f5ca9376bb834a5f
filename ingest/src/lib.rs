//! The cloud edge of kerchunk-nos.

#![forbid(unsafe_code)]

pub mod backfill;
pub mod config;
pub mod dead_letter;
pub mod fmrc_index;
pub mod fmrc_update;
#[cfg(feature = "icechunk")]
pub mod icechunk_out;
pub mod inspect;
pub mod layouts;
pub mod outputs;
pub mod rebuild;
pub mod sources;
pub mod steps;
pub mod store;
pub mod worker;

// The AWS-free parsers live in their own crate (the fuzz crate depends on
// it); these paths stay `ingest::message`, `ingest::ofs_key`.
pub use ofs_keys::{key, message, ofs_key};
