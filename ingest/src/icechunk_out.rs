//! The aggregates as Icechunk repositories (`--output-format icechunk`).
//!
//! Layout: one repository per model at `{root}/{model}`, where `root` is
//! `--icechunk-root` or, by default, `{dest}/{folder}/icechunk` beside the
//! JSON aggregates (`s3://dest-bucket/nos/icechunk/dbofs`); every aggregate
//! is one group at the repository's root named after its JSON key without
//! `.nc.zarr` (`nos.dbofs.fields.20230323.t12z` for a model run, one group
//! per cycle; `nos.dbofs.fields.best` for the best time series). Each write
//! is one commit on branch `main` that sets the whole group to the
//! aggregate.
//!
//! Ordering: the JSON aggregate stays the compare-and-swap anchor (it is
//! written first). A write commits the anchor's content; when its commit
//! loses to another writer's, writes to other groups (other cycles) rebase,
//! and a write to the same group is redone from the new state (bounded, then
//! exit 3). The caller checks the anchor after every write and rewrites from
//! it when it moved on, so the last writer leaves the group equal to the
//! newest anchor (`steps::write_other_formats`). A repository that already
//! holds the group with arrays the new aggregate does not fit (another dtype,
//! dimensions or chunking, or a shorter time axis that no newer anchor
//! explains) is a permanent error: exit 1 and no commit.

use kerchunk::RefSet;
use kerchunk_icechunk::{Error as IcechunkError, S3Config, WriteOptions};

use crate::config::Pipeline;
use crate::outputs::OutputError;
use crate::store::{ObjectStore, StoreError};

/// Dimensions an aggregate grows along: the concat dimensions of every
/// model family's combine (`steps::combine_options`).
const TIME_DIMS: &[&str] = &["ocean_time", "time"];

/// What one Icechunk write ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Committed (`Some(snapshot id)`) or already equal (`None`).
    Committed {
        url: String,
        snapshot: Option<String>,
    },
    /// Not written: the anchor moved on while we wrote; the caller rewrites
    /// from its new content.
    Superseded,
}

/// Where an aggregate goes: the repository URL and the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub repo: String,
    pub group: String,
}

/// The model of an aggregate's basename, as `ofs_key::model_run_key` and
/// `ofs_key::best_key` name them: `nos.{model}.{kind}...` (legacy) or
/// `{model}.t{CC}z...` / `{model}.{kind}.best...` (current).
fn model_of(base: &str) -> Option<&str> {
    let mut parts = base.split('.');
    let first = parts.next()?;
    let model = if first == "nos" { parts.next()? } else { first };
    (!model.is_empty()).then_some(model)
}

/// The repository and group of the aggregate at `key` of `store`.
pub fn target(root: Option<&str>, store_url: &str, key: &str) -> Result<Target, OutputError> {
    let (folder, base) = key.rsplit_once('/').unwrap_or(("", key));
    let name = base
        .strip_suffix(".nc.zarr")
        .or_else(|| base.strip_suffix(".zarr"))
        .unwrap_or(base);
    let model = model_of(name).ok_or_else(|| OutputError::Icechunk {
        key: key.to_string(),
        message: "cannot tell the model from the aggregate's name".into(),
        transient: false,
    })?;
    let root = match root {
        Some(r) => r.trim_end_matches('/').to_string(),
        None if folder.is_empty() => format!("{store_url}/icechunk"),
        None => format!("{store_url}/{folder}/icechunk"),
    };
    Ok(Target {
        repo: format!("{root}/{model}"),
        group: name.to_string(),
    })
}

fn s3_config(p: &Pipeline) -> S3Config {
    S3Config {
        endpoint_url: p
            .config
            .source_options
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
        region: p.config.source_options.region.clone(),
    }
}

