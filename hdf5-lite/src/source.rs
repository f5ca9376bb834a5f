//! The I/O boundary: one small trait that takes many byte ranges at once
//! (in the spirit of arrow-rs's `AsyncFileReader::get_byte_ranges`), so the
//! walker can hand a whole wave of needs to a source in one call and let the
//! source decide how to issue them (one `pread` each, or concurrent HTTP
//! range GETs).

use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Failure of a source to deliver bytes (not a format problem).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl From<std::io::Error> for SourceError {
    fn from(e: std::io::Error) -> Self {
        SourceError(e.to_string())
    }
}

/// A random-access byte source (local file, HTTP object, S3 object, memory).
pub trait RangeSource: Send + Sync {
    /// Path or URL, used in error messages and as the default URL in refs.
    fn name(&self) -> &str;

    /// Read every range. The result has one `Bytes` per range, in order.
    /// A range reaching past the end of the object yields the bytes that
    /// exist (possibly none) rather than an error: the walker decides whether
    /// a short read means a truncated file.
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>>;

    /// Total size of the object. Sources that learn it from their first read
    /// (HTTP `Content-Range`) may require a `get_ranges` call first; the
    /// walker always reads the head of the file before asking.
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>>;
}

impl<T: RangeSource + ?Sized> RangeSource for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        (**self).get_ranges(ranges)
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        (**self).size()
    }
}

/// An in-memory object: tests, fuzzing, and data already fetched.
#[derive(Debug, Clone)]
pub struct MemorySource {
    name: String,
    data: Bytes,
}

impl MemorySource {
    pub fn new(name: impl Into<String>, data: impl Into<Bytes>) -> Self {
        MemorySource {
            name: name.into(),
            data: data.into(),
        }
    }
}

fn clamp(range: &Range<u64>, len: u64) -> Range<usize> {
    let start = range.start.min(len) as usize;
    let end = range.end.min(len).max(range.start.min(len)) as usize;
    start..end
}

impl RangeSource for MemorySource {
    fn name(&self) -> &str {
        &self.name
    }
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        let len = self.data.len() as u64;
        let out = ranges
            .iter()
            .map(|r| self.data.slice(clamp(r, len)))
            .collect();
        Box::pin(async move { Ok(out) })
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        let len = self.data.len() as u64;
        Box::pin(async move { Ok(len) })
    }
}

/// A local file read with positioned reads on a blocking thread, so a wave
/// of ranges costs one hop to the blocking pool, not one per range.
#[derive(Debug, Clone)]
pub struct FileSource {
    name: String,
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        FileSource {
            name: path.display().to_string(),
            path,
        }
    }
}

impl RangeSource for FileSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        let path = self.path.clone();
        let ranges = ranges.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || read_ranges_blocking(&path, &ranges))
                .await
                .map_err(|e| SourceError(format!("read task failed: {e}")))?
        })
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        let path = self.path.clone();
        Box::pin(async move { Ok(tokio::fs::metadata(&path).await?.len()) })
    }
}

fn read_ranges_blocking(path: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, SourceError> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)
        .map_err(|e| SourceError(format!("cannot open {}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let r = clamp(r, len);
        let mut buf = vec![0u8; r.end - r.start];
        file.read_exact_at(&mut buf, r.start as u64)?;
        out.push(Bytes::from(buf));
    }
    Ok(out)
}
