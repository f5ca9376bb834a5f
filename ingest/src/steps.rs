//! The pipeline's verbs, one async function each, independent of how they
//! are triggered (Argo CLI, the SQS worker, backfill).
//!
//! * [`extract_single`]: a source-bucket "object created" message -> one
//!   kerchunk reference set per OFS output file, at
//!   `{dest_prefix}/{basename}.zarr` (the original key names).
//! * [`update_model_run`]: a destination-bucket message about a single-file
//!   reference -> the model-run aggregate of that file's cycle and the best
//!   time series of its model, rebuilt from a listing of the references.
//!
//! Both are idempotent: outputs are a deterministic function of the inputs
//! (sorted JSON; aggregates of the listed member set), so duplicate and
//! out-of-order deliveries converge. Concurrent aggregate updates never lose
//! a member: after writing, the writer lists again and rebuilds while the
//! member set (keys and etags) it combined differs from the current one, so
//! the last writer always wrote what it last listed.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use hdf5_lite::RangeSource;
use hdf5_lite::source::BoxFuture;
use kerchunk::RefSet;
use kerchunk::combine::{CombineError, CombineOptions, Fetcher};
use kerchunk::fmrc::{self, BestRule, FmrcMember, HourKind, RunKinds};
use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn};

use crate::config::Pipeline;
use crate::message::{self, S3Event};
use crate::ofs_key::{self, Hour, Layout, ModelFamily, OfsKey, Parsed};
use crate::store::{ObjectStore, PutCondition, StoreError, validate_prefix};

/// What a step did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// URLs of the objects written (`s3://bucket/key`).
    pub written: Vec<String>,
    /// Objects or aggregates not touched, with the reason.
    pub skipped: Vec<Skipped>,
    /// The message was an `s3:TestEvent` (acknowledged, nothing to do).
    pub test_event: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub key: String,
    pub reason: String,
}

impl Outcome {
    fn skip(&mut self, key: &str, reason: impl Into<String>) {
        let reason = reason.into();
        info!(key, reason = %reason, "skipped");
        self.skipped.push(Skipped {
            key: key.to_string(),
            reason,
        });
    }

    fn merge(&mut self, other: Outcome) {
        self.written.extend(other.written);
        self.skipped.extend(other.skipped);
        self.test_event |= other.test_event;
    }
}

/// A failed step. Permanent failures (bad message, corrupt file, missing
/// object) will fail again; transient ones (network, store) may not.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StepError {
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

impl StepError {
    /// The CLI exit code: 1 permanent, 3 transient.
    pub fn exit_code(&self) -> u8 {
        match self {
            StepError::Permanent(_) => 1,
            StepError::Transient(_) => 3,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, StepError::Transient(_))
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            StepError::Transient(e.to_string())
        } else {
            StepError::Permanent(e.to_string())
        }
    }
}

fn parse_message(body: &str) -> Result<S3Event, StepError> {
    message::parse(body).map_err(|e| StepError::Permanent(format!("bad message: {e}")))
}

/// The object-creation records of a message, for both steps: test events
/// are acknowledged (`out.test_event`, no records) and other event kinds
/// are recorded as skipped.
fn creation_records(body: &str, out: &mut Outcome) -> Result<Vec<message::S3Record>, StepError> {
    let event = parse_message(body)?;
    out.test_event = event.is_test_event();
    if out.test_event {
        info!("s3:TestEvent acknowledged");
        return Ok(Vec::new());
    }
    let mut records = Vec::new();
    for r in event.records() {
        if r.event_name.starts_with("ObjectCreated") {
            records.push(r.clone());
        } else {
            out.skip(
                &r.key,
                format!("event {} is not an object creation", r.event_name),
            );
        }
    }
    Ok(records)
}

/// The error a message with several failed records reports (all records
/// are attempted first): a transient one if any, so the exit code says
/// "retry" whenever a retry could help.
fn first_error(errors: Vec<StepError>) -> Option<StepError> {
    errors
        .iter()
        .find(|e| e.is_transient())
        .cloned()
        .or_else(|| errors.into_iter().next())
}

// ---------------------------------------------------------------------------
// extract_single
// ---------------------------------------------------------------------------