/// Commits `refs`, the content of the anchor `key` at `etag`, to its group.
/// A commit conflict is retried from the new state; a conflict with the
/// repository's arrays is permanent unless the anchor moved on meanwhile
/// (then a newer writer's commit explains it: [`Written::Superseded`]).
pub async fn write(
    p: &Pipeline,
    store: &dyn ObjectStore,
    key: &str,
    refs: &RefSet,
    etag: &str,
) -> Result<Written, OutputError> {
    let t = target(p.config.icechunk_root.as_deref(), &store.url(), key)?;
    let growable: Vec<String> = TIME_DIMS.iter().map(|d| d.to_string()).collect();
    let s3 = s3_config(p);
    let opts = WriteOptions {
        rebase_attempts: 5,
        strict_chunks: true,
        commit_concurrency: p.config.io_concurrency.max(1),
    };
    let message = format!("{}/{key}", store.url());
    // icechunk's local filesystem storage has no safe concurrent commits:
    // one writer at a time per file:// repository within this process
    // (backfill and the worker run updates concurrently); s3:// needs none.
    let _local = match t.repo.starts_with("file://") {
        true => Some(local_lock(&t.repo).lock_owned().await),
        false => None,
    };
    let attempts = p.config.max_rebuilds.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        let res =
            kerchunk_icechunk::write_with(&t.repo, &t.group, refs, &growable, &s3, &message, &opts)
                .await;
        let e = match res {
            Ok(s) => {
                for (path, reason) in &s.warnings {
                    tracing::warn!(repo = %t.repo, path = %path, reason = %reason, "icechunk: array left out");
                }
                tracing::info!(
                    repo = %t.repo,
                    group = %t.group,
                    snapshot = s.snapshot.as_deref().unwrap_or("(no changes)"),
                    attempt,
                    "icechunk group written"
                );
                return Ok(Written::Committed {
                    url: format!("{}#{}", t.repo, t.group),
                    snapshot: s.snapshot,
                });
            }
            Err(e) => e,
        };
        let retry = matches!(e, IcechunkError::CommitConflict { .. });
        let explainable = matches!(e, IcechunkError::Conflict { .. });
        if (retry || explainable) && anchor_moved(store, key, etag).await? {
            tracing::info!(repo = %t.repo, group = %t.group, error = %e, "anchor moved on; superseded");
            return Ok(Written::Superseded);
        }
        if !retry {
            return Err(OutputError::Icechunk {
                key: format!("{}#{}", t.repo, t.group),
                message: e.to_string(),
                transient: false,
            });
        }
        tracing::info!(repo = %t.repo, group = %t.group, attempt, error = %e, "icechunk commit lost a race; redoing");
        last = e.to_string();
    }
    Err(OutputError::Icechunk {
        key: format!("{}#{}", t.repo, t.group),
        message: format!("{last} ({attempts} attempts)"),
        transient: true,
    })
}

/// The in-process lock of a `file://` repository.
fn local_lock(repo: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    type Locks =
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>;
    static LOCKS: std::sync::OnceLock<Locks> = std::sync::OnceLock::new();
    let mut locks = match LOCKS.get_or_init(Default::default).lock() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    std::sync::Arc::clone(locks.entry(repo.to_string()).or_default())
}

