//! The traversal engine: plan a wave of byte ranges, fetch them in one call,
//! run the pure parsers, repeat.

use std::sync::Arc;

use serde::Serialize;

use crate::error::Error;
use crate::model::File;
use crate::source::RangeSource;

/// Knobs for one open; defaults suit a NetCDF-4 file on S3.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes read speculatively from the start of the file.
    pub head_size: u64,
    /// Ranges closer than this are merged into one request.
    pub coalesce_gap: u64,
    /// Merged requests are not grown beyond this size.
    pub max_request: u64,
    /// Stop with [`Error::Limit`] past this many metadata bytes fetched.
    pub max_metadata_bytes: u64,
    /// Stop with [`Error::Limit`] past this many objects (groups+datasets).
    pub max_objects: usize,
    /// Stop with [`Error::Limit`] past this many chunks in one dataset.
    pub max_chunks_per_dataset: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            head_size: 64 * 1024,
            coalesce_gap: 64 * 1024,
            max_request: 8 * 1024 * 1024,
            max_metadata_bytes: 256 * 1024 * 1024,
            max_objects: 1_000_000,
            max_chunks_per_dataset: 50_000_000,
        }
    }
}

/// What one open cost, counted at the engine (not in each source).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Requests issued to the source (after coalescing).
    pub requests: u64,
    /// Bytes received from the source.
    pub bytes_fetched: u64,
    /// Sequential rounds of requests: the latency multiplier.
    pub waves: u64,
    /// Size of the file.
    pub file_size: u64,
}

/// Walk a whole file: every group, dataset, attribute and chunk.
pub async fn open(source: Arc<dyn RangeSource>, options: &Options) -> Result<(File, Stats), Error> {
    let _ = (source, options);
    unimplemented!("walker under construction")
}

/// Blocking convenience for tests and tools: open a local file.
pub fn open_path(path: impl AsRef<std::path::Path>) -> Result<File, Error> {
    let source: Arc<dyn RangeSource> = Arc::new(crate::source::FileSource::new(path));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Source {
            file: source.name().to_string(),
            error: crate::source::SourceError(format!("cannot start runtime: {e}")),
        })?;
    rt.block_on(async { open(source, &Options::default()).await.map(|(f, _)| f) })
}
