//! Object stores the pipeline reads and writes: S3 (any S3-compatible
//! endpoint) and a local directory (tests, dry runs).
//!
//! A store is one bucket (or one directory standing in for a bucket); keys
//! are bucket keys (`nos/nos.dbofs.fields.f001.20230323.t12z.nc.zarr`).
//! Every key is checked by [`validate_key`] before it is written or turned
//! into a path, so a hostile message cannot make the pipeline write outside
//! its prefix or its directory.
//!
//! Store URLs: `s3://bucket[/prefix]`, `file:///dir[/...]`, or a plain path.
//! For a local store the whole path is the root and the directory's last
//! component is its "bucket" name (what S3 messages are matched against).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hdf5_lite::{RangeSource, SourceOptions};
use thiserror::Error;

pub use hdf5_lite::source::BoxFuture;

/// One listed or inspected object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectInfo {
    pub key: String,
    /// Opaque version tag; equal tags mean equal content.
    pub etag: String,
    pub size: u64,
    /// Last modification, milliseconds since the epoch, when known
    /// (orders versions of one key when no S3 event sequencer is at hand).
    pub modified_ms: Option<i64>,
}

/// Condition attached to a write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PutCondition {
    /// Overwrite whatever is there.
    #[default]
    None,
    /// Create only (`If-None-Match: *`).
    IfAbsent,
    /// Replace only this version (`If-Match: etag`).
    IfMatch(String),
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("{0}: no such object")]
    NotFound(String),
    #[error("{0}: precondition failed (the object changed or already exists)")]
    PreconditionFailed(String),
    #[error("key {key:?} is not a safe object key: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// Worth retrying (network, throttling, 5xx).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (no such bucket, access denied, bad URL).
    #[error("{0}")]
    Permanent(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

/// A store failure as a byte-source failure of the same kind, for the
/// [`crate::sources::SourceResolver`] (retries are decided from the kind).
impl From<StoreError> for hdf5_lite::SourceError {
    fn from(e: StoreError) -> Self {
        use hdf5_lite::source::SourceErrorKind as K;
        let kind = match &e {
            StoreError::NotFound(_) => K::NotFound,
            StoreError::PreconditionFailed(_) => K::Changed,
            StoreError::Transient(_) => K::Transient,
            StoreError::InvalidKey { .. } | StoreError::Permanent(_) => K::Rejected,
        };
        hdf5_lite::SourceError::new(kind, e.to_string())
    }
}

/// What the pipeline needs from a bucket.
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// `s3://bucket` or `file:///dir`, for logs and errors.
    fn url(&self) -> String;
    /// The bucket name messages refer to.
    fn bucket(&self) -> &str;
    /// Whole object and its etag.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Bytes, String), StoreError>>;
    /// Writes `body`; returns the new etag.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        cond: PutCondition,
    ) -> BoxFuture<'a, Result<String, StoreError>>;
    /// Every object whose key starts with `prefix`, sorted by key.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectInfo>, StoreError>>;
    /// `None` when the object does not exist.
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectInfo>, StoreError>>;
    /// The etag this store would give an object holding `body`, when that
    /// is a function of the content alone; `None` when it cannot be known
    /// (then a caller that skips writing unchanged objects writes them).
    fn content_etag(&self, body: &[u8]) -> Option<String> {
        let _ = body;
        None
    }
    /// Byte-range reader for one object (never downloads it whole).
    fn range_source(&self, key: &str) -> Result<Arc<dyn RangeSource>, StoreError>;
    /// Byte-range reader for one version of an object (the `etag` a HEAD
    /// or listing returned): every range GET carries `If-Match`, so a
    /// replaced object fails the read with `SourceErrorKind::Changed`
    /// instead of mixing bytes of two versions. Stores that cannot pin
    /// (a local directory) read the current file; callers compare the
    /// object's etag again after reading.
    fn range_source_pinned(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<Arc<dyn RangeSource>, StoreError> {
        let _ = etag;
        self.range_source(key)
    }
}

/// Rejects keys that could escape a prefix or a directory: empty, absolute,
/// `..`/`.`/empty segments, backslashes, control characters, > 1024 bytes
/// ([`crate::key::check_object_key`]).
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    crate::key::check_object_key(key).map_err(|reason| StoreError::InvalidKey {
        key: crate::key::clip(key),
        reason,
    })
}

/// A prefix (may be empty) without its trailing `/`
/// ([`crate::key::check_prefix`]).
pub fn validate_prefix(prefix: &str) -> Result<String, StoreError> {
    crate::key::check_prefix(prefix)
        .map(str::to_owned)
        .map_err(|reason| StoreError::InvalidKey {
            key: crate::key::clip(prefix),
            reason,
        })
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    S3 { bucket: String, prefix: String },
    Local { dir: PathBuf },
}

