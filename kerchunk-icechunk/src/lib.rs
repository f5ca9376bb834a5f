//! Kerchunk reference sets committed to an Icechunk repository as Zarr v3
//! arrays of virtual chunks.
//!
//! Format choice: the `icechunk` crate 2.3.1 writes repositories in on-disk
//! spec **version 1** ([`SpecVersionBin::V1`]), the format icechunk-python
//! 1.x (1.1.21 is the newest for Python 3.11) reads and 2.x still reads and
//! writes. The 1.x crate line (0.3.x) cannot turn off its GCS/Azure/legacy
//! rustls dependencies; 2.3.1 builds with S3 + local filesystem only.
//!
//! A write converts the whole set first ([`v3::convert`]), checks it against
//! what the branch already holds (an array may only grow along the
//! `growable` dimensions, e.g. the concat dimension of a combine; any other
//! change of shape, dtype, dimensions or chunking is a conflict), and only
//! then touches the repository; one commit per write on branch `main`.

#![forbid(unsafe_code)]

pub mod v3;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use icechunk::config::{ObjectStoreConfig, RepositoryConfig};
use icechunk::conflicts::basic_solver::{BasicConflictSolver, VersionSelection};
use icechunk::format::format_constants::SpecVersionBin;
use icechunk::format::manifest::{ChunkPayload, VirtualChunkLocation, VirtualChunkRef};
use icechunk::format::snapshot::NodeData;
use icechunk::format::{ChunkIndices, Path};
use icechunk::session::{Session, SessionErrorKind};
use icechunk::storage::{S3Credentials, S3Options};
use icechunk::virtual_chunks::VirtualChunkContainer;
use icechunk::{Repository, Storage, Store};
use serde_json::Value;
use tokio::sync::RwLock;

pub use v3::{Chunk, Hierarchy, Node, NodeKind};

/// The branch every write commits to.
pub const BRANCH: &str = "main";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference set cannot be converted.
    #[error("reference set: {0}")]
    Input(String),
    /// Not a `file://` or `s3://` URL, or not an Icechunk repository.
    #[error("{0}")]
    Url(String),
    /// The new arrays do not fit the ones the branch holds.
    #[error("{path}: conflicts with the repository: {reason}")]
    Conflict { path: String, reason: String },
    /// Reading or writing the repository failed.
    #[error("icechunk repository {url}: {message}")]
    Repository { url: String, message: String },
    /// Other writers kept moving the branch; retry the whole update.
    #[error("icechunk repository {url}: commit lost to concurrent writers: {message}")]
    CommitConflict { url: String, message: String },
}

impl Error {
    /// CLI exit code: everything here is permanent (1) except a commit that
    /// lost the race to concurrent writers more often than it may rebase (3):
    /// a retry recomputes the update from the current state.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CommitConflict { .. } => 3,
            _ => 1,
        }
    }
}

/// Where the repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoUrl {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl RepoUrl {
    pub fn parse(url: &str) -> Result<RepoUrl, Error> {
        if let Some(p) = url.strip_prefix("file://") {
            if !p.starts_with('/') {
                return Err(Error::Url(format!(
                    "{url}: a file:// URL needs an absolute path"
                )));
            }
            return Ok(RepoUrl::Local(PathBuf::from(p)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Url(format!("{url}: no bucket")));
            }
            return Ok(RepoUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        Err(Error::Url(format!(
            "{url}: an Icechunk repository URL is file:///dir or s3://bucket/prefix"
        )))
    }
}

/// How to reach S3 (the repository and, for readers, s3:// sources).
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// An S3-compatible endpoint such as moto's `http://127.0.0.1:PORT`.
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
}

