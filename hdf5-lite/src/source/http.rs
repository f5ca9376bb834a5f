//! HTTP(S) range source: one `Range: bytes=a-b` GET per range, issued
//! concurrently, with bounded retries.
//!
//! - The object size comes from the `Content-Range` of the first response
//!   (no extra HEAD request).
//! - A server that ignores `Range` and answers `200` with the whole body is
//!   handled by slicing; that body is kept, so later ranges cost nothing.
//! - `416 Range Not Satisfiable` (a range past the end) yields empty bytes.
//! - 5xx, 408, 429, timeouts, connection errors and short bodies are retried
//!   with exponential backoff and jitter, up to `SourceOptions::max_attempts`.
//! - Version pinning: later ranges carry `If-Match` with the first
//!   response's strong ETag; a 412 or a different ETag is
//!   `SourceErrorKind::Changed` (the object was replaced mid-read).
//! - TLS is rustls with aws-lc-rs and the compiled-in webpki roots only, so a
//!   static binary needs no CA bundle on disk.

use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, IF_MATCH, LAST_MODIFIED, RANGE};

use super::{
    BoxFuture, RangeSource, SourceError, SourceErrorKind, SourceOptions, SourceVersion, VersionPin,
    clip, fetch_all, parse_content_range, with_retries,
};

/// A remote object read with HTTP range requests.
#[derive(Debug)]
pub struct HttpSource {
    url: String,
    client: reqwest::Client,
    opts: SourceOptions,
    size: OnceLock<u64>,
    /// The whole object, when the server answered a range request with 200.
    full: OnceLock<Bytes>,
    /// Later ranges are read with `If-Match` on the first response's ETag.
    pin: VersionPin,
}

impl HttpSource {
    /// A source with its own client built by [`HttpSource::client`].
    pub fn new(url: &str, opts: &SourceOptions) -> Result<Self, SourceError> {
        Ok(Self::with_client(url, Self::client(opts)?, opts))
    }

    /// A source sharing an existing client (connection pool).
    pub fn with_client(
        url: impl Into<String>,
        client: reqwest::Client,
        opts: &SourceOptions,
    ) -> Self {
        HttpSource {
            url: url.into(),
            client,
            opts: opts.clone(),
            size: OnceLock::new(),
            full: OnceLock::new(),
            pin: VersionPin::default(),
        }
    }

    /// Reads only the version with this ETag (see [`VersionPin`]).
    pub fn pinned_to(mut self, etag: Option<String>) -> Self {
        self.pin = VersionPin::expecting(etag);
        self
    }

