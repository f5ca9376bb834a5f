//! The pipeline's [`Resolver`]: chunk-reference URLs to byte sources, for
//! the ranges aggregates read (coordinate chunks, small chunks to inline).

use std::sync::Arc;

use hdf5_lite::source::{BoxFuture, SourceErrorKind};
use hdf5_lite::{RangeSource, SourceError};
use kerchunk::combine::{Resolver, SourceCache};

use crate::config::Pipeline;

/// Opens only `s3://` URLs of configured source buckets
/// ([`Pipeline::source_store`] holds the allowlist), each once.
pub struct SourceResolver<'a> {
    p: &'a Pipeline,
    sources: SourceCache,
}

impl<'a> SourceResolver<'a> {
    pub fn new(p: &'a Pipeline) -> Self {
        SourceResolver {
            p,
            sources: SourceCache::default(),
        }
    }

    async fn open(&self, url: &str) -> Result<Arc<dyn RangeSource>, SourceError> {
        let Some((bucket, key)) = url.strip_prefix("s3://").and_then(|r| r.split_once('/')) else {
            return Err(SourceError::new(
                SourceErrorKind::Rejected,
                format!("{url}: not an s3:// reference"),
            ));
        };
        let in_context = |e| {
            let e = SourceError::from(e);
            SourceError::new(e.kind, format!("{url}: {}", e.message))
        };
        let store = self.p.source_store(bucket).await.map_err(in_context)?;
        store.range_source(key).map_err(in_context)
    }
}

impl Resolver for SourceResolver<'_> {
    fn resolve<'b>(
        &'b self,
        url: &'b str,
    ) -> BoxFuture<'b, Result<Arc<dyn RangeSource>, SourceError>> {
        Box::pin(self.sources.get_or_open(url, || self.open(url)))
    }
}