impl S3Config {
    fn options(&self) -> S3Options {
        let mut o = S3Options::default();
        o.region = Some(
            self.region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into()),
        );
        if let Some(e) = &self.endpoint_url {
            o.endpoint_url = Some(e.clone());
            o.allow_http = e.starts_with("http://");
            o.force_path_style = true;
        }
        o
    }
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The new snapshot, `None` when the branch already held exactly this.
    pub snapshot: Option<String>,
    pub arrays: usize,
    pub inline_chunks: usize,
    pub virtual_chunks: usize,
    /// The virtual chunk containers (URL prefixes) the reader must authorize.
    pub containers: Vec<String>,
    /// Arrays left out, with why.
    pub warnings: Vec<(String, String)>,
}

/// A reference URL as the absolute URL the repository stores: `s3://`,
/// `http(s)://` and `file://` stay, a local path becomes `file:///abs`.
pub fn absolute_url(url: &str) -> Result<String, Error> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    let p = std::fs::canonicalize(url).map_err(|e| Error::Input(format!("source {url}: {e}")))?;
    let s = p
        .to_str()
        .ok_or_else(|| Error::Input(format!("source {url}: path is not UTF-8")))?;
    Ok(format!("file://{s}"))
}

/// The container prefix of one URL: `s3://bucket/`, `scheme://host/`, or the
/// `file://` directory.
fn container_prefix(url: &str) -> Result<String, Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::Input(format!("{url}: not a URL")))?;
    if scheme == "file" {
        let dir = rest.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        return Ok(format!("file://{dir}/"));
    }
    let host = rest.split('/').next().unwrap_or("");
    Ok(format!("{scheme}://{host}/"))
}

