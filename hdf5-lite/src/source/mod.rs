//! The I/O boundary: one small trait that takes many byte ranges at once
//! (in the spirit of arrow-rs's `AsyncFileReader::get_byte_ranges`), so the
//! walker can hand a whole wave of needs to a source in one call and let the
//! source decide how to issue them (one `pread` each, or concurrent HTTP
//! range GETs).
//!
//! Remote sources live behind cargo features: [`http::HttpSource`] (feature
//! `http`) and [`s3::S3Source`] (feature `s3`). [`open_url`] picks one from a
//! path or URL.

use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "s3")]
pub mod s3;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a source could not deliver bytes. Callers decide exit codes and
/// retries from the kind, never from the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceErrorKind {
    /// The object or its bucket does not exist.
    NotFound,
    /// Access denied (401/403, or a bucket outside an allowlist).
    Denied,
    /// The object changed while it was being read (a pinned `If-Match`
    /// failed with 412, or two responses carried different ETags): reading
    /// it again from the start will succeed.
    Changed,
    /// Worth retrying: 5xx, throttling, timeouts, resets, short bodies.
    Transient,
    /// The server's answer is unusable (a range other than the one asked
    /// for, a 206 without `Content-Range`).
    Malformed,
    /// The request itself is refused for another reason (unsupported URL,
    /// other 4xx): retrying cannot help.
    Rejected,
}

/// Failure of a source to deliver bytes (not a format problem). The message
/// says what was asked and what came back; it does not repeat the source's
/// URL for range reads (whoever reports it names the file once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub kind: SourceErrorKind,
    pub message: String,
}

impl SourceError {
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> SourceErrorKind {
        self.kind
    }

    /// A retry (of the request, or of the whole read for `Changed`) may
    /// succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            SourceErrorKind::Transient | SourceErrorKind::Changed
        )
    }
}

impl From<std::io::Error> for SourceError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::NotFound => SourceErrorKind::NotFound,
            K::PermissionDenied => SourceErrorKind::Denied,
            K::UnexpectedEof | K::InvalidInput | K::InvalidData => SourceErrorKind::Malformed,
            _ => SourceErrorKind::Transient,
        };
        SourceError::new(kind, e.to_string())
    }
}

/// The version of a remote object a source read, as its responses told it.
/// Recorded beside the references made from it, so a reader can tell which
/// bytes they describe and a writer never replaces them with references
/// made from an older version.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// As the server sent it (HTTP date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
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

    /// The object version every read so far came from (remote sources pin
    /// it: later reads of another version fail with
    /// [`SourceErrorKind::Changed`]). `None` when the source has no notion
    /// of versions or has not read yet.
    fn version(&self) -> Option<SourceVersion> {
        None
    }
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
    fn version(&self) -> Option<SourceVersion> {
        (**self).version()
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
                .map_err(|e| {
                    SourceError::new(SourceErrorKind::Transient, format!("read task failed: {e}"))
                })?
        })
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        let path = self.path.clone();
        Box::pin(async move { Ok(tokio::fs::metadata(&path).await?.len()) })
    }
}

fn read_ranges_blocking(path: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, SourceError> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|e| {
        let kind = SourceError::from(std::io::Error::new(e.kind(), "")).kind;
        SourceError::new(kind, format!("cannot open {}: {e}", path.display()))
    })?;
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

// ---------------------------------------------------------------------------
// Remote sources: options, URL dispatch and shared helpers
// ---------------------------------------------------------------------------

