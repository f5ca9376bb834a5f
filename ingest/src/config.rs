//! Pipeline settings (from flags and environment, see `main.rs`) and the
//! [`Pipeline`] context the steps run in: settings plus a cache of opened
//! stores, one per bucket.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use hdf5_lite::SourceOptions;
use tokio::sync::Mutex;

use crate::ofs_key::{Kind, OfsKey};
use crate::store::{self, ObjectStore, StoreError, StoreUrl};

/// The buckets NOAA publishes OFS output to.
pub const DEFAULT_SOURCE_BUCKETS: &[&str] = &["noaa-ofs-pds", "noaa-nos-ofs-pds"];

#[derive(Debug, Clone)]
pub struct Config {
    /// Only these buckets are ever read from (messages naming others are
    /// skipped, and reference URLs into others are never fetched).
    pub source_buckets: Vec<String>,
    /// `None`: every model.
    pub models: Option<BTreeSet<String>>,
    /// File kinds indexed and aggregated (default: `fields`).
    pub kinds: Vec<Kind>,
    /// Read source bucket `B` from the directory `{source_root}/B` instead of
    /// S3 (tests; the references still say `s3://B/key`).
    pub source_root: Option<PathBuf>,
    /// Store for `update_model_run` instead of `s3://{bucket of the message}`.
    pub dest_override: Option<StoreUrl>,
    /// Remote access: endpoint, retries, timeouts, range concurrency.
    pub source_options: SourceOptions,
    /// Per-file metadata limits (bytes, objects, chunks, waves).
    pub hdf5: hdf5_lite::Options,
    /// kerchunk's inline threshold for single files and aggregates.
    pub inline_threshold: u64,
    /// Model runs hold nowcasts too (`n001..`), and the best series prefers
    /// the newest cycle's nowcast; default is the original pipeline
    /// (forecast hours only).
    pub include_nowcasts: bool,
    /// Objects read or written at once within one step (reference sets of a
    /// model run, backfill files).
    pub io_concurrency: usize,
    /// Times an aggregate is rebuilt when its member set changed while it
    /// was being written.
    pub max_rebuilds: usize,
    /// Formats the aggregates are written in (default JSON only); see
    /// [`crate::outputs`].
    pub output_formats: Vec<crate::outputs::OutputFormat>,
    /// Where `--output-format icechunk` keeps its per-model repositories
    /// (`{root}/{model}`); `None`: `{dest}/{folder}/icechunk`.
    pub icechunk_root: Option<String>,
    /// Records one message may carry; a message with more fails
    /// permanently before anything is read or written.
    pub max_records_per_message: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source_buckets: DEFAULT_SOURCE_BUCKETS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            models: None,
            kinds: vec![Kind::Fields],
            source_root: None,
            dest_override: None,
            source_options: SourceOptions::default(),
            hdf5: hdf5_lite::Options::default(),
            inline_threshold: 500,
            include_nowcasts: false,
            io_concurrency: 8,
            max_rebuilds: 8,
            output_formats: vec![crate::outputs::OutputFormat::Json],
            icechunk_root: None,
            max_records_per_message: 100,
        }
    }
}

impl Config {
    pub fn is_source_bucket(&self, bucket: &str) -> bool {
        self.source_buckets.iter().any(|b| b == bucket)
    }

    /// Why `key` is not indexed under this configuration, if it is not.
    pub fn excludes(&self, key: &OfsKey) -> Option<String> {
        if let Some(models) = &self.models
            && !models.contains(&key.model)
        {
            return Some(format!("model {} is not configured", key.model));
        }
        if !self.kinds.contains(&key.kind) {
            return Some(format!("kind {} is not configured", key.kind.token()));
        }
        None
    }

    /// Parses a comma-separated model list; `all`/empty means every model.
    pub fn parse_models(list: &str) -> Option<BTreeSet<String>> {
        let set: BTreeSet<String> = list
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty())
            .collect();
        if set.is_empty() || set.contains("all") {
            None
        } else {
            Some(set)
        }
    }

    /// Parses a comma-separated kind list (`fields,2ds,regulargrid`).
    pub fn parse_kinds(list: &str) -> Result<Vec<Kind>, String> {
        let mut out = Vec::new();
        for k in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            let kind = match k {
                "fields" => Kind::Fields,
                "2ds" => Kind::TwoDs,
                "regulargrid" => Kind::RegularGrid,
                other => return Err(format!("unknown kind {other:?} (fields, 2ds, regulargrid)")),
            };
            if !out.contains(&kind) {
                out.push(kind);
            }
        }
        if out.is_empty() {
            return Err("no kinds given".into());
        }
        Ok(out)
    }
}

/// Settings plus opened stores; cheap to share (`Arc`).
#[derive(Debug)]
pub struct Pipeline {
    pub config: Config,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    /// Layouts of the source series seen (`crate::layouts`).
    pub layouts: crate::layouts::Layouts,
}

impl Pipeline {
    pub fn new(config: Config) -> Self {
        Pipeline {
            config,
            stores: Mutex::new(HashMap::new()),
            layouts: crate::layouts::Layouts::default(),
        }
    }

    /// Use `store` for `url` from now on (tests: a store that fails or
    /// holds chosen requests).
    pub async fn insert_store(&self, url: &StoreUrl, store: Arc<dyn ObjectStore>) {
        self.stores.lock().await.insert(format!("{url:?}"), store);
    }

    /// The store a URL names, opened once.
    pub async fn store(&self, url: &StoreUrl) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let id = format!("{url:?}");
        let mut stores = self.stores.lock().await;
        if let Some(s) = stores.get(&id) {
            return Ok(s.clone());
        }
        let s = store::open(url, &self.config.source_options).await?;
        stores.insert(id, s.clone());
        Ok(s)
    }

    /// The store holding source bucket `bucket`; refuses unconfigured buckets.
    pub async fn source_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        if !self.config.is_source_bucket(bucket) {
            return Err(StoreError::Permanent(format!(
                "bucket {bucket:?} is not a configured source bucket"
            )));
        }
        if !store::is_bucket_name(bucket) {
            return Err(StoreError::Permanent(format!(
                "{bucket:?} is not a valid bucket name"
            )));
        }
        let url = match &self.config.source_root {
            Some(root) => StoreUrl::Local {
                dir: root.join(bucket),
            },
            None => StoreUrl::S3 {
                bucket: bucket.to_string(),
                prefix: String::new(),
            },
        };
        self.store(&url).await
    }

    /// The store `update_model_run` writes for a message about `bucket`.
    pub async fn dest_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let url = match &self.config.dest_override {
            Some(u) => u.clone(),
            None => {
                if !store::is_bucket_name(bucket) {
                    return Err(StoreError::Permanent(format!(
                        "{bucket:?} is not a valid bucket name"
                    )));
                }
                StoreUrl::S3 {
                    bucket: bucket.to_string(),
                    prefix: String::new(),
                }
            }
        };
        self.store(&url).await
    }
}