/// One container per distinct prefix; local directories that nest are merged
/// into the outermost one.
fn containers(h: &Hierarchy, s3: &S3Config) -> Result<Vec<VirtualChunkContainer>, Error> {
    let mut prefixes: Vec<String> = Vec::new();
    for url in h.urls() {
        let p = container_prefix(url)?;
        if !prefixes.contains(&p) {
            prefixes.push(p);
        }
    }
    prefixes.sort();
    let mut kept: Vec<String> = Vec::new();
    for p in prefixes {
        if !kept.iter().any(|k| p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    kept.into_iter()
        .map(|p| {
            let store = if let Some(dir) = p.strip_prefix("file://") {
                ObjectStoreConfig::LocalFileSystem(PathBuf::from(dir))
            } else if p.starts_with("s3://") {
                let mut o = s3.options();
                // NOAA's buckets are public: readers need no credentials.
                o.anonymous = s3.endpoint_url.is_none();
                ObjectStoreConfig::S3(o)
            } else {
                ObjectStoreConfig::Http(Default::default())
            };
            VirtualChunkContainer::new(p.clone(), store)
                .map_err(|e| Error::Input(format!("virtual chunk container {p}: {e}")))
        })
        .collect()
}

/// Check `new` against the node the branch holds at the same path; `true`
/// when the array is re-chunked (its old chunks must go).
fn check_node(
    new: &Node,
    old: &NodeData,
    old_meta: &[u8],
    growable: &[String],
) -> Result<bool, Error> {
    let conflict = |reason: String| Error::Conflict {
        path: format!("/{}", new.path),
        reason,
    };
    match (&new.kind, old) {
        (NodeKind::Group, NodeData::Group) => Ok(false),
        (NodeKind::Group, NodeData::Array { .. }) => {
            Err(conflict("a group here, an array in the repository".into()))
        }
        (NodeKind::Array { .. }, NodeData::Group) => {
            Err(conflict("an array here, a group in the repository".into()))
        }
        (
            NodeKind::Array {
                shape,
                chunk_shape,
                data_type,
                dimension_names,
                ..
            },
            NodeData::Array { .. },
        ) => {
            let old: Value = serde_json::from_slice(old_meta)
                .map_err(|e| conflict(format!("unreadable zarr.json in the repository: {e}")))?;
            if old.get("data_type") != Some(data_type) {
                return Err(conflict(format!(
                    "data type {data_type} here, {} in the repository",
                    old.get("data_type").unwrap_or(&Value::Null)
                )));
            }
            let old_dims: Vec<String> = old
                .get("dimension_names")
                .and_then(Value::as_array)
                .map(|d| {
                    d.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if &old_dims != dimension_names {
                return Err(conflict(format!(
                    "dimensions {dimension_names:?} here, {old_dims:?} in the repository"
                )));
            }
            let old_shape: Vec<u64> = old
                .get("shape")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let old_chunks = old
                .pointer("/chunk_grid/configuration/chunk_shape")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_u64).collect::<Vec<_>>())
                .unwrap_or_default();
            if old_shape.len() != shape.len() || old_chunks.len() != chunk_shape.len() {
                return Err(conflict(format!(
                    "shape {shape:?} here, {old_shape:?} in the repository"
                )));
            }
            let mut rechunked = false;
            for (i, (n, o)) in shape.iter().zip(&old_shape).enumerate() {
                let dim = dimension_names.get(i).map(String::as_str).unwrap_or("");
                let grows = growable.iter().any(|g| g == dim);
                if n != o && !(grows && n > o) {
                    return Err(conflict(format!(
                        "shape {shape:?} here, {old_shape:?} in the repository (only {growable:?} may grow)"
                    )));
                }
                // A combine may re-chunk along the concat dimension (small
                // coordinates become one chunk); elsewhere chunking is fixed.
                if chunk_shape.get(i) != old_chunks.get(i) {
                    if !grows {
                        return Err(conflict(format!(
                            "chunks {chunk_shape:?} here, {old_chunks:?} in the repository"
                        )));
                    }
                    rechunked = true;
                }
            }
            Ok(rechunked)
        }
    }
}

fn repo_err(url: &str) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Repository {
        url: url.to_string(),
        message,
    }
}

async fn storage(url: &str, s3: &S3Config) -> Result<Arc<dyn Storage + Send + Sync>, Error> {
    match RepoUrl::parse(url)? {
        RepoUrl::Local(dir) => {
            if dir.exists() && !dir.is_dir() {
                return Err(Error::Url(format!("{url}: exists and is not a directory")));
            }
            icechunk::new_local_filesystem_storage(&dir)
                .await
                .map_err(|e| repo_err(url)(e.to_string()))
        }
        RepoUrl::S3 { bucket, prefix } => {
            // One storage (S3 client, credential cache, connection pool) per
            // repository and endpoint for the life of the process: the
            // worker writes many aggregates to the same repositories.
            type Cache = std::sync::Mutex<HashMap<String, Arc<dyn Storage + Send + Sync>>>;
            static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
            let id = format!("{url}\n{:?}\n{:?}", s3.endpoint_url, s3.region);
            let cache = CACHE.get_or_init(Default::default);
            if let Some(st) = cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
                return Ok(st);
            }
            let st = icechunk::new_s3_storage(
                s3.options(),
                bucket,
                (!prefix.is_empty()).then_some(prefix),
                Some(S3Credentials::FromEnv),
                Vec::new(),
                Vec::new(),
                None,
            )
            .map_err(|e| repo_err(url)(e.to_string()))?;
            if let Ok(mut c) = cache.lock() {
                c.insert(id, Arc::clone(&st));
            }
            Ok(st)
        }
    }
}

/// Commit `refs` to branch `main` of the repository at `url`, creating the
/// repository if there is none. `message` is the commit message.
pub async fn write(
    url: &str,
    refs: &kerchunk::RefSet,
    growable: &[String],
    s3: &S3Config,
    message: &str,
) -> Result<Summary, Error> {
    write_at(url, "", refs, growable, s3, message).await
}