/// Settings for remote sources ([`open_url`], `HttpSource`, `S3Source`).
/// Local files ignore them.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Range requests in flight at once within one `get_ranges` call.
    pub concurrency: usize,
    /// Attempts per range, the first one included (retries on 5xx, 408, 429,
    /// timeouts, connection errors and short bodies).
    pub max_attempts: u32,
    /// Whole-request timeout (headers and body) of one attempt.
    pub request_timeout: std::time::Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: std::time::Duration,
    /// First backoff delay; doubled per retry, capped at `backoff_max`, with
    /// random jitter (the sleep is uniform in `[d/2, d]`).
    pub backoff_base: std::time::Duration,
    /// Upper bound of one backoff delay.
    pub backoff_max: std::time::Duration,
    /// S3: `Some(true)` never signs, `Some(false)` always uses the standard
    /// credential chain, `None` signs unless the bucket is a known public one
    /// (see `s3::PUBLIC_BUCKETS`).
    pub anonymous: Option<bool>,
    /// S3: endpoint override. `None` uses `AWS_ENDPOINT_URL(_S3)` if set.
    pub endpoint_url: Option<String>,
    /// S3: path-style addressing. `None` means "yes when an endpoint
    /// override is in effect" (moto, MinIO), else virtual-hosted.
    pub force_path_style: Option<bool>,
    /// S3: region. `None` reads `AWS_REGION` / `AWS_DEFAULT_REGION`, else
    /// `us-east-1`.
    pub region: Option<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            concurrency: 64,
            max_attempts: 5,
            request_timeout: std::time::Duration::from_secs(30),
            connect_timeout: std::time::Duration::from_secs(10),
            backoff_base: std::time::Duration::from_millis(100),
            backoff_max: std::time::Duration::from_secs(5),
            anonymous: None,
            endpoint_url: None,
            force_path_style: None,
            region: None,
        }
    }
}

/// Open a byte source for a local path, `file://` URL, `http(s)://` URL
/// (feature `http`) or `s3://bucket/key` (feature `s3`).
pub async fn open_url(
    url: &str,
    opts: &SourceOptions,
) -> Result<Arc<dyn RangeSource>, SourceError> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s.to_ascii_lowercase(), r)
        }
        _ => return open_local(url).await,
    };
    match scheme.as_str() {
        "file" => {
            // file:///abs/path or file://localhost/abs/path
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(SourceError::new(
                    SourceErrorKind::Rejected,
                    format!("{url}: unsupported file URL (only local absolute paths)"),
                ));
            }
            open_local(&percent_decode(path)).await
        }
        "http" | "https" => open_http(url, opts),
        "s3" => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || key.is_empty() {
                return Err(SourceError::new(
                    SourceErrorKind::Rejected,
                    format!("{url}: expected s3://bucket/key"),
                ));
            }
            open_s3(bucket, key, opts).await
        }
        other => Err(SourceError::new(
            SourceErrorKind::Rejected,
            format!("{url}: unsupported URL scheme `{other}://`"),
        )),
    }
}

async fn open_local(path: &str) -> Result<Arc<dyn RangeSource>, SourceError> {
    let meta = tokio::fs::metadata(path).await.map_err(|e| {
        let kind = SourceError::from(std::io::Error::new(e.kind(), "")).kind;
        SourceError::new(kind, format!("cannot open {path}: {e}"))
    })?;
    if meta.is_dir() {
        return Err(SourceError::new(
            SourceErrorKind::Rejected,
            format!("cannot open {path}: is a directory"),
        ));
    }
    Ok(Arc::new(FileSource::new(path)))
}

#[cfg(feature = "http")]
fn open_http(url: &str, opts: &SourceOptions) -> Result<Arc<dyn RangeSource>, SourceError> {
    Ok(Arc::new(http::HttpSource::new(url, opts)?))
}

#[cfg(not(feature = "http"))]
fn open_http(url: &str, _opts: &SourceOptions) -> Result<Arc<dyn RangeSource>, SourceError> {
    Err(SourceError::new(
        SourceErrorKind::Rejected,
        format!("{url}: HTTP support is not compiled in (build hdf5-lite with feature `http`)"),
    ))
}

#[cfg(feature = "s3")]
async fn open_s3(
    bucket: &str,
    key: &str,
    opts: &SourceOptions,
) -> Result<Arc<dyn RangeSource>, SourceError> {
    Ok(Arc::new(s3::S3Source::new(bucket, key, opts).await?))
}

#[cfg(not(feature = "s3"))]
async fn open_s3(
    bucket: &str,
    key: &str,
    _opts: &SourceOptions,
) -> Result<Arc<dyn RangeSource>, SourceError> {
    Err(SourceError::new(
        SourceErrorKind::Rejected,
        format!(
            "s3://{bucket}/{key}: S3 support is not compiled in (build hdf5-lite with feature `s3`)"
        ),
    ))
}