/// Indexes every OFS output object a source-bucket message names.
pub async fn extract_single(
    p: &Pipeline,
    body: &str,
    dest: &dyn ObjectStore,
    dest_prefix: &str,
) -> Result<Outcome, StepError> {
    let prefix = validate_prefix(dest_prefix)?;
    let mut out = Outcome::default();
    let records = creation_records(body, &mut out)?;
    let mut errors = Vec::new();
    for r in &records {
        match index_object(p, &r.bucket, &r.key, dest, &prefix).await {
            Ok(Indexed::Written(url)) => out.written.push(url),
            Ok(Indexed::Skipped(reason)) => out.skip(&r.key, reason),
            Err(e) => {
                warn!(bucket = %r.bucket, key = %r.key, error = %e, "indexing failed");
                errors.push(e);
            }
        }
    }
    match first_error(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Result of [`index_object`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    Written(String),
    Skipped(String),
}

/// Why `bucket/key` is not indexed under this configuration, or its parsed
/// key.
pub fn classify_source(p: &Pipeline, bucket: &str, key: &str) -> Result<OfsKey, String> {
    if !p.config.is_source_bucket(bucket) {
        return Err(format!(
            "bucket {bucket:?} is not a configured source bucket"
        ));
    }
    let k = match ofs_key::parse(key) {
        Ok(Parsed::Output(k)) => k,
        Ok(Parsed::Skip(reason)) => return Err(format!("{} ({})", reason, reason.code())),
        Err(e) => return Err(format!("not an OFS output key: {e}")),
    };
    if let Some(why) = p.config.excludes(&k) {
        return Err(why);
    }
    if !matches!(k.hour, Hour::Nowcast(_) | Hour::Forecast(_)) {
        return Err("station files are not indexed".into());
    }
    Ok(k)
}

/// Translates one source object (range reads only) and writes its
/// reference set to `{prefix}/{basename}.zarr` in `dest`.
pub async fn index_object(
    p: &Pipeline,
    bucket: &str,
    key: &str,
    dest: &dyn ObjectStore,
    prefix: &str,
) -> Result<Indexed, StepError> {
    if let Err(reason) = classify_source(p, bucket, key) {
        return Ok(Indexed::Skipped(reason));
    }
    let out_key = ofs_key::single_ref_key(prefix, key)
        .map_err(|e| StepError::Permanent(format!("cannot name the output: {e}")))?;
    let url = format!("s3://{bucket}/{key}");
    let source = p.source_store(bucket).await?;
    if source.head(key).await?.is_none() {
        return Err(StepError::Permanent(format!(
            "{url}: source object does not exist"
        )));
    }
    let src = source.range_source(key)?;
    // The walk also fetches the chunks translate inlines, in its own waves.
    let walk = hdf5_lite::Options {
        prefetch_below: p.config.inline_threshold,
        ..p.config.hdf5.clone()
    };
    let (file, stats, prefetched) = hdf5_lite::open_prefetched(src.clone(), &walk)
        .await
        .map_err(|e| match e {
            hdf5_lite::Error::Source { .. } => StepError::Transient(format!("{url}: {e}")),
            other => StepError::Permanent(format!("{url}: {other}")),
        })?;
    let mut opts = kerchunk::TranslateOptions::new(url.clone());
    opts.inline_threshold = p.config.inline_threshold;
    let t = kerchunk::translate(&file, &*prefetched, &opts)
        .await
        .map_err(|e| match e {
            kerchunk::Error::Parse(_) => StepError::Permanent(format!("{url}: {e}")),
            other => StepError::Transient(format!("{url}: {other}")),
        })?;
    for w in &t.warnings {
        warn!(source = %url, path = %w.path, reason = %w.reason, "translation warning");
    }
    let json = t.to_json();
    dest.put(&out_key, Bytes::from(json), PutCondition::None)
        .await?;
    let written = format!("{}/{out_key}", dest.url());
    info!(
        source = %url,
        output = %written,
        requests = stats.requests,
        bytes_fetched = stats.bytes_fetched,
        "indexed"
    );
    Ok(Indexed::Written(written))
}

// ---------------------------------------------------------------------------
// update_model_run
// ---------------------------------------------------------------------------

/// Rebuilds the aggregates affected by every single-file reference a
/// destination-bucket message names.
pub async fn update_model_run(p: &Pipeline, body: &str) -> Result<Outcome, StepError> {
    let mut out = Outcome::default();
    let records = creation_records(body, &mut out)?;
    let mut errors = Vec::new();
    for r in &records {
        let store = p.dest_store(&r.bucket).await?;
        if store.bucket() != r.bucket {
            out.skip(
                &r.key,
                format!("bucket {} is not the destination {}", r.bucket, store.url()),
            );
            continue;
        }
        match update_for_ref(p, &*store, &r.key).await {
            Ok(o) => out.merge(o),
            Err(e) => {
                warn!(bucket = %r.bucket, key = %r.key, error = %e, "update failed");
                errors.push(e);
            }
        }
    }
    match first_error(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The combine settings of a model family: ROMS `ocean_time` and FVCOM
/// `time` with the original pipeline's identical dims.
pub fn combine_options(family: ModelFamily, inline_threshold: u64) -> Option<CombineOptions> {
    let mut o = match family {
        ModelFamily::Roms => CombineOptions::roms(),
        ModelFamily::Fvcom => CombineOptions::fvcom(),
        ModelFamily::Schism => CombineOptions::new("time"),
        ModelFamily::Unknown => return None,
    };
    o.inline_threshold = inline_threshold;
    Some(o)
}

/// The folder a reference key sits in (`nos` for `nos/x.zarr`).
fn folder_of(key: &str) -> &str {
    key.rsplit_once('/').map(|(f, _)| f).unwrap_or("")
}

/// Listing prefix that covers every single-file reference of `k`'s model,
/// kind and naming scheme (and little else).
fn member_prefix(folder: &str, k: &OfsKey) -> String {
    let name = match k.layout {
        Layout::Legacy => format!("nos.{}.{}.", k.model, k.kind.token()),
        Layout::Current => format!("{}.t", k.model),
    };
    if folder.is_empty() {
        name
    } else {
        format!("{folder}/{name}")
    }
}

/// The FMRC members (with etags) under `folder` that belong with `k`.
async fn list_members(
    store: &dyn ObjectStore,
    folder: &str,
    k: &OfsKey,
) -> Result<Vec<(FmrcMember, String)>, StepError> {
    let listing = store.list(&member_prefix(folder, k)).await?;
    let mut out = Vec::new();
    for o in listing {
        if folder_of(&o.key) != folder {
            continue;
        }
        let Ok(Parsed::Output(m)) = ofs_key::parse_single_ref_key(&o.key) else {
            continue;
        };
        if m.model != k.model || m.kind != k.kind || m.layout != k.layout {
            continue;
        }
        if let Some(fm) = member(&o.key, &m) {
            out.push((fm, o.etag));
        }
    }
    Ok(out)
}

fn member(key: &str, k: &OfsKey) -> Option<FmrcMember> {
    let (hour_kind, hour) = match k.hour {
        Hour::Nowcast(h) => (HourKind::Nowcast, h),
        Hour::Forecast(h) => (HourKind::Forecast, h),
        _ => return None,
    };
    Some(FmrcMember {
        key: key.to_string(),
        cycle: k.cycle_time().unix_seconds(),
        hour_kind,
        hour,
        valid: k.valid_time()?.unix_seconds(),
    })
}

/// Which aggregate to rebuild.
#[derive(Debug, Clone, Copy)]
enum View {
    Run(i64, RunKinds),
    Best(BestRule),
}

impl View {
    fn select<'a>(&self, members: &'a [FmrcMember]) -> Vec<&'a FmrcMember> {
        match *self {
            View::Run(cycle, kinds) => fmrc::model_run(members, cycle, kinds),
            View::Best(rule) => fmrc::best_time_series(members, rule),
        }
    }
}

/// When the best time series is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BestMode {
    /// Only when the triggering reference is part of it (the original rule:
    /// a member that is not selected cannot change the selection).
    IfMember,
    Always,
    Never,
}

/// Rebuilds the model run and best series for one single-file reference key.
pub async fn update_for_ref(
    p: &Pipeline,
    store: &dyn ObjectStore,
    ref_key: &str,
) -> Result<Outcome, StepError> {
    update_aggregates(p, store, ref_key, true, BestMode::IfMember).await
}

/// [`update_for_ref`] with a choice of aggregates (backfill rebuilds every
/// run, then the best series once).
pub async fn update_aggregates(
    p: &Pipeline,
    store: &dyn ObjectStore,
    ref_key: &str,
    run: bool,
    best: BestMode,
) -> Result<Outcome, StepError> {
    let mut out = Outcome::default();
    let k = match ofs_key::parse_single_ref_key(ref_key) {
        Ok(Parsed::Output(k)) => k,
        Ok(Parsed::Skip(reason)) => {
            out.skip(ref_key, format!("{reason} ({})", reason.code()));
            return Ok(out);
        }
        Err(e) => {
            out.skip(ref_key, format!("not a single-file reference key: {e}"));
            return Ok(out);
        }
    };
    if let Some(why) = p.config.excludes(&k) {
        out.skip(ref_key, why);
        return Ok(out);
    }
    let Some(this) = member(ref_key, &k) else {
        out.skip(ref_key, "station files are not aggregated");
        return Ok(out);
    };
    let Some(opts) = combine_options(k.family(), p.config.inline_threshold) else {
        out.skip(
            ref_key,
            format!("model {} has no known time dimension", k.model),
        );
        return Ok(out);
    };
    let folder = folder_of(ref_key).to_string();
    let run_key = ofs_key::model_run_key(&folder, &k)
        .map_err(|e| StepError::Permanent(format!("cannot name the model run: {e}")))?;
    let best_key = ofs_key::best_key(&folder, &k)
        .map_err(|e| StepError::Permanent(format!("cannot name the best series: {e}")))?;
    let (kinds, rule) = if p.config.include_nowcasts {
        (RunKinds::Both, BestRule::NewestCycle)
    } else {
        (RunKinds::Forecast, BestRule::Original)
    };

    if run {
        if this.hour_kind == HourKind::Nowcast && kinds == RunKinds::Forecast {
            out.skip(&run_key, "nowcasts are not part of forecast model runs");
        } else {
            let view = View::Run(this.cycle, kinds);
            match rebuild(p, store, &folder, &k, &run_key, view, &opts, None).await? {
                Some(url) => out.written.push(url),
                None => out.skip(&run_key, "no members"),
            }
        }
    }

    if best == BestMode::Never {
        return Ok(out);
    }
    let view = View::Best(rule);
    let require = (best == BestMode::IfMember).then_some(ref_key);
    match rebuild(p, store, &folder, &k, &best_key, view, &opts, require).await? {
        Some(url) => out.written.push(url),
        None => out.skip(
            &best_key,
            format!("{ref_key} is not part of the best time series"),
        ),
    }
    Ok(out)
}

/// List, select, combine, write, list again; repeat while the selected
/// members (keys and etags) changed underneath. `require`: do nothing
/// unless this key is selected (the original best-series rule). `None`
/// when nothing was written.
#[allow(clippy::too_many_arguments)]
async fn rebuild(
    p: &Pipeline,
    store: &dyn ObjectStore,
    folder: &str,
    k: &OfsKey,
    target: &str,
    view: View,
    opts: &CombineOptions,
    require: Option<&str>,
) -> Result<Option<String>, StepError> {
    let mut listed = list_members(store, folder, k).await?;
    for attempt in 1..=p.config.max_rebuilds.max(1) {
        let members: Vec<FmrcMember> = listed.iter().map(|(m, _)| m.clone()).collect();
        let etags: HashMap<&str, &str> = listed
            .iter()
            .map(|(m, e)| (m.key.as_str(), e.as_str()))
            .collect();
        let selected: Vec<(String, String)> = view
            .select(&members)
            .into_iter()
            .map(|m| {
                let e = etags.get(m.key.as_str()).copied().unwrap_or_default();
                (m.key.clone(), e.to_string())
            })
            .collect();
        if selected.is_empty() {
            return Ok(None);
        }
        if let Some(req) = require
            && !selected.iter().any(|(key, _)| key == req)
        {
            return Ok(None);
        }
        let inputs = match fetch_refs(p, store, &selected).await {
            Ok(i) => i,
            // A member vanished or changed between list and get: start over.
            Err(FetchRefsError::Changed(why)) => {
                info!(target, attempt, reason = %why, "member set changed, rebuilding");
                listed = list_members(store, folder, k).await?;
                continue;
            }
            Err(FetchRefsError::Step(e)) => return Err(e),
        };
        let fetcher = SourceFetcher::new(p);
        let refs = kerchunk::combine::combine_fetching(&inputs, opts, &fetcher)
            .await
            .map_err(|e| match e {
                CombineError::Fetch { .. } => {
                    StepError::Transient(format!("{}/{target}: {e}", store.url()))
                }
                other => StepError::Permanent(format!("{}/{target}: {other}", store.url())),
            })?;
        store
            .put(target, Bytes::from(refs.to_json()), PutCondition::None)
            .await?;
        let again = list_members(store, folder, k).await?;
        let again_members: Vec<FmrcMember> = again.iter().map(|(m, _)| m.clone()).collect();
        let again_etags: HashMap<&str, &str> = again
            .iter()
            .map(|(m, e)| (m.key.as_str(), e.as_str()))
            .collect();
        let now: Vec<(String, String)> = view
            .select(&again_members)
            .into_iter()
            .map(|m| {
                let e = again_etags.get(m.key.as_str()).copied().unwrap_or_default();
                (m.key.clone(), e.to_string())
            })
            .collect();
        if now == selected {
            let url = format!("{}/{target}", store.url());
            info!(output = %url, members = selected.len(), attempt, "aggregate written");
            return Ok(Some(url));
        }
        info!(
            target,
            attempt, "member set changed while writing, rebuilding"
        );
        listed = again;
    }
    Err(StepError::Transient(format!(
        "{}/{target}: member set kept changing after {} rebuilds",
        store.url(),
        p.config.max_rebuilds
    )))
}

enum FetchRefsError {
    Changed(String),
    Step(StepError),
}

/// Reads and parses the selected reference sets, in order.
async fn fetch_refs(
    p: &Pipeline,
    store: &dyn ObjectStore,
    selected: &[(String, String)],
) -> Result<Vec<(String, RefSet)>, FetchRefsError> {
    // Boxed so the stream's futures are `Send` for any lifetime (the
    // worker spawns these steps on the multi-threaded runtime).
    let futs: Vec<BoxFuture<'_, Result<(String, RefSet), FetchRefsError>>> = selected
        .iter()
        .map(|(key, etag)| -> BoxFuture<'_, _> { Box::pin(fetch_ref(store, key, etag)) })
        .collect();
    let results: Vec<Result<(String, RefSet), FetchRefsError>> = futures_util::stream::iter(futs)
        .buffered(p.config.io_concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn fetch_ref(
    store: &dyn ObjectStore,
    key: &str,
    etag: &str,
) -> Result<(String, RefSet), FetchRefsError> {
    let name = format!("{}/{key}", store.url());
    let (body, got) = match store.get(key).await {
        Ok(x) => x,
        Err(StoreError::NotFound(_)) => {
            return Err(FetchRefsError::Changed(format!("{name} disappeared")));
        }
        Err(e) => return Err(FetchRefsError::Step(e.into())),
    };
    if !etag.is_empty() && !got.is_empty() && got != etag {
        return Err(FetchRefsError::Changed(format!("{name} was rewritten")));
    }
    let text = std::str::from_utf8(&body).map_err(|e| {
        FetchRefsError::Step(StepError::Permanent(format!("{name}: not UTF-8: {e}")))
    })?;
    let refs = RefSet::from_json(text)
        .map_err(|e| FetchRefsError::Step(StepError::Permanent(format!("{name}: {e}"))))?;
    Ok((name, refs))
}

/// Reads the byte ranges aggregates need (coordinate chunks, small chunks
/// to inline) from the configured source buckets only.
pub struct SourceFetcher<'a> {
    p: &'a Pipeline,
    sources: tokio::sync::Mutex<HashMap<String, Arc<dyn RangeSource>>>,
}

impl<'a> SourceFetcher<'a> {
    pub fn new(p: &'a Pipeline) -> Self {
        SourceFetcher {
            p,
            sources: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn source(&self, url: &str) -> Result<Arc<dyn RangeSource>, String> {
        let mut cache = self.sources.lock().await;
        if let Some(s) = cache.get(url) {
            return Ok(s.clone());
        }
        let Some((bucket, key)) = url.strip_prefix("s3://").and_then(|r| r.split_once('/')) else {
            return Err(format!("{url}: not an s3:// reference"));
        };
        let store = self
            .p
            .source_store(bucket)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let src = store.range_source(key).map_err(|e| format!("{url}: {e}"))?;
        cache.insert(url.to_string(), src.clone());
        Ok(src)
    }
}

impl Fetcher for SourceFetcher<'_> {
    fn fetch<'b>(
        &'b self,
        url: &'b str,
        ranges: &'b [Range<u64>],
    ) -> BoxFuture<'b, Result<Vec<Bytes>, String>> {
        Box::pin(async move {
            let src = self.source(url).await?;
            src.get_ranges(ranges).await.map_err(|e| e.to_string())
        })
    }
}