/// How a commit that lost the race to another writer is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Rebases onto the other writers' commits before giving up with
    /// [`Error::CommitConflict`].
    pub rebase_attempts: u16,
    /// A rebase fails when both sides wrote the same chunk (icechunk's basic
    /// solver otherwise keeps ours). Writers that always write a whole group
    /// use this: changes to other groups still rebase, but two writes of one
    /// group never merge into a mix of both; the loser gets
    /// [`Error::CommitConflict`] and redoes its transaction from the new
    /// state (the pipeline does, `ingest` "Icechunk output").
    pub strict_chunks: bool,
    /// Manifests fetched at once while committing. A commit reads the
    /// manifest of every array it changes; icechunk's default is one at a
    /// time, which costs one S3 round trip per array of the group.
    pub commit_concurrency: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            rebase_attempts: 5,
            strict_chunks: false,
            commit_concurrency: 8,
        }
    }
}

/// Like [`write`], with the reference set's root at group `group`
/// (`a/b`; `""` is the repository root). Groups above it that the branch
/// lacks are created without attributes; existing ones are left as they are.
/// The pipeline's layout: one repository per model, a group per model-run
/// cycle and one for the best series (README "Icechunk output").
pub async fn write_at(
    url: &str,
    group: &str,
    refs: &kerchunk::RefSet,
    growable: &[String],
    s3: &S3Config,
    message: &str,
) -> Result<Summary, Error> {
    write_with(
        url,
        group,
        refs,
        growable,
        s3,
        message,
        &WriteOptions::default(),
    )
    .await
}