impl StoreUrl {
    /// `s3://bucket[/prefix]`, `file:///dir`, or a path.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !is_bucket_name(bucket) {
                return Err(StoreError::Permanent(format!(
                    "{url}: {bucket:?} is not a valid bucket name"
                )));
            }
            return Ok(StoreUrl::S3 {
                bucket: bucket.to_string(),
                prefix: validate_prefix(prefix)?,
            });
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => p.strip_prefix("localhost").unwrap_or(p),
            None if url.contains("://") => {
                return Err(StoreError::Permanent(format!(
                    "{url}: unsupported store URL (use s3://bucket/prefix or file:///dir)"
                )));
            }
            None => url,
        };
        if path.is_empty() {
            return Err(StoreError::Permanent(format!("{url}: empty path")));
        }
        Ok(StoreUrl::Local {
            dir: PathBuf::from(path),
        })
    }

    /// The key prefix the URL names (always empty for a directory).
    pub fn prefix(&self) -> &str {
        match self {
            StoreUrl::S3 { prefix, .. } => prefix,
            StoreUrl::Local { .. } => "",
        }
    }
}

/// S3 bucket naming rules (3-63 of `[a-z0-9.-]`, alphanumeric at both ends).
pub fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Opens the store a URL names.
pub async fn open(
    url: &StoreUrl,
    opts: &SourceOptions,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    match url {
        StoreUrl::S3 { bucket, .. } => Ok(Arc::new(S3Store::new(bucket, opts).await?)),
        StoreUrl::Local { dir } => Ok(Arc::new(LocalStore::new(dir)?)),
    }
}

// ---------------------------------------------------------------------------
// Local directory
// ---------------------------------------------------------------------------

/// A directory standing in for a bucket. Writes go to a temporary file and
/// are renamed into place, so readers never see a partial object.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    name: String,
    /// Serialises conditional writes (check + rename) within this process.
    lock: tokio::sync::Mutex<()>,
}

