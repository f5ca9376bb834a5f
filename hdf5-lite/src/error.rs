//! Errors name the file, the on-disk structure and its address, so an
//! operator can tell "corrupt B-tree node of /temp at 0x1f400" from "S3
//! returned 503" without a debugger.

use crate::source::SourceError;

/// A problem with the bytes of one structure, before the file name is known
/// (parsers are pure and do not know which file they read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{structure} at {address:#x}: {reason}")]
pub struct FormatError {
    pub structure: &'static str,
    pub address: u64,
    pub reason: String,
}

impl FormatError {
    pub fn new(structure: &'static str, address: u64, reason: impl Into<String>) -> Self {
        FormatError {
            structure,
            address,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is malformed, truncated, or uses something unsupported.
    #[error("{file}: {error}")]
    Format { file: String, error: FormatError },
    /// The byte source failed.
    #[error("{file}: read failed: {error}")]
    Source { file: String, error: SourceError },
    /// A configured limit (metadata bytes, objects, chunks) was exceeded.
    #[error("{file}: limit exceeded: {what}")]
    Limit { file: String, what: String },
}

impl Error {
    pub fn file(&self) -> &str {
        match self {
            Error::Format { file, .. } | Error::Source { file, .. } | Error::Limit { file, .. } => {
                file
            }
        }
    }
}
