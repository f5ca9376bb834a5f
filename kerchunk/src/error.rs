//! Errors of the translation as a whole. Problems with one dataset are not
//! errors: they become [`crate::translate::Warning`]s and the rest of the
//! file still translates.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The byte source failed while fetching inline data.
    #[error("{file}: read failed: {error}")]
    Source {
        file: String,
        error: hdf5_lite::SourceError,
    },
    /// The source returned fewer bytes than a chunk's recorded size.
    #[error("{file}: short read of {key}: wanted {wanted} bytes at {offset:#x}, got {got}")]
    ShortRead {
        file: String,
        key: String,
        offset: u64,
        wanted: u64,
        got: u64,
    },
    /// A reference set or metadata document could not be parsed.
    #[error("cannot parse reference set: {0}")]
    Parse(String),
}