    /// The client `new` uses: rustls with the webpki roots compiled in (no
    /// system CA bundle needed), connect timeout from `opts`, an idle pool
    /// as large as the concurrency, and no transparent decompression (which
    /// would break byte ranges).
    pub fn client(opts: &SourceOptions) -> Result<reqwest::Client, SourceError> {
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok());
        reqwest::Client::builder()
            .tls_certs_only(roots)
            .connect_timeout(opts.connect_timeout)
            .pool_max_idle_per_host(opts.concurrency.max(1))
            .build()
            .map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Rejected,
                    format!("cannot build HTTP client: {e}"),
                )
            })
    }

    /// The URL this source reads.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object size, if a response has told it yet.
    pub fn known_size(&self) -> Option<u64> {
        self.size.get().copied()
    }

    async fn fetch(&self, range: Range<u64>) -> Result<Bytes, SourceError> {
        if let Some(full) = self.full.get() {
            return Ok(full.slice(usize_range(&clip(&range, full.len() as u64))));
        }
        let range = match self.size.get() {
            Some(&n) => clip(&range, n),
            None => range,
        };
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        with_retries(&self.opts, &self.url, || self.attempt(&range)).await
    }

    async fn attempt(&self, r: &Range<u64>) -> Result<Bytes, SourceError> {
        let url = &self.url;
        let what = format!("GET bytes={}-{}", r.start, r.end - 1);
        let mut req = self
            .client
            .get(url)
            .header(RANGE, format!("bytes={}-{}", r.start, r.end - 1))
            .timeout(self.opts.request_timeout);
        if let Some(etag) = self.pin.if_match() {
            req = req.header(IF_MATCH, etag);
        }
        let resp = req.send().await.map_err(|e| transport(&what, e))?;
        let status = resp.status();
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let content_range = header(CONTENT_RANGE)
            .as_deref()
            .and_then(parse_content_range);
        if status.is_success() {
            let size = match status {
                StatusCode::OK => resp.content_length(),
                _ => content_range.and_then(|c| c.total),
            };
            self.pin
                .check(&what, header(ETAG).as_deref(), header(LAST_MODIFIED), size)?;
        }
        let fail = |kind, msg: String| Err(SourceError::new(kind, msg));
        match status {
            StatusCode::PARTIAL_CONTENT => {
                let Some(cr) = content_range else {
                    return fail(
                        SourceErrorKind::Malformed,
                        format!("{what}: HTTP {status} without a valid Content-Range"),
                    );
                };
                if let Some(total) = cr.total {
                    let _ = self.size.set(total);
                }
                let Some((first, last)) = cr.range else {
                    return fail(
                        SourceErrorKind::Malformed,
                        format!("{what}: HTTP {status} with Content-Range `*`"),
                    );
                };
                if first != r.start {
                    return fail(
                        SourceErrorKind::Malformed,
                        format!("{what}: HTTP {status} returned bytes {first}-{last} instead"),
                    );
                }
                let body = resp.bytes().await.map_err(|e| transport(&what, e))?;
                let want = (r.end.min(last + 1) - r.start) as usize;
                if body.len() < want {
                    return fail(
                        SourceErrorKind::Transient,
                        format!(
                            "{what}: HTTP {status}: short body, {} of {want} bytes",
                            body.len()
                        ),
                    );
                }
                Ok(body.slice(..want))
            }
            StatusCode::OK => {
                let declared = resp.content_length();
                let body = resp.bytes().await.map_err(|e| transport(&what, e))?;
                if declared.is_some_and(|n| (body.len() as u64) < n) {
                    return fail(
                        SourceErrorKind::Transient,
                        format!(
                            "{what}: HTTP {status}: short body, {} of {} bytes",
                            body.len(),
                            declared.unwrap_or_default()
                        ),
                    );
                }
                tracing::warn!(url = %url, size = body.len(), "server ignored Range; using the full body");
                let _ = self.size.set(body.len() as u64);
                let _ = self.full.set(body.clone());
                Ok(body.slice(usize_range(&clip(r, body.len() as u64))))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                if let Some(total) = content_range.and_then(|c| c.total) {
                    let _ = self.size.set(total);
                }
                Ok(Bytes::new())
            }
            s if s.is_server_error()
                || s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS =>
            {
                fail(SourceErrorKind::Transient, format!("{what}: HTTP {status}"))
            }
            StatusCode::PRECONDITION_FAILED => fail(
                SourceErrorKind::Changed,
                format!("{what}: HTTP {status}: object changed while reading"),
            ),
            StatusCode::NOT_FOUND | StatusCode::GONE => fail(
                SourceErrorKind::NotFound,
                format!("{what}: HTTP {status}: no such object"),
            ),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => fail(
                SourceErrorKind::Denied,
                format!("{what}: HTTP {status}: access denied"),
            ),
            _ => fail(SourceErrorKind::Rejected, format!("{what}: HTTP {status}")),
        }
    }
}

fn usize_range(r: &Range<u64>) -> Range<usize> {
    r.start as usize..r.end as usize
}

/// Transport errors (connect, timeout, reset, truncated body) are retried;
/// a request that cannot even be built is not.
fn transport(what: &str, e: reqwest::Error) -> SourceError {
    let kind = if e.is_builder() {
        SourceErrorKind::Rejected
    } else {
        SourceErrorKind::Transient
    };
    SourceError::new(kind, format!("{what}: {}", error_chain(&e)))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

impl RangeSource for HttpSource {
    fn name(&self) -> &str {
        &self.url
    }

    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        Box::pin(fetch_all(ranges, self.opts.concurrency, move |r| {
            self.fetch(r)
        }))
    }

    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        Box::pin(async move {
            if let Some(&n) = self.size.get() {
                return Ok(n);
            }
            self.fetch(0..1).await?;
            self.size.get().copied().ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::Malformed,
                    "the server did not report the object size",
                )
            })
        })
    }

    fn version(&self) -> Option<SourceVersion> {
        self.pin.get()
    }
}
