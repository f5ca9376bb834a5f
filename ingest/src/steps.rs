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
//! out-of-order deliveries converge. Every write is compare-and-swap
//! (`If-None-Match: *` to create, `If-Match: <etag read before computing>`
//! to replace): an aggregate is read (etag) -> members listed -> combined ->
//! written conditionally, and rebuilt from a fresh read when another writer
//! got there first, so no update is ever lost to a slower, staler writer.
//! A single-file reference set records the source version it was made from
//! (top-level `"source"` key) and every range read of the source is pinned
//! to that version; a reference set is never replaced by one made from an
//! older source version. See the README section "Consistency model".

use bytes::Bytes;
use futures_util::StreamExt as _;
use hdf5_lite::source::{BoxFuture, SourceErrorKind};
use kerchunk::RefSet;
use kerchunk::combine::CombineOptions;
use kerchunk::fmrc::{self, BestRule, FmrcMember, HourKind, RunKinds};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use crate::config::Pipeline;
use crate::fmrc_update::{self, Done, Mode, Scope, Target};
use crate::message::{self, S3Event};
use crate::ofs_key::{self, Hour, Layout, ModelFamily, OfsKey, Parsed};
use crate::outputs::{self, OutputFormat};
use crate::store::{ObjectInfo, ObjectStore, PutCondition, StoreError, validate_prefix};

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

impl StepError {
    /// From a byte-source failure: retrying helps only for transient
    /// failures and for an object that changed while being read.
    pub fn from_source(e: &hdf5_lite::SourceError, context: &str) -> StepError {
        let msg = if context.is_empty() {
            e.to_string()
        } else {
            format!("{context}: {e}")
        };
        if e.is_transient() {
            StepError::Transient(msg)
        } else {
            StepError::Permanent(msg)
        }
    }

    /// From an engine failure (the message already names the file).
    pub fn from_hdf5(e: &hdf5_lite::Error) -> StepError {
        match e {
            hdf5_lite::Error::Source { error, .. } if error.is_transient() => {
                StepError::Transient(e.to_string())
            }
            _ => StepError::Permanent(e.to_string()),
        }
    }

    /// From a translation failure (the message already names the file).
    pub fn from_kerchunk(e: &kerchunk::Error) -> StepError {
        match e {
            kerchunk::Error::Source { error, .. } if error.is_transient() => {
                StepError::Transient(e.to_string())
            }
            _ => StepError::Permanent(e.to_string()),
        }
    }
}

/// The source object changed while it was being read (pinned read refused
/// or etag moved): the read starts again on the new version.
fn source_changed_hdf5(e: &hdf5_lite::Error) -> bool {
    matches!(e, hdf5_lite::Error::Source { error, .. } if error.kind == SourceErrorKind::Changed)
}

