//! S3 range source: one ranged `GetObject` per range, issued concurrently.
//!
//! - Anonymous (unsigned) access when `SourceOptions::anonymous` asks for it
//!   or, by default, for the public NOAA buckets in [`PUBLIC_BUCKETS`];
//!   otherwise the standard AWS credential chain.
//! - Endpoint override from `SourceOptions::endpoint_url` or
//!   `AWS_ENDPOINT_URL(_S3)`; path-style addressing when an override is in
//!   effect (moto, MinIO) unless told otherwise. Region: options, then
//!   `AWS_REGION` / `AWS_DEFAULT_REGION`, then `us-east-1`.
//! - The SDK retries transient failures (standard mode, `max_attempts`); on
//!   top of that a body that breaks off or comes back short is re-requested.
//!   `InvalidRange` (416, a range past the end) yields empty bytes.
//! - The object size comes from the `Content-Range` of the first response.
//! - Version pinning: every range after the first (all of them with
//!   [`S3Source::pinned_to`]) carries `If-Match` with the ETag first seen;
//!   a 412, or a response with another ETag, is `SourceErrorKind::Changed`.
//!   Errors are classified by [`classify`] (missing bucket vs. missing key,
//!   denied, changed, transient, rejected).
//! - TLS: rustls + aws-lc-rs with the compiled-in webpki roots only.

use std::ops::Range;
use std::sync::OnceLock;

use aws_sdk_s3::config::{Region, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use bytes::Bytes;

use super::{
    BoxFuture, RangeSource, SourceError, SourceErrorKind, SourceOptions, SourceVersion, VersionPin,
    clip, fetch_all, parse_content_range, with_retries,
};

/// Buckets read without credentials unless `SourceOptions::anonymous` says
/// otherwise.
pub const PUBLIC_BUCKETS: &[&str] = &["noaa-ofs-pds", "noaa-nos-ofs-pds"];

/// An S3 object read with ranged `GetObject` requests.
#[derive(Debug, Clone)]
pub struct S3Source {
    name: String,
    bucket: String,
    key: String,
    client: aws_sdk_s3::Client,
    opts: SourceOptions,
    size: std::sync::Arc<OnceLock<u64>>,
    /// Every range after the first is read with `If-Match` on the first
    /// response's ETag (or the one given to [`S3Source::pinned_to`]).
    pin: std::sync::Arc<VersionPin>,
}

impl S3Source {
    /// A source with its own client built by [`S3Source::client`].
    pub async fn new(bucket: &str, key: &str, opts: &SourceOptions) -> Result<Self, SourceError> {
        let client = Self::client(bucket, opts).await?;
        Ok(Self::with_client(client, bucket, key, opts))
    }

    /// A source sharing an existing client.
    pub fn with_client(
        client: aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        opts: &SourceOptions,
    ) -> Self {
        S3Source {
            name: format!("s3://{bucket}/{key}"),
            bucket: bucket.to_string(),
            key: key.to_string(),
            client,
            opts: opts.clone(),
            size: Default::default(),
            pin: Default::default(),
        }
    }

    /// Reads only the version with this ETag (from a listing or HEAD):
    /// every range GET carries `If-Match`, and a 412 fails the read with
    /// [`SourceErrorKind::Changed`].
    pub fn pinned_to(mut self, etag: Option<String>) -> Self {
        self.pin = std::sync::Arc::new(VersionPin::expecting(etag));
        self
    }

    /// The client `new` uses for `bucket` (whose name decides anonymous
    /// access when `opts.anonymous` is `None`).
    pub async fn client(
        bucket: &str,
        opts: &SourceOptions,
    ) -> Result<aws_sdk_s3::Client, SourceError> {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        use aws_smithy_http_client::tls::{
            self, TlsContext, TrustStore, rustls_provider::CryptoMode,
        };

        let anonymous = opts
            .anonymous
            .unwrap_or_else(|| PUBLIC_BUCKETS.contains(&bucket));
        let region = opts
            .region
            .clone()
            .or_else(|| env_nonempty("AWS_REGION"))
            .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let trust = TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(super::webpki_roots_pem().into_bytes());
        let tls_context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Rejected,
                    format!("cannot build TLS context: {e}"),
                )
            })?;
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls_context)
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(region))
            .http_client(http_client)
            .retry_config(RetryConfig::standard().with_max_attempts(opts.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(opts.connect_timeout)
                    .operation_attempt_timeout(opts.request_timeout)
                    .build(),
            );
        if anonymous {
            loader = loader.no_credentials();
        }
        if let Some(ep) = &opts.endpoint_url {
            loader = loader.endpoint_url(ep);
        }
        let overridden = opts.endpoint_url.is_some()
            || env_nonempty("AWS_ENDPOINT_URL").is_some()
            || env_nonempty("AWS_ENDPOINT_URL_S3").is_some();
        let shared = loader.load().await;
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(opts.force_path_style.unwrap_or(overridden))
            // Ranged reads cannot be checked against whole-object checksums.
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(aws_sdk_s3::Client::from_conf(conf))
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    async fn fetch(&self, range: Range<u64>) -> Result<Bytes, SourceError> {
        let range = match self.size.get() {
            Some(&n) => clip(&range, n),
            None => range,
        };
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        with_retries(&self.opts, &self.name, || self.attempt(&range)).await
    }

    async fn attempt(&self, r: &Range<u64>) -> Result<Bytes, SourceError> {
        let what = format!("GetObject bytes={}-{}", r.start, r.end - 1);
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={}-{}", r.start, r.end - 1))
            .set_if_match(self.pin.if_match())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                if err.raw_response().map(|resp| resp.status().as_u16()) == Some(416) {
                    // Past the end; the error body does not carry the size.
                    return Ok(Bytes::new());
                }
                return Err(classify(&what, &self.bucket, &err));
            }
        };
        let total = out
            .content_range()
            .and_then(parse_content_range)
            .and_then(|c| c.total);
        self.pin.check(
            &what,
            out.e_tag(),
            out.last_modified().map(|t| t.to_string()),
            total,
        )?;
        let cr = out.content_range().and_then(parse_content_range);
        if let Some(total) = cr.and_then(|c| c.total) {
            let _ = self.size.set(total);
        }
        let declared = out.content_length().and_then(|n| u64::try_from(n).ok());
        let body = match out.body.collect().await {
            Ok(b) => b.into_bytes(),
            Err(e) => {
                return Err(SourceError::new(
                    SourceErrorKind::Transient,
                    format!("{what}: body: {}", DisplayErrorContext(&e)),
                ));
            }
        };
        let len = body.len() as u64;
        match cr.and_then(|c| c.range) {
            Some((first, last)) => {
                if first != r.start {
                    return Err(SourceError::new(
                        SourceErrorKind::Malformed,
                        format!("{what}: returned bytes {first}-{last} instead"),
                    ));
                }
                let want = r.end.min(last + 1) - r.start;
                if len < want {
                    return Err(SourceError::new(
                        SourceErrorKind::Transient,
                        format!("{what}: short body, {len} of {want} bytes"),
                    ));
                }
                Ok(body.slice(..want as usize))
            }
            None => {
                // No Content-Range: the whole object (as S3 answers ranges
                // it ignores).
                if declared.is_some_and(|n| len < n) {
                    return Err(SourceError::new(
                        SourceErrorKind::Transient,
                        format!(
                            "{what}: short body, {len} of {} bytes",
                            declared.unwrap_or_default()
                        ),
                    ));
                }
                let _ = self.size.set(len);
                let c = clip(r, len);
                Ok(body.slice(c.start as usize..c.end as usize))
            }
        }
    }
}