impl LocalStore {
    pub fn new(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("local")
            .to_string();
        Ok(LocalStore {
            root,
            name,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

/// An FNV-1a-style 64-bit hash of the content, eight bytes per step, plus
/// its length: stable across processes, so etags compare like S3's (equal
/// content, equal tag). Word-wise because every read and conditional write
/// of the local store hashes the whole object (a best series is megabytes;
/// byte-wise FNV made the hash most of an update's cost on this store).
pub fn content_etag(data: &[u8]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(PRIME);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    format!("{h:016x}-{}", data.len())
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Permanent(format!("{what} {}: {e}", path.display()))
}

impl ObjectStore for LocalStore {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn bucket(&self) -> &str {
        &self.name
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Bytes, String), StoreError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            match tokio::fs::read(&path).await {
                Ok(b) => {
                    let etag = content_etag(&b);
                    Ok((Bytes::from(b), etag))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(StoreError::NotFound(format!("{}/{key}", self.url())))
                }
                Err(e) => Err(io_err("cannot read", &path, e)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        cond: PutCondition,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| io_err("cannot create", parent, e))?;
            }
            let etag = content_etag(&body);
            let tmp = path.with_file_name(format!(
                ".tmp-{}-{}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            tokio::fs::write(&tmp, &body)
                .await
                .map_err(|e| io_err("cannot write", &tmp, e))?;
            let _guard = self.lock.lock().await;
            let _file_lock = match FileLock::acquire(&path).await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(e);
                }
            };
            // Only `If-Match` needs the current content's etag; the other
            // conditions only whether there is an object.
            let current = match &cond {
                PutCondition::IfMatch(_) => tokio::fs::read(&path).await.map(|b| content_etag(&b)),
                _ => tokio::fs::metadata(&path).await.map(|_| String::new()),
            };
            let current = match current {
                Ok(etag) => Some(etag),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(io_err("cannot read", &path, e));
                }
            };
            let ok = match (&cond, &current) {
                (PutCondition::None, _) => true,
                (PutCondition::IfAbsent, cur) => cur.is_none(),
                (PutCondition::IfMatch(want), Some(cur)) => want == cur,
                (PutCondition::IfMatch(_), None) => false,
            };
            if !ok {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(StoreError::PreconditionFailed(format!(
                    "{}/{key}",
                    self.url()
                )));
            }
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| io_err("cannot rename into", &path, e))?;
            Ok(etag)
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectInfo>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut stack = vec![(self.root.clone(), String::new())];
            while let Some((dir, rel)) = stack.pop() {
                let mut rd = match tokio::fs::read_dir(&dir).await {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err("cannot list", &dir, e)),
                };
                while let Some(entry) = rd
                    .next_entry()
                    .await
                    .map_err(|e| io_err("cannot list", &dir, e))?
                {
                    let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    if name.starts_with(".tmp-") || name.starts_with(".lock-") {
                        continue;
                    }
                    let key = if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    };
                    let ft = entry
                        .file_type()
                        .await
                        .map_err(|e| io_err("cannot stat", &entry.path(), e))?;
                    if ft.is_dir() {
                        // Descend only where the prefix can still match.
                        let k = format!("{key}/");
                        if k.starts_with(prefix) || prefix.starts_with(&k) {
                            stack.push((entry.path(), key));
                        }
                    } else if ft.is_file() && key.starts_with(prefix) {
                        let data = tokio::fs::read(entry.path())
                            .await
                            .map_err(|e| io_err("cannot read", &entry.path(), e))?;
                        let modified_ms = mtime_ms(&entry.path()).await;
                        out.push(ObjectInfo {
                            etag: content_etag(&data),
                            size: data.len() as u64,
                            modified_ms,
                            key,
                        });
                    }
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectInfo>, StoreError>> {
        Box::pin(async move {
            match self.get(key).await {
                Ok((b, etag)) => Ok(Some(ObjectInfo {
                    key: key.to_string(),
                    etag,
                    size: b.len() as u64,
                    modified_ms: mtime_ms(&self.path(key)?).await,
                })),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn content_etag(&self, body: &[u8]) -> Option<String> {
        Some(content_etag(body))
    }

    fn range_source(&self, key: &str) -> Result<Arc<dyn RangeSource>, StoreError> {
        Ok(Arc::new(hdf5_lite::FileSource::new(self.path(key)?)))
    }
}

async fn mtime_ms(path: &Path) -> Option<i64> {
    let t = tokio::fs::metadata(path).await.ok()?.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// A lock file beside `path` (`.lock-<name>`), created exclusively, so the
/// check-then-rename of a conditional write is atomic across processes
/// too. A lock older than [`STALE_LOCK`] is the leftover of a killed
/// writer and is broken.
struct FileLock {
    path: PathBuf,
}

const STALE_LOCK: std::time::Duration = std::time::Duration::from_secs(30);

impl FileLock {
    async fn acquire(target: &Path) -> Result<FileLock, StoreError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = target.with_file_name(format!(".lock-{name}"));
        let deadline = std::time::Instant::now() + 2 * STALE_LOCK;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(FileLock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(StoreError::Transient(format!(
                            "{}: lock held too long",
                            path.display()
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(e) => return Err(io_err("cannot lock", &path, e)),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// ---------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------

/// One S3 bucket. The client is hdf5-lite's ([`hdf5_lite::source::s3::S3Source::client`]):
/// anonymous for the public NOAA buckets unless told otherwise, the
/// standard credential chain otherwise, `AWS_ENDPOINT_URL` or
/// `SourceOptions::endpoint_url` with path-style addressing for
/// S3-compatible servers, SDK retries (standard mode).
///
/// With `--anonymous auto`, a public NOAA bucket name is read unsigned; if
/// that is denied (a private mirror or an S3-compatible server using the
/// same names) and credentials are available, the store switches to signed
/// requests once and retries.
#[derive(Debug, Clone)]
pub struct S3Store {
    bucket: String,
    client: Arc<std::sync::RwLock<aws_sdk_s3::Client>>,
    opts: SourceOptions,
    /// Unsigned only because the bucket name is a known public one.
    auto_anonymous: bool,
    /// The switch to signed requests was tried.
    tried_signed: Arc<std::sync::atomic::AtomicBool>,
}

impl S3Store {
    pub async fn new(bucket: &str, opts: &SourceOptions) -> Result<Self, StoreError> {
        let client = hdf5_lite::source::s3::S3Source::client(bucket, opts)
            .await
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        Ok(S3Store {
            bucket: bucket.to_string(),
            client: Arc::new(std::sync::RwLock::new(client)),
            opts: opts.clone(),
            auto_anonymous: opts.anonymous.is_none()
                && hdf5_lite::source::s3::PUBLIC_BUCKETS.contains(&bucket),
            tried_signed: Default::default(),
        })
    }

    /// The client in use (unsigned or, after a denial, signed).
    pub fn client(&self) -> aws_sdk_s3::Client {
        match self.client.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// After an unsigned request was denied: switch to signed requests if
    /// this store chose unsigned on its own and credentials are available.
    /// True when the caller should retry (once per store).
    async fn sign_after_denial(&self) -> bool {
        use aws_sdk_s3::config::ProvideCredentials as _;
        use std::sync::atomic::Ordering;
        if !self.auto_anonymous || self.tried_signed.swap(true, Ordering::SeqCst) {
            return false;
        }
        let opts = SourceOptions {
            anonymous: Some(false),
            ..self.opts.clone()
        };
        let Ok(signed) = hdf5_lite::source::s3::S3Source::client(&self.bucket, &opts).await else {
            return false;
        };
        // The standard chain, as the signed client resolves it.
        let chain = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let has_credentials = match chain.credentials_provider() {
            Some(p) => p.provide_credentials().await.is_ok(),
            None => false,
        };
        if has_credentials {
            tracing::info!(bucket = %self.bucket, "unsigned access denied: retrying with credentials");
            if let Ok(mut c) = self.client.write() {
                *c = signed;
            }
        }
        has_credentials
    }
}

/// Maps an SDK error to a [`StoreError`] by HTTP status / error code.
fn s3_error<E>(
    what: String,
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
    let status = err.raw_response().map(|r| r.status().as_u16());
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            match (status, code) {
                // Before the 404 rule: a missing bucket is not a missing object.
                (_, "NoSuchBucket") => StoreError::Permanent(format!("{what}: no such bucket")),
                (Some(404), _) | (_, "NoSuchKey") | (_, "NotFound") => StoreError::NotFound(what),
                (Some(412), _) | (_, "PreconditionFailed") => StoreError::PreconditionFailed(what),
                (_, "AccessDenied") | (_, "InvalidAccessKeyId") | (Some(403), _) => {
                    StoreError::Permanent(format!("{what}: access denied ({code})"))
                }
                (Some(s), _) if s == 409 || s == 408 || s == 429 || s >= 500 => {
                    StoreError::Transient(format!("{what}: HTTP {s}: {code}"))
                }
                (Some(s), _) => StoreError::Permanent(format!("{what}: HTTP {s}: {code}")),
                (None, _) => StoreError::Transient(format!("{what}: {detail}")),
            }
        }
        SdkError::ConstructionFailure(_) => StoreError::Permanent(format!("{what}: {detail}")),
        // Timeouts, connection failures, broken bodies, unparseable replies.
        _ => StoreError::Transient(format!("{what}: {detail}")),
    }
}

impl ObjectStore for S3Store {
    fn url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Bytes, String), StoreError>> {
        Box::pin(async move {
            validate_key(key)?;
            let what = format!("GetObject s3://{}/{key}", self.bucket);
            let out = self
                .client()
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| s3_error(what.clone(), e))?;
            let etag = out.e_tag().unwrap_or_default().to_string();
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| StoreError::Transient(format!("{what}: body: {e}")))?
                .into_bytes();
            Ok((body, etag))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        cond: PutCondition,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(async move {
            validate_key(key)?;
            let what = format!("PutObject s3://{}/{key}", self.bucket);
            let mut req = self
                .client()
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type("application/json")
                .body(aws_sdk_s3::primitives::ByteStream::from(body));
            req = match cond {
                PutCondition::None => req,
                PutCondition::IfAbsent => req.if_none_match("*"),
                PutCondition::IfMatch(etag) => req.if_match(etag),
            };
            let out = req.send().await.map_err(|e| s3_error(what, e))?;
            Ok(out.e_tag().unwrap_or_default().to_string())
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectInfo>, StoreError>> {
        Box::pin(async move {
            let what = format!("ListObjectsV2 s3://{}/{prefix}", self.bucket);
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut req = self
                    .client()
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix);
                if let Some(t) = &token {
                    req = req.continuation_token(t);
                }
                let page = req.send().await.map_err(|e| s3_error(what.clone(), e))?;
                for o in page.contents() {
                    let Some(key) = o.key() else { continue };
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        etag: o.e_tag().unwrap_or_default().to_string(),
                        size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                        modified_ms: o.last_modified().and_then(|t| t.to_millis().ok()),
                    });
                }
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                    _ => break,
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectInfo>, StoreError>> {
        Box::pin(async move {
            validate_key(key)?;
            let what = format!("HeadObject s3://{}/{key}", self.bucket);
            loop {
                let client = self.client();
                let e = match client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                {
                    Ok(o) => {
                        return Ok(Some(ObjectInfo {
                            key: key.to_string(),
                            etag: o.e_tag().unwrap_or_default().to_string(),
                            size: o
                                .content_length()
                                .and_then(|s| u64::try_from(s).ok())
                                .unwrap_or(0),
                            modified_ms: o.last_modified().and_then(|t| t.to_millis().ok()),
                        }));
                    }
                    Err(e) => e,
                };
                let status = e.raw_response().map(|r| r.status().as_u16());
                if status == Some(403) && self.sign_after_denial().await {
                    continue;
                }
                return match s3_error(what.clone(), e) {
                    StoreError::NotFound(_) => {
                        // HEAD answers carry no error code: a missing bucket
                        // looks like a missing object. Ask (only on this
                        // path) so it is reported as what it is.
                        match client.head_bucket().bucket(&self.bucket).send().await {
                            Err(e)
                                if e.raw_response().map(|r| r.status().as_u16()) == Some(404) =>
                            {
                                Err(StoreError::Permanent(format!("{what}: no such bucket")))
                            }
                            _ => Ok(None),
                        }
                    }
                    other => Err(other),
                };
            }
        })
    }

    /// S3's ETag of a single-part upload is the quoted hex MD5 of the body.
    /// Multipart uploads (which we do not make) and SSE-KMS objects get
    /// other tags: they never match, and the object is simply written.
    fn content_etag(&self, body: &[u8]) -> Option<String> {
        Some(format!("\"{}\"", crate::dead_letter::md5_hex(body)))
    }

    fn range_source(&self, key: &str) -> Result<Arc<dyn RangeSource>, StoreError> {
        validate_key(key)?;
        Ok(Arc::new(hdf5_lite::source::s3::S3Source::with_client(
            self.client(),
            &self.bucket,
            key,
            &self.opts,
        )))
    }

    fn range_source_pinned(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<Arc<dyn RangeSource>, StoreError> {
        validate_key(key)?;
        Ok(Arc::new(
            hdf5_lite::source::s3::S3Source::with_client(
                self.client(),
                &self.bucket,
                key,
                &self.opts,
            )
            .pinned_to(Some(etag.to_string())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "nos/x.zarr", "a/b/c.nc", "a b+c"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/abs", "a/../b", "..", "a/./b", "a//b", "a\\b", "a/", "x\n", "./a",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            StoreUrl::parse("s3://nextgen-dmac/nos").ok(),
            Some(StoreUrl::S3 {
                bucket: "nextgen-dmac".into(),
                prefix: "nos".into()
            })
        );
        assert_eq!(
            StoreUrl::parse("file:///tmp/x").ok(),
            Some(StoreUrl::Local {
                dir: PathBuf::from("/tmp/x")
            })
        );
        assert!(StoreUrl::parse("s3://Bad_Bucket/x").is_err());
        assert!(StoreUrl::parse("s3://b-b/../x").is_err());
        // A prefix is refused, not repaired; one trailing `/` is fine.
        assert!(StoreUrl::parse("s3://b-b//x").is_err());
        assert_eq!(
            StoreUrl::parse("s3://b-b/x/")
                .ok()
                .map(|u| u.prefix().to_owned()),
            Some("x".into())
        );
        assert!(StoreUrl::parse("gs://b/x").is_err());
    }

    #[tokio::test]
    async fn local_roundtrip_and_conditions() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path().join("bucket")).unwrap();
        assert_eq!(s.bucket(), "bucket");
        let e1 = s
            .put("p/a.json", Bytes::from_static(b"1"), PutCondition::IfAbsent)
            .await
            .unwrap();
        assert!(matches!(
            s.put("p/a.json", Bytes::from_static(b"2"), PutCondition::IfAbsent)
                .await,
            Err(StoreError::PreconditionFailed(_))
        ));
        assert!(matches!(
            s.put(
                "p/a.json",
                Bytes::from_static(b"2"),
                PutCondition::IfMatch("nope".into())
            )
            .await,
            Err(StoreError::PreconditionFailed(_))
        ));
        s.put(
            "p/a.json",
            Bytes::from_static(b"2"),
            PutCondition::IfMatch(e1),
        )
        .await
        .unwrap();
        s.put("q/b.json", Bytes::from_static(b"3"), PutCondition::None)
            .await
            .unwrap();
        let (b, _) = s.get("p/a.json").await.unwrap();
        assert_eq!(&b[..], b"2");
        let l = s.list("p/").await.unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].key, "p/a.json");
        assert_eq!(s.list("").await.unwrap().len(), 2);
        assert!(s.head("p/zz").await.unwrap().is_none());
        assert!(matches!(s.get("p/zz").await, Err(StoreError::NotFound(_))));
        assert!(
            s.put("../x", Bytes::new(), PutCondition::None)
                .await
                .is_err()
        );
    }
}
