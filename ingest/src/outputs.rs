//! Output formats of the aggregates (`--output-format json,parquet,icechunk`).
//!
//! JSON keeps the original key names (`{key}`, written by the update step
//! itself). Parquet is kerchunk's Parquet reference format
//! ([`kerchunk::parquet`]) beside it, under the prefix `{key}.parq/`:
//! `{key}.parq/.zmetadata` and `{key}.parq/{var}/refs.{i}.parq`, which
//! `fsspec.filesystem("reference", fo="s3://bucket/{key}.parq")` opens lazily.
//!
//! A Parquet set is several objects, so it cannot be replaced atomically: the
//! record files are written first and `.zmetadata` last, so a reader never
//! sees a `.zmetadata` whose record files do not exist yet; every record file
//! `.zmetadata` implies is written each time unless the store already holds
//! exactly its bytes (no older one survives; an update rewrites the files of
//! the arrays it grew, not the static ones). Two
//! updates racing on one aggregate converge like the JSON output: the update
//! step rebuilds when the member set changed while it wrote, and outputs are
//! a deterministic function of the member set.
//!
//! Icechunk: one repository per model, one group per aggregate, one commit
//! per write (`crate::icechunk_out`, behind the `icechunk` cargo feature).

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::StreamExt as _;
use kerchunk::RefSet;
use kerchunk::parquet::{self, ParquetError};

use crate::config::Pipeline;
use crate::store::{ObjectStore, PutCondition, StoreError};
use tracing::debug;

/// One output format of an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutputFormat {
    Json,
    Parquet,
    /// `{root}/{model}` Icechunk repositories (`crate::icechunk_out`).
    Icechunk,
}

impl OutputFormat {
    /// `json`, `parquet` (comma-separated, repeatable, case-insensitive);
    /// duplicates dropped, order kept; nothing given means `json`.
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<OutputFormat>, String> {
        let mut out = Vec::new();
        for item in items {
            for name in item.as_ref().split(',').map(str::trim) {
                let f = match name.to_ascii_lowercase().as_str() {
                    "" => continue,
                    "json" => OutputFormat::Json,
                    "parquet" | "parq" => OutputFormat::Parquet,
                    "icechunk" if cfg!(feature = "icechunk") => OutputFormat::Icechunk,
                    "icechunk" => {
                        return Err(
                            "output format icechunk: this binary was built without the icechunk feature"
                                .into(),
                        );
                    }
                    other => {
                        return Err(format!(
                            "unknown output format {other:?} (json, parquet, icechunk)"
                        ));
                    }
                };
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        if out.is_empty() {
            out.push(OutputFormat::Json);
        }
        Ok(out)
    }
}

/// The prefix of the Parquet form of the aggregate `key`.
pub fn parquet_prefix(key: &str) -> String {
    format!("{key}.parq")
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: {error}")]
    Parquet { key: String, error: ParquetError },
    /// Writing the Icechunk form failed; `transient`: commits kept losing
    /// to concurrent writers (exit 3), otherwise permanent (exit 1).
    #[error("icechunk {key}: {message}")]
    Icechunk {
        key: String,
        message: String,
        transient: bool,
    },
}

impl From<OutputError> for crate::steps::StepError {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::Store(e) => e.into(),
            e @ OutputError::Parquet { .. } => crate::steps::StepError::Permanent(e.to_string()),
            OutputError::Icechunk {
                transient: true, ..
            } => crate::steps::StepError::Transient(e.to_string()),
            e @ OutputError::Icechunk { .. } => crate::steps::StepError::Permanent(e.to_string()),
        }
    }
}