/// The kind of a failed S3 request, from its status and error code. Names
/// the bucket when it is the bucket that is missing.
pub fn classify<E>(
    what: &str,
    bucket: &str,
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use SourceErrorKind as K;
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (code, message) = match err {
        SdkError::ServiceError(se) => (
            se.err().code().unwrap_or(""),
            se.err().message().unwrap_or(""),
        ),
        _ => ("", ""),
    };
    let (kind, text) = match (status, code) {
        (_, "NoSuchBucket") => (K::NotFound, format!("no such bucket {bucket:?}")),
        (_, "NoSuchKey") | (Some(404), _) => (K::NotFound, "no such object".to_string()),
        (_, "PreconditionFailed") | (Some(412), _) => (
            K::Changed,
            "object changed while reading (If-Match failed)".to_string(),
        ),
        (_, "AccessDenied")
        | (_, "InvalidAccessKeyId")
        | (_, "SignatureDoesNotMatch")
        | (Some(401), _)
        | (Some(403), _) => (
            K::Denied,
            format!(
                "access denied ({})",
                if code.is_empty() { "HTTP 403" } else { code }
            ),
        ),
        (Some(s), _) if s == 408 || s == 429 || s >= 500 => {
            (K::Transient, format!("HTTP {s}: {code} {message}"))
        }
        (Some(s), _) => (K::Rejected, format!("HTTP {s}: {code} {message}")),
        (None, _) => match err {
            SdkError::ConstructionFailure(_) => (K::Rejected, DisplayErrorContext(err).to_string()),
            // Timeouts, connection failures, broken bodies, unparseable replies.
            _ => (K::Transient, DisplayErrorContext(err).to_string()),
        },
    };
    SourceError::new(kind, format!("{what}: {}", text.trim_end()))
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl RangeSource for S3Source {
    fn name(&self) -> &str {
        &self.name
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
            if let Some(&n) = self.size.get() {
                return Ok(n);
            }
            // An empty object answers every range with 416: ask for its length.
            let head = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .send()
                .await
                .map_err(|e| classify("HeadObject", &self.bucket, &e))?;
            let n = head
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| {
                    SourceError::new(
                        SourceErrorKind::Malformed,
                        "HeadObject: S3 did not report the object size",
                    )
                })?;
            let _ = self.size.set(n);
            Ok(n)
        })
    }

    fn version(&self) -> Option<SourceVersion> {
        self.pin.get()
    }
}
