//! Test wrappers around an object store or a range source that pass every
//! call on unchanged except the few a test intercepts (to count, hold or
//! fail them). Shared by `ingest/tests/steps_local.rs` and `synthetic.rs`.
//!
//! A store wrapper implements [`Intercept`] (`inner` and a check to run
//! before each call) and gets its `ObjectStore` from
//! [`intercepting_store!`]; a source wrapper is a [`Hooked`] with the check
//! to run before each read.

#![allow(dead_code)]

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use hdf5_lite::RangeSource;
use hdf5_lite::source::{BoxFuture, SourceError, SourceVersion};
use ingest::store::{ObjectInfo, ObjectStore, PutCondition, StoreError};

/// A call to a store, as a wrapper sees it before it is passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    Get(&'a str),
    Put(&'a str),
    List(&'a str),
    Head(&'a str),
}

/// What a store wrapper changes of the store it wraps: each call goes to
/// [`Intercept::inner`] unless [`Intercept::before`] fails it, and every
/// range source the store hands out (pinned or not) passes through
/// [`Intercept::source`]. A wrapper that must wait inside a call (not only
/// before it) overrides the call itself.
pub trait Intercept: fmt::Debug + Send + Sync {
    fn inner(&self) -> &Arc<dyn ObjectStore>;
    /// Runs before each call: an error is the call's result (and `inner`
    /// is not asked).
    fn before(&self, call: Call<'_>) -> Result<(), StoreError> {
        let _ = call;
        Ok(())
    }
    fn source(&self, source: Arc<dyn RangeSource>) -> Arc<dyn RangeSource> {
        source
    }
    /// Wraps each call passed on to `inner` (to time it, say).
    fn around<'a, T: Send + 'a>(&'a self, call: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
        call
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Bytes, String), StoreError>> {
        match self.before(Call::Get(key)) {
            Ok(()) => self.around(self.inner().get(key)),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        cond: PutCondition,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        match self.before(Call::Put(key)) {
            Ok(()) => self.around(self.inner().put(key, body, cond)),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectInfo>, StoreError>> {
        match self.before(Call::List(prefix)) {
            Ok(()) => self.around(self.inner().list(prefix)),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectInfo>, StoreError>> {
        match self.before(Call::Head(key)) {
            Ok(()) => self.around(self.inner().head(key)),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
}

/// `impl ObjectStore for $t` through its [`Intercept`] implementation (a
/// blanket impl of the foreign trait is not allowed; the structs must stay
/// themselves object stores).
macro_rules! intercepting_store {
    ($t:ty) => {
        impl ingest::store::ObjectStore for $t {
            fn url(&self) -> String {
                Intercept::inner(self).url()
            }
            fn bucket(&self) -> &str {
                Intercept::inner(self).bucket()
            }
            fn get<'a>(
                &'a self,
                key: &'a str,
            ) -> hdf5_lite::source::BoxFuture<
                'a,
                Result<(bytes::Bytes, String), ingest::store::StoreError>,
            > {
                Intercept::get(self, key)
            }
            fn put<'a>(
                &'a self,
                key: &'a str,
                body: bytes::Bytes,
                cond: ingest::store::PutCondition,
            ) -> hdf5_lite::source::BoxFuture<'a, Result<String, ingest::store::StoreError>> {
                Intercept::put(self, key, body, cond)
            }
            fn list<'a>(
                &'a self,
                prefix: &'a str,
            ) -> hdf5_lite::source::BoxFuture<
                'a,
                Result<Vec<ingest::store::ObjectInfo>, ingest::store::StoreError>,
            > {
                Intercept::list(self, prefix)
            }
            fn head<'a>(
                &'a self,
                key: &'a str,
            ) -> hdf5_lite::source::BoxFuture<
                'a,
                Result<Option<ingest::store::ObjectInfo>, ingest::store::StoreError>,
            > {
                Intercept::head(self, key)
            }
            fn content_etag(&self, body: &[u8]) -> Option<String> {
                Intercept::inner(self).content_etag(body)
            }
            fn range_source(
                &self,
                key: &str,
            ) -> Result<std::sync::Arc<dyn hdf5_lite::RangeSource>, ingest::store::StoreError> {
                Ok(Intercept::source(
                    self,
                    Intercept::inner(self).range_source(key)?,
                ))
            }
            fn range_source_pinned(
                &self,
                key: &str,
                etag: &str,
            ) -> Result<std::sync::Arc<dyn hdf5_lite::RangeSource>, ingest::store::StoreError> {
                let inner = Intercept::inner(self).range_source_pinned(key, etag)?;
                Ok(Intercept::source(self, inner))
            }
        }
    };
}

/// A range source that runs `before` ahead of each read: the error it
/// returns, if any, is the read's result (and `inner` is not asked).
pub struct Hooked<F> {
    pub inner: Arc<dyn RangeSource>,
    pub before: F,
}

/// `inner` behind a [`Hooked`] running `before`.
pub fn hooked<F>(inner: Arc<dyn RangeSource>, before: F) -> Arc<dyn RangeSource>
where
    F: Fn(&[Range<u64>]) -> Result<(), SourceError> + Send + Sync + 'static,
{
    Arc::new(Hooked { inner, before })
}

impl<F> RangeSource for Hooked<F>
where
    F: Fn(&[Range<u64>]) -> Result<(), SourceError> + Send + Sync,
{
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        match (self.before)(ranges) {
            Ok(()) => self.inner.get_ranges(ranges),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        self.inner.size()
    }
    fn version(&self) -> Option<SourceVersion> {
        self.inner.version()
    }
}
