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
//! `.zmetadata` implies is rewritten each time (no older one survives). Two
//! updates racing on one aggregate converge like the JSON output: the update
//! step rebuilds when the member set changed while it wrote, and outputs are
//! a deterministic function of the member set.
//!
//! Icechunk: one repository per model, one group per aggregate, one commit
//! per write (`crate::icechunk_out`, behind the `icechunk` cargo feature).

use bytes::Bytes;
use futures_util::StreamExt as _;
use kerchunk::RefSet;
use kerchunk::parquet::{self, ParquetError};

use crate::config::Pipeline;
use crate::store::{ObjectStore, PutCondition, StoreError};

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
    let puts = files.into_iter().map(|f| async move {
        let key = format!("{prefix}/{}", f.path);
        store
            .put(&key, Bytes::from(f.bytes), PutCondition::None)
            .await
    });
    let mut results = futures_util::stream::iter(puts).buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    let key = format!("{prefix}/{}", meta.path);
    store
        .put(&key, Bytes::from(meta.bytes), PutCondition::None)
        .await?;
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
        let want =
            parquet::to_parquet_files(&refs, parquet::DEFAULT_RECORD_SIZE, &[]).expect("files");
        let listed = store.list("nos/a.zarr.parq/").await.expect("list");
        assert_eq!(listed.len(), want.len());
        for f in want {
            let (got, _) = store
                .get(&format!("nos/a.zarr.parq/{}", f.path))
                .await
                .expect("get");
            assert_eq!(got.as_ref(), f.bytes.as_slice(), "{}", f.path);
        }
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
}