/// [`write_at`] with a choice of [`WriteOptions`].
pub async fn write_with(
    url: &str,
    group: &str,
    refs: &kerchunk::RefSet,
    growable: &[String],
    s3: &S3Config,
    message: &str,
    opts: &WriteOptions,
) -> Result<Summary, Error> {
    let mut h = v3::convert(refs, &absolute_url)?;
    let group = group.trim_matches('/');
    let mut parents = Vec::new();
    if !group.is_empty() {
        for n in &mut h.nodes {
            n.path = if n.path.is_empty() {
                group.to_string()
            } else {
                format!("{group}/{}", n.path)
            };
        }
        let mut acc = String::new();
        for part in group.split('/') {
            parents.push(acc.clone());
            acc = if acc.is_empty() {
                part.to_string()
            } else {
                format!("{acc}/{part}")
            };
        }
    }
    let containers = containers(&h, s3)?;
    let err = repo_err(url);
    let st = storage(url, s3).await?;
    let exists = Repository::exists(Arc::clone(&st), None)
        .await
        .map_err(|e| err(e.to_string()))?;
    let repo = if exists {
        let repo = Repository::open(Arc::clone(&st))
            .execute()
            .await
            .map_err(|e| err(e.to_string()))?;
        let missing: Vec<_> = containers
            .iter()
            .filter(|c| {
                repo.config()
                    .get_virtual_chunk_container(c.url_prefix())
                    .is_none()
            })
            .cloned()
            .collect();
        if missing.is_empty() {
            repo
        } else {
            let mut cfg = repo.config().clone();
            for c in missing {
                cfg.set_virtual_chunk_container(c).map_err(&err)?;
            }
            Repository::open(Arc::clone(&st))
                .config(cfg)
                .execute()
                .await
                .map_err(|e| err(e.to_string()))?
        }
    } else {
        if let RepoUrl::Local(dir) = RepoUrl::parse(url)?
            && dir.is_dir()
            && std::fs::read_dir(&dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(Error::Url(format!(
                "{url}: not an Icechunk repository (the directory is not empty)"
            )));
        }
        let mut cfg = RepositoryConfig::default();
        for c in containers.iter().cloned() {
            cfg.set_virtual_chunk_container(c).map_err(&err)?;
        }
        Repository::create(Arc::clone(&st))
            .config(cfg)
            .spec_version(SpecVersionBin::V1)
            .execute()
            .await
            .map_err(|e| {
                err(format!(
                    "not an Icechunk repository and cannot create one: {e}"
                ))
            })?
    };
    let session = repo
        .writable_session(BRANCH)
        .await
        .map_err(|e| err(e.to_string()))?;
    // Validate every node before the first change.
    let mut rechunked = Vec::new();
    let mut kept = Vec::new();
    for n in &h.nodes {
        let path = node_path(&n.path)?;
        if let Ok(old) = session.get_node(&path).await {
            if check_node(n, &old.node_data, &old.user_data, growable)? {
                rechunked.push(path);
            } else {
                kept.push(n);
            }
        }
    }
    let unchanged = unchanged_chunks(&session, &kept, opts.commit_concurrency).await;
    let mut summary = Summary {
        warnings: h.warnings.clone(),
        containers: containers
            .iter()
            .map(|c| c.url_prefix().to_string())
            .collect(),
        ..Summary::default()
    };
    let session = Arc::new(RwLock::new(session));
    for path in rechunked {
        session
            .write()
            .await
            .delete_array(path.clone())
            .await
            .map_err(|e| err(format!("{path}: {e}")))?;
    }
    let store = Store::from_session(Arc::clone(&session)).await;
    for p in &parents {
        let key = if p.is_empty() {
            "zarr.json".to_string()
        } else {
            format!("{p}/zarr.json")
        };
        let doc = serde_json::to_vec(&serde_json::json!(
            {"zarr_format": 3, "node_type": "group", "attributes": {}}
        ))
        .map_err(|e| err(e.to_string()))?;
        // Only when missing: the group may carry attributes already.
        store
            .set_if_not_exists(&key, Bytes::from(doc))
            .await
            .map_err(|e| err(format!("{key}: {e}")))?;
    }
    for n in &h.nodes {
        let key = if n.path.is_empty() {
            "zarr.json".to_string()
        } else {
            format!("{}/zarr.json", n.path)
        };
        let doc = serde_json::to_vec(&n.zarr_json).map_err(|e| err(e.to_string()))?;
        store
            .set(&key, Bytes::from(doc))
            .await
            .map_err(|e| err(format!("{key}: {e}")))?;
        let NodeKind::Array { chunks, .. } = &n.kind else {
            continue;
        };
        summary.arrays += 1;
        let mut virt = Vec::new();
        for (idx, c) in chunks {
            if unchanged.contains(&(n.path.as_str(), idx.as_slice())) {
                match c {
                    Chunk::Inline(_) => summary.inline_chunks += 1,
                    Chunk::Virtual { .. } => summary.virtual_chunks += 1,
                }
                continue;
            }
            match c {
                Chunk::Inline(bytes) => {
                    let ckey = chunk_key(&n.path, idx);
                    store
                        .set(&ckey, Bytes::from(bytes.clone()))
                        .await
                        .map_err(|e| err(format!("{ckey}: {e}")))?;
                    summary.inline_chunks += 1;
                }
                Chunk::Virtual {
                    url: u,
                    offset,
                    length,
                } => {
                    let location = VirtualChunkLocation::from_url(u)
                        .map_err(|e| Error::Input(format!("{u}: {e}")))?;
                    virt.push((
                        ChunkIndices(idx.clone()),
                        VirtualChunkRef {
                            location,
                            offset: *offset,
                            length: *length,
                            checksum: None,
                        },
                    ));
                }
            }
        }
        summary.virtual_chunks += virt.len();
        if !virt.is_empty() {
            let res = store
                .set_virtual_refs(&node_path(&n.path)?, true, virt)
                .await
                .map_err(|e| err(format!("/{}: {e}", n.path)))?;
            if let icechunk::store::SetVirtualRefsResult::FailedRefs(f) = res {
                return Err(err(format!(
                    "/{}: {} virtual chunks outside every container",
                    n.path,
                    f.len()
                )));
            }
        }
    }
    drop(store);
    let mut session = session.write().await;
    if !session.has_uncommitted_changes() {
        return Ok(summary);
    }
    let mut solver = BasicConflictSolver::default();
    if opts.strict_chunks {
        solver.on_chunk_conflict = VersionSelection::Fail;
    }
    let id = session
        .commit(message)
        .rebase(&solver, opts.rebase_attempts)
        .max_concurrent_nodes(opts.commit_concurrency)
        .execute()
        .await
        .map_err(|e| match e.kind {
            SessionErrorKind::Conflict { .. } | SessionErrorKind::RebaseFailed { .. } => {
                Error::CommitConflict {
                    url: url.to_string(),
                    message: e.to_string(),
                }
            }
            _ => err(format!("commit: {e}")),
        })?;
    summary.snapshot = Some(id.to_string());
    Ok(summary)
}

