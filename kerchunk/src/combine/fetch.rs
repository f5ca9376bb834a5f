//! The I/O of combining: reading the byte ranges the algorithm asks for
//! (remote coordinate chunks, small chunks to inline) through a [`Resolver`].
//! The algorithm itself ([`super::combine_with`]) never does I/O.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::join_all;
use hdf5_lite::RangeSource;
use hdf5_lite::SourceError;
use hdf5_lite::source::{BoxFuture, SourceErrorKind};

use super::{CombineError, CombineOptions, combine_with, coordinate_ranges};
use crate::refs::{Ref, RefSet};

/// URLs fetched from at once.
const CONCURRENT_URLS: usize = 32;

/// One byte range to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchRange {
    pub url: String,
    pub offset: u64,
    pub length: u64,
}

/// Bytes fetched for [`FetchRange`]s.
pub type Fetched = HashMap<FetchRange, Bytes>;

/// Resolves the URL of a chunk reference to the [`RangeSource`] holding
/// its bytes: the one seam between combining and I/O. The CLI's
/// [`UrlResolver`] opens any URL hdf5-lite can; the pipeline's resolver
/// opens objects of its allowlisted source buckets only. Errors are typed
/// ([`SourceError`]) so callers decide retries from the kind.
pub trait Resolver: Send + Sync {
    fn resolve<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn RangeSource>, SourceError>>;
}

/// URL to open [`RangeSource`], the one cache every [`Resolver`] uses (the
/// CLI's [`UrlResolver`], the pipeline's allowlisted one): a
/// source is opened on its first use and kept for the life of the cache.
#[derive(Default)]
pub struct SourceCache {
    sources: Mutex<HashMap<String, Arc<dyn RangeSource>>>,
}

impl SourceCache {
    /// Use `source` for `url` from now on.
    pub fn insert(&self, url: impl Into<String>, source: Arc<dyn RangeSource>) {
        if let Ok(mut m) = self.sources.lock() {
            m.insert(url.into(), source);
        }
    }

    /// The cached source for `url`.
    pub fn get(&self, url: &str) -> Option<Arc<dyn RangeSource>> {
        self.sources.lock().ok()?.get(url).cloned()
    }

    /// The cached source for `url`, or the one `open` returns (then
    /// cached). The lock is not held while opening, so opens of different
    /// URLs overlap; [`fetch_all`] asks once per URL.
    pub async fn get_or_open<E, Fut>(
        &self,
        url: &str,
        open: impl FnOnce() -> Fut,
    ) -> Result<Arc<dyn RangeSource>, E>
    where
        Fut: Future<Output = Result<Arc<dyn RangeSource>, E>>,
    {
        if let Some(s) = self.get(url) {
            return Ok(s);
        }
        let s = open().await?;
        self.insert(url, s.clone());
        Ok(s)
    }
}

/// A [`Resolver`] over `hdf5_lite::open_url` (local paths, `file://`, and
/// `http(s)://`/`s3://` when hdf5-lite is built with those features), one
/// source per URL, kept open for the life of the resolver.
#[derive(Default)]
pub struct UrlResolver {
    pub options: hdf5_lite::SourceOptions,
    sources: SourceCache,
}

impl UrlResolver {
    pub fn new(options: hdf5_lite::SourceOptions) -> Self {
        UrlResolver {
            options,
            sources: SourceCache::default(),
        }
    }

    /// Use `source` for `url` instead of opening it.
    pub fn insert(&self, url: impl Into<String>, source: Arc<dyn RangeSource>) {
        self.sources.insert(url, source);
    }
}

impl Resolver for UrlResolver {
    fn resolve<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn RangeSource>, SourceError>> {
        Box::pin(
            self.sources
                .get_or_open(url, || hdf5_lite::open_url(url, &self.options)),
        )
    }
}

/// Combine, fetching remote coordinate chunks (and inlining small remote
/// chunks) through `resolver`. One `get_ranges` call per URL, up to 32 at
/// once.
pub async fn combine_fetching(
    inputs: &[(String, RefSet)],
    opts: &CombineOptions,
    resolver: &dyn Resolver,
) -> Result<RefSet, CombineError> {
    let wanted = coordinate_ranges(inputs, opts)?;
    let fetched = fetch_all(resolver, wanted).await?;
    let mut out = combine_with(inputs, opts, &fetched)?;
    if out.inline_candidates.is_empty() {
        return Ok(out.refs);
    }
    let range_of = |r: Option<&Ref>| match r {
        Some(Ref::Range {
            url,
            offset,
            length,
        }) => Some(FetchRange {
            url: url.clone(),
            offset: *offset,
            length: *length,
        }),
        _ => None,
    };
    let wanted = out
        .inline_candidates
        .iter()
        .filter_map(|k| range_of(out.refs.get(k)))
        .collect();
    let small = fetch_all(resolver, wanted).await?;
    for k in std::mem::take(&mut out.inline_candidates) {
        if let Some(b) = range_of(out.refs.get(&k)).and_then(|fr| small.get(&fr)) {
            out.refs.insert(k, Ref::inline(b));
        }
    }
    Ok(out.refs)
}