/// `%XX` decoding for `file://` paths; malformed escapes are kept as is.
/// The same decoder (`percent-encoding`) decodes S3 event keys in
/// `ofs_keys::message`, strictly there.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A parsed `Content-Range` header: `bytes a-b/total`, `bytes a-b/*` or
/// `bytes */total`.
#[cfg(any(feature = "http", feature = "s3", test))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    /// First and last byte (inclusive), if the response carries a range.
    pub range: Option<(u64, u64)>,
    /// Size of the whole object, if known.
    pub total: Option<u64>,
}

#[cfg(any(feature = "http", feature = "s3", test))]
pub(crate) fn parse_content_range(s: &str) -> Option<ContentRange> {
    let rest = s.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a {
                return None;
            }
            Some((a, b))
        }
    };
    if range.is_none() && total.is_none() {
        return None;
    }
    Some(ContentRange { range, total })
}

/// Run `attempt` until it succeeds, fails with anything but
/// [`SourceErrorKind::Transient`], or `max_attempts` is reached, sleeping
/// with jittered exponential backoff in between. Shared by the HTTP and S3
/// sources so both retry the same way.
#[cfg(any(feature = "http", feature = "s3"))]
pub(crate) async fn with_retries<F, Fut>(
    opts: &SourceOptions,
    what: &str,
    mut attempt: F,
) -> Result<Bytes, SourceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Bytes, SourceError>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Ok(b) => return Ok(b),
            Err(e) if e.kind != SourceErrorKind::Transient => return Err(e),
            Err(e) => {
                if n >= opts.max_attempts {
                    return Err(SourceError::new(
                        e.kind,
                        format!("{} (gave up after {n} attempts)", e.message),
                    ));
                }
                let delay = backoff(opts, n);
                tracing::debug!(what, attempt = n, ?delay, error = %e, "retrying range read");
                tokio::time::sleep(delay).await;
                n += 1;
            }
        }
    }
}

/// Records the version of the first response and checks every later one
/// against it: a different ETag means the object was replaced between two
/// range reads (a server that ignores `If-Match` cannot hide that).
#[cfg(any(feature = "http", feature = "s3"))]
#[derive(Debug, Default)]
pub(crate) struct VersionPin {
    seen: std::sync::Mutex<Option<SourceVersion>>,
}

#[cfg(any(feature = "http", feature = "s3"))]
impl VersionPin {
    /// Pinned to `etag` before the first read (an ETag from a listing or
    /// HEAD, so even the first range comes from that version).
    pub(crate) fn expecting(etag: Option<String>) -> Self {
        let pin = VersionPin::default();
        if let Some(etag) = etag.filter(|e| !e.is_empty())
            && let Ok(mut g) = pin.seen.lock()
        {
            *g = Some(SourceVersion {
                etag: Some(etag),
                ..SourceVersion::default()
            });
        }
        pin
    }

    /// The strong ETag to send as `If-Match` (weak ones cannot be).
    pub(crate) fn if_match(&self) -> Option<String> {
        let g = self.seen.lock().ok()?;
        g.as_ref()?.etag.clone().filter(|e| !e.starts_with("W/"))
    }

    pub(crate) fn get(&self) -> Option<SourceVersion> {
        self.seen.lock().ok()?.clone()
    }

    /// Checks a response's version against the pinned one, pinning it if
    /// there is none yet.
    pub(crate) fn check(
        &self,
        what: &str,
        etag: Option<&str>,
        last_modified: Option<String>,
        size: Option<u64>,
    ) -> Result<(), SourceError> {
        let Ok(mut g) = self.seen.lock() else {
            return Ok(());
        };
        match g.as_mut() {
            None => {
                *g = Some(SourceVersion {
                    etag: etag.map(str::to_string),
                    size,
                    last_modified,
                });
                Ok(())
            }
            Some(v) => {
                if let (Some(want), Some(got)) = (v.etag.as_deref(), etag)
                    && want != got
                {
                    return Err(SourceError::new(
                        SourceErrorKind::Changed,
                        format!("{what}: object changed while reading (ETag {want} became {got})"),
                    ));
                }
                if v.etag.is_none() {
                    v.etag = etag.map(str::to_string);
                }
                if v.size.is_none() {
                    v.size = size;
                }
                if v.last_modified.is_none() {
                    v.last_modified = last_modified;
                }
                Ok(())
            }
        }
    }
}