/// Writes the configured formats of `refs` other than JSON (which the update
/// step writes itself at `key`, the anchor, now at `etag`); returns the URLs
/// written. `io_concurrency` objects are put at once.
pub async fn write_formats(
    p: &Pipeline,
    store: &dyn ObjectStore,
    key: &str,
    refs: &RefSet,
    etag: &str,
) -> Result<Vec<String>, OutputError> {
    let concurrency = p.config.io_concurrency;
    let mut written = Vec::new();
    for f in &p.config.output_formats {
        match f {
            OutputFormat::Json => {}
            #[cfg(feature = "icechunk")]
            OutputFormat::Icechunk => {
                if let crate::icechunk_out::Written::Committed { url, .. } =
                    crate::icechunk_out::write(p, store, key, refs, etag).await?
                {
                    written.push(url);
                }
            }
            #[cfg(not(feature = "icechunk"))]
            OutputFormat::Icechunk => {
                let _ = etag;
                return Err(OutputError::Icechunk {
                    key: key.to_string(),
                    message: "this binary was built without the icechunk feature".into(),
                    transient: false,
                });
            }
            OutputFormat::Parquet => {
                let prefix = parquet_prefix(key);
                write_parquet(store, &prefix, refs, concurrency).await?;
                let url = format!("{}/{prefix}", store.url());
                tracing::info!(output = %url, "parquet references written");
                written.push(url);
            }
        }
    }
    Ok(written)
}