fn source_changed_kerchunk(e: &kerchunk::Error) -> bool {
    matches!(e, kerchunk::Error::Source { error, .. } if error.kind == SourceErrorKind::Changed)
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
fn creation_records(
    p: &Pipeline,
    body: &str,
    out: &mut Outcome,
) -> Result<Vec<message::S3Record>, StepError> {
    let event = parse_message(body)?;
    out.test_event = event.is_test_event();
    if out.test_event {
        info!("s3:TestEvent acknowledged");
        return Ok(Vec::new());
    }
    let all = event.records();
    let limit = p.config.max_records_per_message;
    if all.len() > limit {
        return Err(StepError::Permanent(format!(
            "message has {} records, more than the limit of {limit} (--max-records); nothing was done",
            all.len()
        )));
    }
    let mut records: Vec<message::S3Record> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in all {
        if r.event_name.starts_with("ObjectCreated") {
            // One version of one object is indexed once per message: the
            // same (bucket, key, etag or sequencer) repeated is a duplicate.
            let version = r.etag.clone().or_else(|| r.sequencer.clone());
            if seen.insert((r.bucket.clone(), r.key.clone(), version)) {
                records.push(r.clone());
            } else {
                info!(bucket = %r.bucket, key = %r.key, "duplicate record in one message ignored");
            }
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
    let records = creation_records(p, body, &mut out)?;
    let mut errors = Vec::new();
    for r in &records {
        let at = SourceAt {
            bucket: &r.bucket,
            key: &r.key,
            sequencer: r.sequencer.as_deref(),
        };
        match index_object_at(p, &at, dest, &prefix).await {
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
    let at = SourceAt {
        bucket,
        key,
        sequencer: None,
    };
    index_object_at(p, &at, dest, prefix).await
}

/// One source object, with the S3 event `sequencer` when a message gave
/// one (it orders the events of one key).
#[derive(Debug, Clone, Copy)]
pub struct SourceAt<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub sequencer: Option<&'a str>,
}

/// The source version a reference set was made from, stored beside
/// `"version"` and `"refs"` under the top-level key `"source"` (fsspec and
/// kerchunk ignore unknown top-level keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStamp {
    pub url: String,
    #[serde(default)]
    pub etag: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

impl SourceStamp {
    fn new(url: &str, head: &ObjectInfo, sequencer: Option<&str>) -> Self {
        SourceStamp {
            url: url.to_string(),
            etag: head.etag.clone(),
            size: head.size,
            modified_ms: head.modified_ms,
            sequencer: sequencer.map(str::to_string),
        }
    }

    /// The stamp of a stored reference set, if it has one.
    pub fn of_refs(json: &[u8]) -> Option<SourceStamp> {
        #[derive(Deserialize)]
        struct Top {
            source: Option<SourceStamp>,
        }
        serde_json::from_slice::<Top>(json).ok()?.source
    }

    /// True when `self` is certainly an older version of the same object
    /// than `other`: by S3 event sequencer when both have one (hex strings,
    /// compared after left-padding to the same length, as AWS documents),
    /// else by modification time. Equal or unknown order is not "older".
    pub fn is_older_than(&self, other: &SourceStamp) -> bool {
        if self.etag == other.etag && !self.etag.is_empty() {
            return false;
        }
        if let (Some(a), Some(b)) = (&self.sequencer, &other.sequencer) {
            let n = a.len().max(b.len());
            return format!("{a:0>n$}").to_ascii_uppercase()
                < format!("{b:0>n$}").to_ascii_uppercase();
        }
        match (self.modified_ms, other.modified_ms) {
            (Some(a), Some(b)) => a < b,
            _ => false,
        }
    }
}

/// Times the source is read again because it changed while being read or
/// before its references were written; beyond it the step is transient.
const MAX_SOURCE_READS: usize = 4;
/// Times a conditional write of one reference set is retried after 412.
const MAX_REF_WRITES: usize = 8;

/// [`index_object`] with the event's sequencer. The protocol:
/// 1. HEAD the source: its version (etag, size, modified time).
/// 2. Walk and translate with every range read pinned to that etag; a
///    changed object restarts from 1.
/// 3. Read the current reference set (etag, recorded source version). If it
///    was made from a newer source version, stop (skipped). If the source
///    is no longer the version read, restart from 1.
/// 4. Write with `If-Match` the etag from 3 (`If-None-Match: *` when there
///    was none); on 412 go back to 3.
pub async fn index_object_at(
    p: &Pipeline,
    at: &SourceAt<'_>,
    dest: &dyn ObjectStore,
    prefix: &str,
) -> Result<Indexed, StepError> {
    let (bucket, key) = (at.bucket, at.key);
    if let Err(reason) = classify_source(p, bucket, key) {
        return Ok(Indexed::Skipped(reason));
    }
    let out_key = ofs_key::single_ref_key(prefix, key)
        .map_err(|e| StepError::Permanent(format!("cannot name the output: {e}")))?;
    let url = format!("s3://{bucket}/{key}");
    let source = p.source_store(bucket).await?;
    let written = format!("{}/{out_key}", dest.url());
    // A sibling's layout (its metadata ranges are fetched in the first
    // wave), read while the source is HEADed: no extra round trip.
    let (layout, first_head) = tokio::join!(p.layouts.load(dest, prefix, &url), source.head(key));
    let mut first_head = Some(first_head);
    'read: for read in 1..=MAX_SOURCE_READS {
        let head = match first_head.take() {
            Some(h) => h,
            None => source.head(key).await,
        };
        let Some(head) = head? else {
            return Err(StepError::Permanent(format!(
                "{url}: source object does not exist"
            )));
        };
        let src = source.range_source_pinned(key, &head.etag)?;
        // The walk also fetches the chunks translate inlines, in its own waves.
        let walk = hdf5_lite::Options {
            prefetch_below: p.config.inline_threshold,
            predicted: layout.predicted(Some(head.size)),
            ..p.config.hdf5.clone()
        };
        let (file, stats, prefetched) = match hdf5_lite::open_any_prefetched(src, &walk).await {
            Ok(x) => x,
            Err(e) if source_changed_hdf5(&e) => {
                info!(source = %url, read, "source changed while being read; reading again");
                continue 'read;
            }
            Err(e) => return Err(StepError::from_hdf5(&e)),
        };
        let mut opts = kerchunk::TranslateOptions::new(url.clone());
        opts.inline_threshold = p.config.inline_threshold;
        let t = match kerchunk::translate_opened(&file, &*prefetched, &opts).await {
            Ok(t) => t,
            Err(e) if source_changed_kerchunk(&e) => {
                info!(source = %url, read, "source changed while being read; reading again");
                continue 'read;
            }
            Err(e) => return Err(StepError::from_kerchunk(&e)),
        };
        for w in &t.warnings {
            warn!(source = %url, path = %w.path, reason = %w.reason, "translation warning");
        }
        let stamp = SourceStamp::new(&url, &head, at.sequencer);
        let warnings: Vec<(String, String)> = t
            .warnings
            .iter()
            .map(|w| (w.path.clone(), w.reason.clone()))
            .collect();
        let stamp_json = serde_json::to_value(&stamp)
            .map_err(|e| StepError::Permanent(format!("{url}: cannot encode stamp: {e}")))?;
        let json = t.refs.to_json_with_source(Some(&stamp_json), &warnings);
        let body = Bytes::from(json);
        for _ in 0..MAX_REF_WRITES {
            let cond = match dest.get(&out_key).await {
                Ok((existing, etag)) => {
                    if let Some(theirs) = SourceStamp::of_refs(&existing)
                        && theirs.url == stamp.url
                        && stamp.is_older_than(&theirs)
                    {
                        return Ok(Indexed::Skipped(format!(
                            "{written} was made from a newer version of {url}"
                        )));
                    }
                    put_condition(Some(etag))
                }
                Err(StoreError::NotFound(_)) => PutCondition::IfAbsent,
                Err(e) => return Err(e.into()),
            };
            // The references describe the version read; if the object has
            // moved on since, they must not be written: read it again.
            match source.head(key).await? {
                Some(now) if now.etag == head.etag => {}
                _ => {
                    info!(source = %url, read, "source replaced before its references were written; reading again");
                    continue 'read;
                }
            }
            match dest.put(&out_key, body.clone(), cond).await {
                Ok(_) => {
                    let ranges = prefetched.layout_ranges();
                    let size = stats.file_size;
                    p.layouts
                        .store(dest, &layout, &url, size, ranges, &walk)
                        .await;
                    info!(
                        source = %url,
                        output = %written,
                        etag = %head.etag,
                        requests = stats.requests,
                        bytes_fetched = stats.bytes_fetched,
                        "indexed"
                    );
                    return Ok(Indexed::Written(written));
                }
                Err(StoreError::PreconditionFailed(_)) => {
                    info!(output = %written, "reference set written concurrently; checking again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        return Err(StepError::Transient(format!(
            "{written}: kept being rewritten concurrently ({MAX_REF_WRITES} conditional writes refused)"
        )));
    }
    Err(StepError::Transient(format!(
        "{url}: changed while being read, {MAX_SOURCE_READS} times"
    )))
}

/// Writes the aggregate's other formats (Parquet, Icechunk) after its JSON anchor was
/// written with `etag`. A slower concurrent updater may write its older
/// Parquet set after ours, so after each write the anchor is checked again:
/// if it moved on, the set is rewritten from the anchor's current content,
/// and the last writer always leaves the formats equal to the anchor.
pub(crate) async fn write_other_formats(
    p: &Pipeline,
    store: &dyn ObjectStore,
    target: &str,
    refs: kerchunk::RefSet,
    etag: String,
) -> Result<(), StepError> {
    let formats: Vec<OutputFormat> = p
        .config
        .output_formats
        .iter()
        .copied()
        .filter(|f| *f != OutputFormat::Json)
        .collect();
    if formats.is_empty() {
        return Ok(());
    }
    let (mut refs, mut etag) = (refs, etag);
    for _ in 0..p.config.max_rebuilds.max(1) {
        outputs::write_formats(p, store, target, &refs, &etag).await?;
        let (body, now) = store.get(target).await?;
        if now == etag {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body);
        refs = kerchunk::RefSet::from_json(&text)
            .map_err(|e| StepError::Permanent(format!("{}/{target}: {e}", store.url())))?;
        etag = now;
    }
    Err(StepError::Transient(format!(
        "{}/{target}: kept changing while its other formats were written",
        store.url()
    )))
}

/// `If-Match` on a known etag; a store that returns none (unusual) gets an
/// unconditional write rather than a condition that can never hold.
pub(crate) fn put_condition(etag: Option<String>) -> PutCondition {
    match etag {
        Some(e) if !e.is_empty() => PutCondition::IfMatch(e),
        Some(_) => PutCondition::None,
        None => PutCondition::IfAbsent,
    }
}

// ---------------------------------------------------------------------------
// update_model_run
// ---------------------------------------------------------------------------

/// Rebuilds the aggregates affected by every single-file reference a
/// destination-bucket message names.
pub async fn update_model_run(p: &Pipeline, body: &str) -> Result<Outcome, StepError> {
    let mut out = Outcome::default();
    let records = creation_records(p, body, &mut out)?;
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
pub(crate) fn folder_of(key: &str) -> &str {
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
pub(crate) async fn list_members(
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

pub(crate) fn member(key: &str, k: &OfsKey) -> Option<FmrcMember> {
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
pub enum View {
    Run(i64, RunKinds),
    Best(BestRule),
}

impl View {
    pub fn select<'a>(&self, members: &'a [FmrcMember]) -> Vec<&'a FmrcMember> {
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

/// [`update_for_ref`] with a choice of aggregates, incremental (see
/// [`crate::fmrc_update`]).
pub async fn update_aggregates(
    p: &Pipeline,
    store: &dyn ObjectStore,
    ref_key: &str,
    run: bool,
    best: BestMode,
) -> Result<Outcome, StepError> {
    aggregates(p, store, ref_key, run, best, Mode::Incremental).await
}

/// [`update_aggregates`] combining every member from scratch: `Mode::Full`
/// also rebuilds the member index from a listing (backfill and `rebuild`
/// run every model run, then the best series once).
pub async fn aggregates(
    p: &Pipeline,
    store: &dyn ObjectStore,
    ref_key: &str,
    run: bool,
    best: BestMode,
    mode: Mode,
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

    let mut targets = Vec::new();
    if run {
        if this.hour_kind == HourKind::Nowcast && kinds == RunKinds::Forecast {
            out.skip(&run_key, "nowcasts are not part of forecast model runs");
        } else {
            targets.push(Target {
                key: run_key.clone(),
                view: View::Run(this.cycle, kinds),
                require: None,
            });
        }
    }
    if best != BestMode::Never {
        targets.push(Target {
            key: best_key.clone(),
            view: View::Best(rule),
            require: (best == BestMode::IfMember).then(|| ref_key.to_string()),
        });
    }
    if targets.is_empty() {
        return Ok(out);
    }
    let scope = Scope {
        folder: &folder,
        k: &k,
        opts: &opts,
    };
    let done = fmrc_update::update_targets(p, store, &scope, ref_key, &targets, mode).await?;
    for (t, d) in targets.iter().zip(done) {
        match d {
            Done::Written(url) => out.written.push(url),
            Done::Unchanged => out.skip(&t.key, "already up to date"),
            Done::Empty => out.skip(&t.key, "no members"),
            Done::NotRequired => out.skip(
                &t.key,
                format!("{ref_key} is not part of the best time series"),
            ),
        }
    }
    Ok(out)
}

pub(crate) enum FetchRefsError {
    Changed(String),
    Step(StepError),
}

/// Reads and parses the selected reference sets, in order.
pub(crate) async fn fetch_refs(
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