/// Whether the anchor is no longer at `etag` (rewritten or gone).
async fn anchor_moved(store: &dyn ObjectStore, key: &str, etag: &str) -> Result<bool, StoreError> {
    Ok(match store.head(key).await? {
        Some(o) => o.etag != etag,
        None => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ofs_key::{self, Parsed};
    use crate::outputs::OutputFormat;
    use crate::store::{LocalStore, PutCondition};
    use kerchunk::Ref;

    fn refs(dtype: &str, n: u64) -> RefSet {
        let mut r = RefSet::new();
        r.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        r.insert(
            "zeta/.zarray",
            Ref::Text(format!(
                r#"{{"chunks":[1],"compressor":null,"dtype":"{dtype}","fill_value":null,"filters":null,"order":"C","shape":[{n}],"zarr_format":2}}"#
            )),
        );
        r.insert(
            "zeta/.zattrs",
            Ref::Text(r#"{"_ARRAY_DIMENSIONS":["ocean_time"]}"#.into()),
        );
        for i in 0..n {
            r.insert(format!("zeta/{i}"), Ref::Binary(vec![i as u8; 4]));
        }
        r
    }

    /// The decisions of [`write`]: commit, no-op, permanent conflict, and a
    /// conflict explained by a newer anchor.
    #[tokio::test]
    async fn commits_follow_the_anchor() {
        let d = tempfile::tempdir().expect("tmp");
        let store = LocalStore::new(d.path().join("dest")).expect("store");
        let p = Pipeline::new(Config {
            output_formats: vec![OutputFormat::Json, OutputFormat::Icechunk],
            icechunk_root: Some(format!("file://{}", d.path().join("ice").display())),
            ..Default::default()
        });
        let key = "nos/nos.dbofs.fields.20230323.t12z.nc.zarr";
        let put = |r: &RefSet| {
            let body = bytes::Bytes::from(r.to_json());
            let store = &store;
            async move { store.put(key, body, PutCondition::None).await.expect("put") }
        };
        let two = refs("<f4", 2);
        let etag = put(&two).await;
        let w = write(&p, &store, key, &two, &etag).await.expect("first");
        let Written::Committed { url, snapshot } = w else {
            panic!("{w:?}");
        };
        assert!(snapshot.is_some());
        assert!(
            url.ends_with("/ice/dbofs#nos.dbofs.fields.20230323.t12z"),
            "{url}"
        );
        // the same aggregate again: no commit
        let w = write(&p, &store, key, &two, &etag).await.expect("again");
        assert!(
            matches!(w, Written::Committed { snapshot: None, .. }),
            "{w:?}"
        );
        // another dtype, anchor unchanged: permanent
        let e = write(&p, &store, key, &refs("<i4", 2), &etag)
            .await
            .expect_err("conflict");
        assert!(
            matches!(
                e,
                OutputError::Icechunk {
                    transient: false,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("conflicts with the repository"),
            "{e}"
        );
        // a stale writer (1 member) after a newer one (3) moved anchor and
        // repository on: superseded, not an error
        let three = refs("<f4", 3);
        let newer = put(&three).await;
        write(&p, &store, key, &three, &newer).await.expect("newer");
        let w = write(&p, &store, key, &refs("<f4", 1), &etag)
            .await
            .expect("stale");
        assert_eq!(w, Written::Superseded);
    }

    /// Concurrent updates of one file:// repository in one process (backfill,
    /// worker) take turns; every group lands.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_local_writes_all_land() {
        let d = tempfile::tempdir().expect("tmp");
        let store = LocalStore::new(d.path().join("dest")).expect("store");
        let p = Pipeline::new(Config {
            icechunk_root: Some(format!("file://{}", d.path().join("ice").display())),
            ..Default::default()
        });
        let r = refs("<f4", 2);
        let keys: Vec<String> = (0..6)
            .map(|h| format!("nos/nos.dbofs.fields.20230323.t{h:02}z.nc.zarr"))
            .collect();
        let mut etags = Vec::new();
        for k in &keys {
            let body = bytes::Bytes::from(r.to_json());
            etags.push(store.put(k, body, PutCondition::None).await.expect("put"));
        }
        let writes = keys
            .iter()
            .zip(&etags)
            .map(|(k, e)| write(&p, &store, k, &r, e));
        for w in futures_util::future::join_all(writes).await {
            assert!(
                matches!(
                    w,
                    Ok(Written::Committed {
                        snapshot: Some(_),
                        ..
                    })
                ),
                "{w:?}"
            );
        }
        let st = icechunk::new_local_filesystem_storage(&d.path().join("ice/dbofs"))
            .await
            .expect("storage");
        let repo = icechunk::Repository::open(st)
            .execute()
            .await
            .expect("open");
        let session = repo
            .readonly_session(&icechunk::repository::VersionInfo::BranchTipRef(
                "main".into(),
            ))
            .await
            .expect("session");
        for h in 0..6 {
            let path = format!("/nos.dbofs.fields.20230323.t{h:02}z/zeta");
            let path = icechunk::format::Path::new(&path).expect("path");
            session.get_node(&path).await.expect("group landed");
        }
    }

    #[test]
    fn targets_follow_the_aggregate_keys() {
        for src in [
            "nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr",
            "nos/dbofs.t12z.20250101.fields.f001.nc.zarr",
        ] {
            let Ok(Parsed::Output(k)) = ofs_key::parse_single_ref_key(src) else {
                panic!("{src}: not a reference key");
            };
            let run = ofs_key::model_run_key("nos", &k).expect("run key");
            let best = ofs_key::best_key("nos", &k).expect("best key");
            let t = target(None, "s3://dest", &run).expect("run");
            assert_eq!(t.repo, "s3://dest/nos/icechunk/dbofs", "{run}");
            assert_eq!(format!("nos/{}.nc.zarr", t.group), run);
            let b = target(Some("file:///r/"), "s3://dest", &best).expect("best");
            assert_eq!(b.repo, "file:///r/dbofs");
            assert_eq!(format!("nos/{}.nc.zarr", b.group), best);
            assert!(b.group.ends_with(".best"), "{best}");
        }
        assert_eq!(
            target(None, "file:///d", "x.zarr").expect("bare").repo,
            "file:///d/icechunk/x"
        );
        assert!(target(None, "s3://d", "nos/.zarr").is_err());
    }
}