/// Writes the Parquet form of `refs` under `prefix`, skipping objects that
/// already hold exactly the bytes they would be given (the record files of
/// arrays the update did not touch: the static grid, coordinates and
/// parameters, about half of an OFS aggregate's files): one LIST of the
/// prefix, and a PUT only where the store's content tag of the new bytes
/// ([`ObjectStore::content_etag`]) differs from the listed one. A store
/// whose tags are not content hashes, or a LIST that fails, writes
/// everything, as before. Skipping a PUT of identical bytes leaves the set
/// as writing them would, also under racing writers.
async fn write_parquet(
    store: &dyn ObjectStore,
    prefix: &str,
    refs: &RefSet,
    concurrency: usize,
) -> Result<(), OutputError> {
    let mut files =
        parquet::to_parquet_files(refs, parquet::DEFAULT_RECORD_SIZE, &[]).map_err(|error| {
            OutputError::Parquet {
                key: prefix.to_string(),
                error,
            }
        })?;
    // `.zmetadata` is last in the list; it goes out after every record file.
    let Some(meta) = files.pop() else {
        return Ok(());
    };
    let listed: HashMap<String, String> = match store.list(&format!("{prefix}/")).await {
        Ok(objects) => objects.into_iter().map(|o| (o.key, o.etag)).collect(),
        Err(error) => {
            debug!(prefix, %error, "parquet objects not listed; writing all");
            HashMap::new()
        }
    };
    let stored = |key: &str, bytes: &[u8]| {
        listed
            .get(key)
            .is_some_and(|tag| store.content_etag(bytes).as_ref() == Some(tag))
    };
    let mut skipped = 0usize;
    let mut puts = Vec::with_capacity(files.len());
    for f in files {
        let key = format!("{prefix}/{}", f.path);
        if stored(&key, &f.bytes) {
            skipped += 1;
        } else {
            puts.push((key, Bytes::from(f.bytes)));
        }
    }
    let mut written = puts.len();
    let puts = puts
        .into_iter()
        .map(|(key, body)| async move { store.put(&key, body, PutCondition::None).await });
    let mut results = futures_util::stream::iter(puts).buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    let key = format!("{prefix}/{}", meta.path);
    if stored(&key, &meta.bytes) {
        skipped += 1;
    } else {
        store
            .put(&key, Bytes::from(meta.bytes), PutCondition::None)
            .await?;
        written += 1;
    }
    debug!(prefix, written, skipped, "parquet objects");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_format_lists() {
        assert_eq!(
            OutputFormat::parse_list::<&str>(&[]),
            Ok(vec![OutputFormat::Json])
        );
        assert_eq!(
            OutputFormat::parse_list(&["parquet,JSON", "json"]),
            Ok(vec![OutputFormat::Parquet, OutputFormat::Json])
        );
        assert_eq!(
            OutputFormat::parse_list(&["json,icechunk"]).is_ok(),
            cfg!(feature = "icechunk")
        );
        assert!(OutputFormat::parse_list(&["zarr"]).is_err());
        assert_eq!(parquet_prefix("nos/a.zarr"), "nos/a.zarr.parq");
    }

    #[tokio::test]
    async fn parquet_beside_the_json_key() {
        use kerchunk::Ref;
        let dir = tempfile::tempdir().expect("tmp");
        let store = crate::store::LocalStore::new(dir.path()).expect("store");
        let mut refs = RefSet::new();
        refs.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        refs.insert(
            "t/.zarray",
            Ref::Text(r#"{"chunks":[1],"shape":[3]}"#.into()),
        );
        refs.insert("t/0", Ref::Url("s3://b/k.nc".into()));
        let with = |formats: &[OutputFormat]| {
            Pipeline::new(crate::config::Config {
                output_formats: formats.to_vec(),
                io_concurrency: 2,
                ..Default::default()
            })
        };
        // JSON only: nothing besides the JSON (written by the caller)
        let none = write_formats(
            &with(&[OutputFormat::Json]),
            &store,
            "nos/a.zarr",
            &refs,
            "e",
        )
        .await
        .expect("json only");
        assert!(none.is_empty());
        assert!(store.list("nos/").await.expect("list").is_empty());
        let urls = write_formats(
            &with(&[OutputFormat::Json, OutputFormat::Parquet]),
            &store,
            "nos/a.zarr",
            &refs,
            "e",
        )
        .await
        .expect("parquet");
        assert_eq!(urls.len(), 1);
        assert!(urls[0].ends_with("/nos/a.zarr.parq"), "{urls:?}");
        holds(&store, "nos/a.zarr.parq", &refs).await;
        // an unrepresentable set is an error naming the output
        refs.insert("x", Ref::Text("?".into()));
        let e = write_formats(
            &with(&[OutputFormat::Parquet]),
            &store,
            "nos/b.zarr",
            &refs,
            "e",
        )
        .await
        .expect_err("bad");
        assert!(e.to_string().contains("nos/b.zarr.parq"), "{e}");
    }

    /// A store that counts PUTs per key and can fail its LISTs.
    #[derive(Debug)]
    struct Counting {
        inner: crate::store::LocalStore,
        puts: std::sync::Mutex<Vec<String>>,
        fail_list: std::sync::atomic::AtomicBool,
    }

    impl ObjectStore for Counting {
        fn url(&self) -> String {
            self.inner.url()
        }
        fn bucket(&self) -> &str {
            self.inner.bucket()
        }
        fn get<'a>(
            &'a self,
            key: &'a str,
        ) -> hdf5_lite::source::BoxFuture<'a, Result<(Bytes, String), StoreError>> {
            self.inner.get(key)
        }
        fn put<'a>(
            &'a self,
            key: &'a str,
            body: Bytes,
            cond: PutCondition,
        ) -> hdf5_lite::source::BoxFuture<'a, Result<String, StoreError>> {
            if let Ok(mut p) = self.puts.lock() {
                p.push(key.to_string());
            }
            self.inner.put(key, body, cond)
        }
        fn list<'a>(
            &'a self,
            prefix: &'a str,
        ) -> hdf5_lite::source::BoxFuture<'a, Result<Vec<crate::store::ObjectInfo>, StoreError>>
        {
            if self.fail_list.load(std::sync::atomic::Ordering::SeqCst) {
                return Box::pin(async { Err(StoreError::Transient("injected".into())) });
            }
            self.inner.list(prefix)
        }
        fn head<'a>(
            &'a self,
            key: &'a str,
        ) -> hdf5_lite::source::BoxFuture<'a, Result<Option<crate::store::ObjectInfo>, StoreError>>
        {
            self.inner.head(key)
        }
        fn content_etag(&self, body: &[u8]) -> Option<String> {
            self.inner.content_etag(body)
        }
        fn range_source(
            &self,
            key: &str,
        ) -> Result<std::sync::Arc<dyn hdf5_lite::RangeSource>, StoreError> {
            self.inner.range_source(key)
        }
    }

    /// A grid variable `s` and a time series `t` of `n` steps.
    fn aggregate(n: usize) -> RefSet {
        use kerchunk::Ref;
        let mut refs = RefSet::new();
        refs.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        refs.insert(
            "s/.zarray",
            Ref::Text(r#"{"chunks":[4],"shape":[4]}"#.into()),
        );
        refs.insert(
            "s/0",
            Ref::Range {
                url: "s3://b/grid.nc".into(),
                offset: 100,
                length: 32,
            },
        );
        refs.insert(
            "t/.zarray",
            Ref::Text(format!(r#"{{"chunks":[1],"shape":[{n}]}}"#)),
        );
        for i in 0..n {
            refs.insert(
                format!("t/{i}"),
                Ref::Range {
                    url: format!("s3://b/f{i:03}.nc"),
                    offset: 4096,
                    length: 8,
                },
            );
        }
        refs
    }

    /// The Parquet set under `prefix` is exactly the files of `refs`.
    async fn holds(store: &dyn ObjectStore, prefix: &str, refs: &RefSet) {
        let want =
            parquet::to_parquet_files(refs, parquet::DEFAULT_RECORD_SIZE, &[]).expect("files");
        let listed = store.list(&format!("{prefix}/")).await.expect("list");
        assert_eq!(listed.len(), want.len(), "{listed:?}");
        for f in want {
            let (got, _) = store
                .get(&format!("{prefix}/{}", f.path))
                .await
                .expect("get");
            assert_eq!(got.as_ref(), f.bytes.as_slice(), "{}", f.path);
        }
    }

    #[tokio::test]
    async fn an_update_rewrites_only_the_parquet_files_that_changed() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Counting {
            inner: crate::store::LocalStore::new(dir.path()).expect("store"),
            puts: Default::default(),
            fail_list: Default::default(),
        };
        let prefix = "nos/best.zarr.parq";
        let puts = |store: &Counting| -> Vec<String> {
            let mut p = std::mem::take(&mut *store.puts.lock().expect("lock"));
            p.sort();
            p
        };
        let all = parquet::to_parquet_files(&aggregate(2), parquet::DEFAULT_RECORD_SIZE, &[])
            .expect("files")
            .len();
        write_parquet(&store, prefix, &aggregate(2), 4)
            .await
            .expect("first");
        assert_eq!(puts(&store).len(), all, "a new set is written whole");
        holds(&store, prefix, &aggregate(2)).await;
        // One more time step: `t`'s records and the metadata, not `s`'s.
        write_parquet(&store, prefix, &aggregate(3), 4)
            .await
            .expect("grown");
        let p = puts(&store);
        assert!(
            p.iter().any(|k| k.starts_with(&format!("{prefix}/t/"))),
            "{p:?}"
        );
        assert!(p.contains(&format!("{prefix}/.zmetadata")), "{p:?}");
        assert!(
            !p.iter().any(|k| k.starts_with(&format!("{prefix}/s/"))),
            "{p:?}"
        );
        holds(&store, prefix, &aggregate(3)).await;
        // The same set again (a redelivery): nothing written.
        write_parquet(&store, prefix, &aggregate(3), 4)
            .await
            .expect("same");
        assert_eq!(puts(&store), Vec::<String>::new());
        // A record file changed behind our back is rewritten.
        let s_file = store
            .list(&format!("{prefix}/s/"))
            .await
            .expect("list")
            .remove(0)
            .key;
        store
            .put(&s_file, Bytes::from_static(b"garbage"), PutCondition::None)
            .await
            .expect("put");
        puts(&store);
        write_parquet(&store, prefix, &aggregate(3), 4)
            .await
            .expect("repair");
        assert_eq!(puts(&store), vec![s_file]);
        holds(&store, prefix, &aggregate(3)).await;
        // A LIST that fails costs PUTs, never correctness.
        store
            .fail_list
            .store(true, std::sync::atomic::Ordering::SeqCst);
        write_parquet(&store, prefix, &aggregate(4), 4)
            .await
            .expect("no list");
        assert_eq!(puts(&store).len(), all);
        store
            .fail_list
            .store(false, std::sync::atomic::Ordering::SeqCst);
        holds(&store, prefix, &aggregate(4)).await;
    }
}