/// Delay before retry number `retry` (1 = first retry): exponential with
/// jitter, uniform in `[d/2, d]` for `d = min(base * 2^(retry-1), max)`.
#[cfg(any(feature = "http", feature = "s3"))]
pub(crate) fn backoff(opts: &SourceOptions, retry: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let factor = 1u32 << retry.saturating_sub(1).min(20);
    let d = opts
        .backoff_base
        .saturating_mul(factor)
        .min(opts.backoff_max);
    // RandomState is seeded per instance: good enough for jitter, no rand dep.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(0.5 + 0.5 * frac)
}

/// Fetch every range with at most `concurrency` in flight, keeping order.
#[cfg(any(feature = "http", feature = "s3"))]
pub(crate) async fn fetch_all<F, Fut>(
    ranges: &[Range<u64>],
    concurrency: usize,
    fetch: F,
) -> Result<Vec<Bytes>, SourceError>
where
    F: Fn(Range<u64>) -> Fut,
    Fut: Future<Output = Result<Bytes, SourceError>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(ranges.iter().cloned())
        .map(fetch)
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// `range` clipped to an object of `len` bytes.
#[cfg(any(feature = "http", feature = "s3"))]
pub(crate) fn clip(range: &Range<u64>, len: u64) -> Range<u64> {
    let start = range.start.min(len);
    start..range.end.min(len).max(start)
}

/// PEM text of the compiled-in webpki roots, for AWS SDK clients (S3 here,
/// SQS in ingest) in images without a CA bundle.
#[cfg(feature = "s3")]
pub fn webpki_roots_pem() -> String {
    use base64::Engine as _;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range("bytes 10-19/1024"),
            Some(ContentRange {
                range: Some((10, 19)),
                total: Some(1024)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-0/*"),
            Some(ContentRange {
                range: Some((0, 0)),
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */4096"),
            Some(ContentRange {
                range: None,
                total: Some(4096)
            })
        );
        assert_eq!(parse_content_range("bytes */*"), None);
        assert_eq!(parse_content_range("bytes 9-3/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/c%2"), "/a b/c%2");
        assert_eq!(percent_decode("/x%zz"), "/x%zz");
        assert_eq!(percent_decode("/%C3%A9%41"), "/éA");
        assert_eq!(percent_decode("/%FF"), "/\u{FFFD}");
    }

    #[tokio::test]
    async fn open_url_local_forms() {
        let dir = std::env::temp_dir().join(format!("hdf5-lite-open-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a b.bin");
        std::fs::write(&p, b"hello world").unwrap();
        let opts = SourceOptions::default();
        let plain = open_url(p.to_str().unwrap(), &opts).await.unwrap();
        assert_eq!(plain.size().await.unwrap(), 11);
        let url = format!("file://{}", p.to_str().unwrap().replace(' ', "%20"));
        let viaurl = open_url(&url, &opts).await.unwrap();
        let got = viaurl.get_ranges(&[6..11, 9..100, 50..60]).await.unwrap();
        assert_eq!(
            got,
            vec![
                Bytes::from_static(b"world"),
                Bytes::from_static(b"ld"),
                Bytes::new()
            ]
        );
        let missing = open_url("/nonexistent/x.h5", &opts).await.err().unwrap();
        assert!(missing.message.contains("/nonexistent/x.h5"), "{missing}");
        assert_eq!(missing.kind, SourceErrorKind::NotFound);
        let bad = open_url("gs://b/k", &opts).await.err().unwrap();
        assert!(bad.message.contains("gs://"), "{bad}");
        assert_eq!(bad.kind, SourceErrorKind::Rejected);
        let bad = open_url("s3://bucket-only", &opts).await.err().unwrap();
        assert!(bad.message.contains("s3://bucket/key"), "{bad}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
