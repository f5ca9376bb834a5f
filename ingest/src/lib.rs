//! The cloud edge of kerchunk-nos.
pub mod backfill;
pub mod config;
pub mod inspect;
pub mod message;
pub mod ofs_key;
pub mod steps;
pub mod store;
pub mod worker;