/// Fetch every range (grouped per URL, sorted and de-duplicated, up to 32
/// URLs concurrently). The first failing URL in URL order is the error.
pub async fn fetch_all(
    resolver: &dyn Resolver,
    wanted: Vec<FetchRange>,
) -> Result<Fetched, CombineError> {
    let mut per_url: BTreeMap<String, Vec<Range<u64>>> = BTreeMap::new();
    for w in wanted {
        per_url
            .entry(w.url)
            .or_default()
            .push(w.offset..w.offset.saturating_add(w.length));
    }
    let jobs: Vec<(String, Vec<Range<u64>>)> = per_url
        .into_iter()
        .map(|(u, mut r)| {
            r.sort_by_key(|x| (x.start, x.end));
            r.dedup();
            (u, r)
        })
        .collect();
    let mut out = Fetched::new();
    // Batches rather than a sliding window (`buffered`): a stream adaptor
    // holding a closure over `resolver` makes the future lose `Send` (a
    // higher-ranked lifetime limitation of rustc), and callers spawn it.
    for batch in jobs.chunks(CONCURRENT_URLS) {
        let results = join_all(batch.iter().map(|(url, ranges)| async move {
            resolver.resolve(url).await?.get_ranges(ranges).await
        }))
        .await;
        for ((url, ranges), res) in batch.iter().zip(results) {
            store(&mut out, url, ranges, res)?;
        }
    }
    Ok(out)
}

/// Check one URL's results and file them under their ranges.
fn store(
    out: &mut Fetched,
    url: &str,
    ranges: &[Range<u64>],
    res: Result<Vec<Bytes>, SourceError>,
) -> Result<(), CombineError> {
    let fail = |error: SourceError| CombineError::Fetch {
        url: url.to_string(),
        error,
    };
    // A short answer is what a truncated body looks like: worth a retry.
    let short = |msg: String| fail(SourceError::new(SourceErrorKind::Transient, msg));
    let data = res.map_err(fail)?;
    if data.len() != ranges.len() {
        return Err(short(format!(
            "{} results for {} ranges",
            data.len(),
            ranges.len()
        )));
    }
    for (r, b) in ranges.iter().zip(data) {
        let want = r.end - r.start;
        if (b.len() as u64) < want {
            return Err(short(format!(
                "short read at {}: wanted {want} bytes, got {}",
                r.start,
                b.len()
            )));
        }
        out.insert(
            FetchRange {
                url: url.to_string(),
                offset: r.start,
                length: want,
            },
            b,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hdf5_lite::source::MemorySource;

    use super::*;

    fn mem(name: &str, data: &'static [u8]) -> Arc<dyn RangeSource> {
        Arc::new(MemorySource::new(name, data))
    }

    /// A source is opened once per URL and then served from the cache; a
    /// failed open is not cached (the next use tries again); `insert`
    /// replaces what is there.
    #[tokio::test]
    #[allow(clippy::single_range_in_vec_init)] // one byte range, not a Vec of 0..3
    async fn source_cache_opens_each_url_once() {
        let cache = SourceCache::default();
        let opens = AtomicUsize::new(0);
        let open = |data: &'static [u8]| {
            opens.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, String>(mem("m", data)) }
        };
        let a = cache.get_or_open("u://a", || open(b"aaa")).await.unwrap();
        let again = cache.get_or_open("u://a", || open(b"zzz")).await.unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(opens.load(Ordering::SeqCst), 1);
        let b = cache.get_or_open("u://b", || open(b"bbb")).await.unwrap();
        assert_eq!(opens.load(Ordering::SeqCst), 2);
        assert_eq!(
            b.get_ranges(&[0..3]).await.unwrap(),
            vec![Bytes::from_static(b"bbb")]
        );

        let failed = cache
            .get_or_open("u://c", || async { Err::<Arc<dyn RangeSource>, _>("down") })
            .await;
        assert_eq!(failed.err(), Some("down"));
        assert!(cache.get("u://c").is_none());
        cache.get_or_open("u://c", || open(b"ccc")).await.unwrap();
        assert_eq!(opens.load(Ordering::SeqCst), 3);

        cache.insert("u://a", mem("n", b"new"));
        let now = cache.get("u://a").unwrap();
        assert_eq!(
            now.get_ranges(&[0..3]).await.unwrap(),
            vec![Bytes::from_static(b"new")]
        );
    }
}