/// The chunks of `nodes` (arrays the branch holds, not re-chunked) that the
/// branch already holds exactly as given. They are not set again: an
/// unchanged set makes no commit (a redelivered update is a no-op), and a
/// grown one changes only the arrays and chunks that differ (a commit reads
/// and rewrites the manifest of every array it changes). Chunks that cannot
/// be compared (stored as chunk objects, or a failed lookup) count as
/// changed. Arrays are looked up `concurrency` at a time (one manifest each).
async fn unchanged_chunks<'a>(
    session: &Session,
    nodes: &[&'a Node],
    concurrency: usize,
) -> HashSet<(&'a str, &'a [u32])> {
    // Boxed so the futures are `Send` for any lifetime (the pipeline's
    // worker runs this on the multi-threaded runtime).
    type Same<'a> = Vec<(&'a str, &'a [u32])>;
    let per_array: Vec<BoxFuture<'_, Same<'a>>> = nodes
        .iter()
        .map(|n| -> BoxFuture<'_, Same<'a>> {
            Box::pin(async move {
                let mut same = Vec::new();
                let (NodeKind::Array { chunks, .. }, Ok(path)) = (&n.kind, node_path(&n.path))
                else {
                    return same;
                };
                for (idx, c) in chunks {
                    let Ok(Some(old)) = session
                        .get_chunk_ref(&path, &ChunkIndices(idx.clone()))
                        .await
                    else {
                        continue;
                    };
                    let equal = match (c, &old) {
                        (Chunk::Inline(b), ChunkPayload::Inline(o)) => b.as_slice() == o.as_ref(),
                        (
                            Chunk::Virtual {
                                url,
                                offset,
                                length,
                            },
                            ChunkPayload::Virtual(r),
                        ) => {
                            r.offset == *offset
                                && r.length == *length
                                && r.checksum.is_none()
                                && VirtualChunkLocation::from_url(url)
                                    .is_ok_and(|l| l == r.location)
                        }
                        _ => false,
                    };
                    if equal {
                        same.push((n.path.as_str(), idx.as_slice()));
                    }
                }
                same
            })
        })
        .collect();
    let found: Vec<Same<'a>> = futures_util::stream::iter(per_array)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    found.into_iter().flatten().collect()
}

fn node_path(p: &str) -> Result<Path, Error> {
    Path::new(&format!("/{p}")).map_err(|e| Error::Input(format!("{p}: {e}")))
}

fn chunk_key(path: &str, idx: &[u32]) -> String {
    let mut k = if path.is_empty() {
        "c".to_string()
    } else {
        format!("{path}/c")
    };
    for i in idx {
        k.push('/');
        k.push_str(&i.to_string());
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            RepoUrl::parse("s3://b/p/q/").unwrap(),
            RepoUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            RepoUrl::parse("file:///x/y").unwrap(),
            RepoUrl::Local("/x/y".into())
        );
        assert!(RepoUrl::parse("http://x/y").is_err());
        assert!(RepoUrl::parse("file://rel").is_err());
    }

    #[test]
    fn container_prefixes() {
        assert_eq!(
            container_prefix("s3://noaa-ofs-pds/a/b.nc").unwrap(),
            "s3://noaa-ofs-pds/"
        );
        assert_eq!(
            container_prefix("file:///d/e/f.nc").unwrap(),
            "file:///d/e/"
        );
    }
}
