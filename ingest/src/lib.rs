//! The cloud edge of kerchunk-nos.
pub mod inspect;
pub mod message;
pub mod ofs_key;
