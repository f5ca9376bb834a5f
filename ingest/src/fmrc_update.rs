//! Keeping FMRC aggregates (model runs, best series) current at a cost that
//! depends on what changed, not on the history (issue 17).
//!
//! An update of one single-file reference `R`:
//! 1. reads every target aggregate it will write (body + etag);
//! 2. reads the member index ([`crate::fmrc_index`]), *after* the targets,
//!    and registers `R` in it (compare-and-swap; skipped when `R` is
//!    already there with the same etag);
//! 3. per target: selects the members it should hold from the index
//!    (`kerchunk::fmrc`), and **splices**: the target's current content is
//!    cut into pieces along time (`kerchunk::combine::slice_concat`),
//!    leaving out positions whose member is no longer selected and `R`
//!    itself, and the pieces are combined with the members that are
//!    missing (normally just `R`). The pieces carry the old members' time
//!    values inline, so old members are neither fetched nor is their time
//!    coordinate read. Combining pieces gives the same bytes as combining
//!    every member from scratch (tested in `kerchunk` and against
//!    `backfill` here); where that cannot be shown for a target (no
//!    target yet, a position that names no single member, the earliest
//!    member would change to one that is not being added, chunks longer
//!    than one step along time) it is combined from all its members;
//! 4. writes each changed target with `If-Match` on the etag of step 1
//!    (`If-None-Match: *` to create); on 412, steps 1-4 again for that
//!    target.
//!
//! Why this loses nothing: the index only grows between rebuilds, and a
//! writer registers its member before it reads the targets it writes.
//! Whoever wrote the version of a target that our conditional write
//! replaces read the index before we did (it read it before writing, we
//! after reading that version), so our index holds all its members and
//! our output does too. A member whose reference was rewritten is spliced
//! again by the update its rewrite triggers, whose read of the reference
//! follows its read of the target.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use bytes::Bytes;
use kerchunk::RefSet;
use kerchunk::combine::{
    CombineError, CombineOptions, GraftEdits, concat_arrays, concat_positions, graft, graft_edits,
    position, slice_concat,
};
use kerchunk::fmrc::FmrcMember;
use kerchunk::json::Json;
use kerchunk::refs_text::{Located, RefsText, SortedText};
use tracing::{info, warn};

use crate::config::Pipeline;
use crate::fmrc_index;
use crate::ofs_key::{self, OfsKey};
use crate::outputs::OutputFormat;
use crate::sources::SourceResolver;
use crate::steps::{self, FetchRefsError, StepError, View};
use crate::store::{ObjectStore, StoreError};

/// How an update finds and uses members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Register the triggering reference in the index and splice.
    Incremental,
    /// Rebuild the index from a listing, then combine every target from
    /// all its members (`backfill`, `rebuild`).
    Full,
    /// Combine every target from all its members as the index lists them
    /// (after a [`Mode::Full`] step rebuilt it).
    FullFromIndex,
}

/// One aggregate to keep current.
#[derive(Debug, Clone)]
pub struct Target {
    pub key: String,
    pub view: View,
    /// Do nothing unless this member is selected (the original best-series
    /// rule).
    pub require: Option<String>,
}

/// What happened to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Written; the URL.
    Written(String),
    /// The content was already what it should be.
    Unchanged,
    /// No member selected.
    Empty,
    /// `require` is not selected.
    NotRequired,
}

async fn get_opt(store: &dyn ObjectStore, key: &str) -> Result<Option<(Bytes, String)>, StepError> {
    match store.get(key).await {
        Ok(x) => Ok(Some(x)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The reference key of the member whose source is `url` (`s3://b/key`).
fn member_key(url: &str, folder: &str) -> Option<String> {
    let (_, key) = url.strip_prefix("s3://")?.split_once('/')?;
    ofs_key::single_ref_key(folder, key).ok()
}

/// How to splice a target: the runs of its positions to keep, and the
/// members to add.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    runs: Vec<Range<u64>>,
    add: Vec<String>,
}

/// The splice of `cur` (the target's current content) into `want`, or
/// `None` when it cannot be shown to equal combining `want` from scratch.
fn plan(
    cur: &RefSet,
    dim: &str,
    want: &[FmrcMember],
    refresh: &str,
    scope: &Scope<'_>,
    known: &Known<'_>,
) -> Option<Plan> {
    let (folder, k) = (scope.folder, scope.k);
    let urls = concat_positions("target", cur, dim).ok()?;
    // The index's members are parsed already: a position names one of them
    // nearly always (its key is not parsed again).
    let at: Vec<FmrcMember> = urls
        .iter()
        .map(|u| {
            let key = member_key(u.as_deref()?, folder)?;
            match known.get(key.as_str()) {
                Some(m) => Some((*m).clone()),
                None => fmrc_index::member_of(&key, folder, k),
            }
        })
        .collect::<Option<_>>()?;
    // One member per position, in valid-time order (what a combine of the
    // members in selection order produces).
    if !at.windows(2).all(|w| w[0].valid < w[1].valid) {
        return None;
    }
    let wanted: HashSet<&str> = want.iter().map(|m| m.key.as_str()).collect();
    let kept: Vec<bool> = at
        .iter()
        .map(|m| m.key != refresh && wanted.contains(m.key.as_str()))
        .collect();
    let kept_keys: HashSet<&str> = at
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .map(|(m, _)| m.key.as_str())
        .collect();
    let add: Vec<&FmrcMember> = want
        .iter()
        .filter(|m| !kept_keys.contains(m.key.as_str()))
        .collect();
    // Static arrays and attributes come from the earliest input: it must be
    // the earliest member itself (a piece starting at position 0, or added).
    let first = want.first()?;
    if kept_keys.contains(first.key.as_str())
        && !(kept.first() == Some(&true) && at[0].key == first.key)
    {
        return None;
    }
    let mut runs = Vec::new();
    let mut start: Option<usize> = None;
    for i in 0..=at.len() {
        let keep = kept.get(i).copied().unwrap_or(false);
        let between = |a: &FmrcMember| {
            i > 0 && i < at.len() && at[i - 1].valid < a.valid && a.valid < at[i].valid
        };
        let cut = !keep || add.iter().any(|a| between(a));
        if let Some(s) = start.filter(|_| cut) {
            runs.push(s as u64..i as u64);
            start = None;
        }
        if keep && start.is_none() {
            start = Some(i);
        }
    }
    Some(Plan {
        runs,
        add: add.into_iter().map(|m| m.key.clone()).collect(),
    })
}

/// The index's members by reference key.
type Known<'m> = HashMap<&'m str, &'m FmrcMember>;

/// Whether formats other than the JSON anchor are written.
fn other_formats(p: &Pipeline) -> bool {
    p.config
        .output_formats
        .iter()
        .any(|f| *f != OutputFormat::Json)
}

/// The members a combined target holds, position by position.
fn holds(refs: &RefSet, dim: &str, folder: &str) -> Option<Vec<String>> {
    concat_positions("output", refs, dim)
        .ok()?
        .iter()
        .map(|u| member_key(u.as_deref()?, folder))
        .collect()
}

/// Reads and parses reference sets; `this` is the triggering reference,
/// already read.
async fn fetch(
    p: &Pipeline,
    store: &dyn ObjectStore,
    keys: &[String],
    this: Option<(&str, &Bytes)>,
) -> Result<Vec<(String, RefSet)>, FetchRefsError> {
    let others: Vec<(String, String)> = keys
        .iter()
        .filter(|k| this.is_none_or(|(t, _)| t != k.as_str()))
        .map(|k| (k.clone(), String::new()))
        .collect();
    let mut got = steps::fetch_refs(p, store, &others).await?;
    if let Some((key, body)) = this.filter(|(t, _)| keys.iter().any(|k| k == t)) {
        let name = format!("{}/{key}", store.url());
        let text = std::str::from_utf8(body).map_err(|e| {
            FetchRefsError::Step(StepError::Permanent(format!("{name}: not UTF-8: {e}")))
        })?;
        let refs = RefSet::from_json(text)
            .map_err(|e| FetchRefsError::Step(StepError::Permanent(format!("{name}: {e}"))))?;
        got.push((name, refs));
    }
    Ok(got)
}

/// Everything one update needs to know about its model.
pub struct Scope<'a> {
    pub folder: &'a str,
    pub k: &'a OfsKey,
    pub opts: &'a CombineOptions,
}

/// Brings every target up to date (see the module documentation). `this`:
/// the triggering reference key (registered and always re-read in
/// [`Mode::Incremental`]).
pub async fn update_targets(
    p: &Pipeline,
    store: &dyn ObjectStore,
    scope: &Scope<'_>,
    this: &str,
    targets: &[Target],
    mode: Mode,
) -> Result<Vec<Done>, StepError> {
    let (folder, k) = (scope.folder, scope.k);
    let mut done: Vec<Option<Done>> = vec![None; targets.len()];
    let mut relist = mode == Mode::Full;
    let max = p.config.max_rebuilds.max(1);
    for attempt in 1..=max {
        let pending: Vec<usize> = (0..targets.len()).filter(|&i| done[i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        // 1. The targets, before the index.
        let mut cur = Vec::with_capacity(pending.len());
        for &i in &pending {
            cur.push(get_opt(store, &targets[i].key).await?);
        }
        // 2. The index, registering `this`.
        let index_key = fmrc_index::index_key(folder, k);
        let (mut index, read_etag, mut dirty) = if relist {
            let old = get_opt(store, &index_key).await?;
            let index = fmrc_index::from_listing(store, folder, k).await?;
            let dirty = old.as_ref().map(|(b, _)| b.as_ref()) != Some(index.to_json().as_ref());
            (index, old.map(|(_, e)| e), dirty)
        } else {
            let l = fmrc_index::load(store, folder, k).await?;
            (l.index, l.etag, l.from_listing)
        };
        let mut this_body = None;
        if mode == Mode::Incremental {
            match get_opt(store, this).await? {
                Some((body, etag)) => {
                    dirty |= index.members.insert(this.to_string(), etag.clone()) != Some(etag);
                    this_body = Some(body);
                }
                None => dirty |= index.members.remove(this).is_some(),
            }
        }
        if dirty {
            match fmrc_index::store(store, folder, k, &index, read_etag.as_deref()).await? {
                Some(_) => relist = false,
                None => {
                    info!(index = %index_key, attempt, "member index written concurrently; reading again");
                    continue;
                }
            }
        }
        let members = index.fmrc_members(folder, k);
        let known: Known<'_> = members.iter().map(|m| (m.key.as_str(), m)).collect();
        // 3-4. Each target.
        for (&i, cur) in pending.iter().zip(cur) {
            let t = &targets[i];
            let want: Vec<FmrcMember> = t.view.select(&members).into_iter().cloned().collect();
            if want.is_empty() {
                done[i] = Some(Done::Empty);
                continue;
            }
            if let Some(req) = &t.require
                && !want.iter().any(|m| &m.key == req)
            {
                done[i] = Some(Done::NotRequired);
                continue;
            }
            let this_ref = this_body.as_ref().map(|b| (this, b));
            let combined = match combine_target(
                p,
                store,
                scope,
                t,
                cur.as_ref(),
                &want,
                &known,
                this_ref,
                mode,
            )
            .await
            {
                Ok(r) => r,
                Err(FetchRefsError::Changed(why)) => {
                    // The index names a reference that is gone or moved:
                    // list again next time.
                    warn!(target = %t.key, reason = %why, "member index out of date; rebuilding it from a listing");
                    relist = true;
                    continue;
                }
                Err(FetchRefsError::Step(e)) => return Err(e),
            };
            let body = combined.to_body();
            if let Some((b, etag)) = &cur
                && *b == body
            {
                // The anchor is current; the other formats may not be (a
                // format just enabled, or a writer that died between the
                // two): written again from it.
                if other_formats(p) {
                    let refs = combined.into_refs(&t.key)?;
                    steps::write_other_formats(p, store, &t.key, refs, etag.clone()).await?;
                }
                done[i] = Some(Done::Unchanged);
                continue;
            }
            let cond = steps::put_condition(cur.map(|(_, e)| e));
            let url = format!("{}/{}", store.url(), t.key);
            match store.put(&t.key, body, cond).await {
                Ok(etag) => {
                    info!(output = %url, members = want.len(), attempt, "aggregate written");
                    if other_formats(p) {
                        let refs = combined.into_refs(&t.key)?;
                        steps::write_other_formats(p, store, &t.key, refs, etag).await?;
                    }
                    done[i] = Some(Done::Written(url));
                }
                Err(StoreError::PreconditionFailed(_)) => {
                    info!(target = %t.key, attempt, "aggregate written concurrently; updating again");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut out = Vec::with_capacity(done.len());
    for (d, t) in done.into_iter().zip(targets) {
        match d {
            Some(d) => out.push(d),
            None => {
                return Err(StepError::Transient(format!(
                    "{}/{}: written concurrently {max} times in a row; giving up for now",
                    store.url(),
                    t.key
                )));
            }
        }
    }
    Ok(out)
}

/// The target's new content: spliced when [`plan`] allows it and the
/// result holds exactly `want`, else combined from every member.
#[allow(clippy::too_many_arguments)]
async fn combine_target(
    p: &Pipeline,
    store: &dyn ObjectStore,
    scope: &Scope<'_>,
    t: &Target,
    cur: Option<&(Bytes, String)>,
    want: &[FmrcMember],
    known: &Known<'_>,
    this: Option<(&str, &Bytes)>,
    mode: Mode,
) -> Result<Content, FetchRefsError> {
    let (folder, opts) = (scope.folder, scope.opts);
    let dim = opts.concat_dim.as_str();
    let url = format!("{}/{}", store.url(), t.key);
    let fetcher = SourceResolver::new(p);
    let step_err = |e: CombineError, _: &SourceResolver<'_>| match e {
        CombineError::Fetch { ref error, .. } if error.is_transient() => {
            StepError::Transient(format!("{url}: {e}"))
        }
        other => StepError::Permanent(format!("{url}: {other}")),
    };
    let keys: Vec<&str> = want.iter().map(|m| m.key.as_str()).collect();
    let refresh = this.map_or("", |(k, _)| k);
    let mut added_cache = None;
    if mode == Mode::Incremental
        && let Some((body, _)) = cur
        && let Ok(text) = std::str::from_utf8(body)
    {
        let ctx = TextGraft {
            p,
            store,
            scope,
            t,
            want,
            keys: &keys,
            this,
            url: &url,
            fetcher: &fetcher,
            known,
        };
        // Without a scan first (binary search over the text), then with
        // one, then parsed.
        let mut got = Ok(None);
        if let Some(st) = SortedText::open(text) {
            got = ctx.run_sorted(&st, &mut added_cache).await;
        }
        if matches!(got, Ok(None))
            && let Some(rt) = RefsText::scan(text)
        {
            got = ctx.run(&rt, &mut added_cache).await;
        }
        match got {
            Ok(Some(json)) => return Ok(Content::Text(Bytes::from(json))),
            Ok(None) => {}
            Err(FetchRefsError::Step(e)) if e.is_transient() || added_cache.is_none() => {
                return Err(FetchRefsError::Step(e));
            }
            Err(e) => return Err(e),
        }
    }
    if mode == Mode::Incremental
        && let Some((body, _)) = cur
        && let Ok(cur_refs) = RefSet::from_json(&String::from_utf8_lossy(body))
        && let Some(plan) = plan(&cur_refs, dim, want, refresh, scope, known)
    {
        let added = match added_cache.take() {
            Some(a) => a,
            None => fetch(p, store, &plan.add, this).await?,
        };
        let piece_name = |r: &Range<u64>| format!("{url} [{}..{})", r.start, r.end);
        let same = |h: Option<Vec<String>>, want: &[&str]| {
            h.is_some_and(|h| h.iter().map(String::as_str).eq(want.iter().copied()))
        };
        // Graft: the first run (normally almost all of the target) stays
        // as it is; only its last position (the anchor) and what follows
        // are combined, and grafted on.
        if let Some(first) = plan.runs.first().filter(|r| r.start == 0 && r.end > 0) {
            let end = first.end;
            let anchor = usize::try_from(end - 1).unwrap_or(usize::MAX);
            let mut tail = Vec::with_capacity(plan.runs.len() + added.len());
            let mut cut_ok = true;
            for r in std::iter::once(end - 1..end).chain(plan.runs.iter().skip(1).cloned()) {
                match slice_concat(&url, &cur_refs, dim, r.clone()) {
                    Ok(piece) => tail.push((piece_name(&r), piece)),
                    Err(_) => cut_ok = false,
                }
            }
            tail.extend(added.iter().cloned());
            if cut_ok && let Some(tail_keys) = keys.get(anchor..) {
                match kerchunk::combine::combine_fetching(&tail, opts, &fetcher).await {
                    Ok(t_refs) if same(holds(&t_refs, dim, folder), tail_keys) => {
                        match graft(&url, cur_refs, dim, end, &t_refs) {
                            Ok(refs) => {
                                info!(target = %t.key, kept = end, added = plan.add.len(), "aggregate spliced (graft)");
                                return Ok(Content::Refs(refs));
                            }
                            Err(e) => {
                                info!(target = %t.key, error = %e, "cannot graft; combining every member");
                                return full(p, store, &keys, this, opts, &fetcher, &step_err)
                                    .await
                                    .map(Content::Refs);
                            }
                        }
                    }
                    Err(e @ CombineError::Fetch { .. }) => {
                        return Err(FetchRefsError::Step(step_err(e, &fetcher)));
                    }
                    _ => info!(target = %t.key, "cannot graft; splicing"),
                }
            }
        }
        let mut inputs = Vec::with_capacity(plan.runs.len() + added.len());
        let mut cut_ok = true;
        for r in &plan.runs {
            match slice_concat(&url, &cur_refs, dim, r.clone()) {
                Ok(piece) => inputs.push((piece_name(r), piece)),
                Err(_) => cut_ok = false,
            }
        }
        if cut_ok {
            inputs.extend(added);
            match kerchunk::combine::combine_fetching(&inputs, opts, &fetcher).await {
                Ok(refs) if same(holds(&refs, dim, folder), &keys) => {
                    info!(target = %t.key, kept = plan.runs.len(), added = plan.add.len(), "aggregate spliced");
                    return Ok(Content::Refs(refs));
                }
                Ok(_) => {
                    info!(target = %t.key, "splice does not hold the selection; combining every member")
                }
                Err(e @ CombineError::Fetch { .. }) => {
                    return Err(FetchRefsError::Step(step_err(e, &fetcher)));
                }
                Err(e) => {
                    info!(target = %t.key, error = %e, "cannot splice; combining every member")
                }
            }
        }
    }
    full(p, store, &keys, this, opts, &fetcher, &step_err)
        .await
        .map(Content::Refs)
}

/// A target's new content: a parsed set, or JSON text spliced as text.
enum Content {
    Refs(RefSet),
    /// Spliced JSON (shared with the body written: never copied again).
    Text(Bytes),
}

impl Content {
    fn to_body(&self) -> Bytes {
        match self {
            Content::Refs(r) => Bytes::from(r.to_json()),
            Content::Text(t) => t.clone(),
        }
    }

    /// The parsed set (for the other output formats).
    fn into_refs(self, name: &str) -> Result<RefSet, StepError> {
        match self {
            Content::Refs(r) => Ok(r),
            Content::Text(t) => std::str::from_utf8(&t)
                .map_err(|e| e.to_string())
                .and_then(|t| RefSet::from_json(t).map_err(|e| e.to_string()))
                .map_err(|e| StepError::Permanent(format!("{name}: {e}"))),
        }
    }
}

fn same(h: Option<Vec<String>>, want: &[&str]) -> bool {
    h.is_some_and(|h| h.iter().map(String::as_str).eq(want.iter().copied()))
}

/// The graft of [`combine_target`] on the stored JSON text: only the
/// metadata, one array's chunks (to name the members) and the entries
/// from the anchor on are parsed; the edits are applied to the text, every
/// other entry copied as it is ([`RefsText`]). `Ok(None)`: not applicable,
/// the caller splices the parsed set.
struct TextGraft<'x, 'p> {
    p: &'p Pipeline,
    store: &'x dyn ObjectStore,
    scope: &'x Scope<'x>,
    t: &'x Target,
    want: &'x [FmrcMember],
    keys: &'x [&'x str],
    this: Option<(&'x str, &'x Bytes)>,
    url: &'x str,
    fetcher: &'x SourceResolver<'p>,
    known: &'x Known<'x>,
}

impl TextGraft<'_, '_> {
    async fn run(
        &self,
        rt: &RefsText<'_>,
        added_cache: &mut Option<Vec<(String, RefSet)>>,
    ) -> Result<Option<String>, FetchRefsError> {
        let opts = self.scope.opts;
        let dim = opts.concat_dim.as_str();
        let url = self.url;
        // The metadata: every `.z*` document, top-level key and the time
        // coordinate's chunk (one pass over the keys, no parsing).
        let meta_idx = rt.indices_where(|prefix, leaf| {
            leaf.starts_with(".z") || prefix.is_empty() || (prefix == dim && leaf == "0")
        });
        let Ok(meta) = rt.subset_indices(meta_idx.iter().copied()) else {
            return Ok(None);
        };
        let Ok((_, concat)) = concat_arrays(url, &meta, dim) else {
            return Ok(None);
        };
        let Some((first_array, _, _)) = concat.first() else {
            return Ok(None);
        };
        // The metadata and the chunks of one time-concatenated array (found
        // by binary search), to name the members position by position.
        let mut named_idx = meta_idx.clone();
        named_idx.extend(rt.children(first_array).into_iter().map(|(i, _)| i));
        named_idx.sort_unstable();
        named_idx.dedup();
        let Ok(named) = rt.subset_indices(named_idx) else {
            return Ok(None);
        };
        let Some((plan, end)) = self.anchored_plan(&named, dim) else {
            return Ok(None);
        };
        // Everything but the chunks before the anchor: the chunks of each
        // concatenated array are one run of keys (binary search); only
        // theirs are looked at one by one.
        let mut before = vec![false; rt.len()];
        for (name, axis, rank) in &concat {
            for (i, leaf) in rt.children(name) {
                if !leaf.starts_with(".z")
                    && position(leaf, *rank, *axis).is_some_and(|q| q + 1 < end)
                    && let Some(b) = before.get_mut(i)
                {
                    *b = true;
                }
            }
        }
        let Ok(sub) =
            rt.subset_indices((0..rt.len()).filter(|&i| !before.get(i).copied().unwrap_or(false)))
        else {
            return Ok(None);
        };
        let Some(edits) = self.tail_edits(&sub, &plan, end, added_cache).await? else {
            return Ok(None);
        };
        info!(target = %self.t.key, kept = end, added = plan.add.len(), "aggregate spliced (text graft)");
        Ok(Some(rt.apply(&edits.remove, &edits.set)))
    }

    /// The splice plan over `named` (the target's metadata and one
    /// concatenated array's chunks) and its anchor: the end of the first
    /// kept run, which must start at position 0 (a graft keeps a prefix).
    fn anchored_plan(&self, named: &RefSet, dim: &str) -> Option<(Plan, u64)> {
        let refresh = self.this.map_or("", |(k, _)| k);
        let plan = plan(named, dim, self.want, refresh, self.scope, self.known)?;
        let end = plan
            .runs
            .first()
            .filter(|r| r.start == 0 && r.end > 0)
            .map(|r| r.end)?;
        Some((plan, end))
    }

    /// What both grafts share once `sub` (the part of the target the graft
    /// reads) is known: the new members are fetched (once per update, kept
    /// in `added_cache` across attempts), the kept runs after the anchor are
    /// cut out of `sub` and combined with them, the result must hold
    /// exactly the members wanted from the anchor on, and becomes edits.
    /// `Ok(None)`: the splice cannot be shown equal to a combine from
    /// scratch.
    async fn tail_edits(
        &self,
        sub: &RefSet,
        plan: &Plan,
        end: u64,
        added_cache: &mut Option<Vec<(String, RefSet)>>,
    ) -> Result<Option<GraftEdits>, FetchRefsError> {
        let (folder, opts) = (self.scope.folder, self.scope.opts);
        let dim = opts.concat_dim.as_str();
        let url = self.url;
        let added = match added_cache.take() {
            Some(a) => a,
            None => fetch(self.p, self.store, &plan.add, self.this).await?,
        };
        let mut tail = Vec::with_capacity(plan.runs.len() + added.len());
        for r in std::iter::once(end - 1..end).chain(plan.runs.iter().skip(1).cloned()) {
            match slice_concat(url, sub, dim, r.clone()) {
                Ok(piece) => tail.push((format!("{url} [{}..{})", r.start, r.end), piece)),
                Err(_) => {
                    *added_cache = Some(added);
                    return Ok(None);
                }
            }
        }
        tail.extend(added.iter().cloned());
        *added_cache = Some(added);
        let anchor = usize::try_from(end - 1).unwrap_or(usize::MAX);
        let Some(tail_keys) = self.keys.get(anchor..) else {
            return Ok(None);
        };
        let t_refs = match kerchunk::combine::combine_fetching(&tail, opts, self.fetcher).await {
            Ok(t) if same(holds(&t, dim, folder), tail_keys) => t,
            Err(e @ CombineError::Fetch { .. }) => {
                let transient =
                    matches!(&e, CombineError::Fetch { error, .. } if error.is_transient());
                let msg = format!("{url}: {e}");
                return Err(FetchRefsError::Step(if transient {
                    StepError::Transient(msg)
                } else {
                    StepError::Permanent(msg)
                }));
            }
            _ => return Ok(None),
        };
        Ok(graft_edits(url, sub, dim, end, &t_refs).ok())
    }

    /// [`TextGraft::run`] without scanning the text ([`SortedText`]): the
    /// metadata, one array's chunks, the static arrays' chunks and the
    /// concatenated arrays' chunks from the anchor on are found by binary
    /// search (the keys of those positions follow from each array's chunk
    /// grid), the edits are applied the same way. The result is the same
    /// text; `Ok(None)` when anything read is not in the writer's form.
    async fn run_sorted(
        &self,
        st: &SortedText<'_>,
        added_cache: &mut Option<Vec<(String, RefSet)>>,
    ) -> Result<Option<String>, FetchRefsError> {
        let opts = self.scope.opts;
        let dim = opts.concat_dim.as_str();
        let url = self.url;
        let Some(meta_e) = st.metadata(|prefix, leaf| prefix == dim && leaf == "0") else {
            return Ok(None);
        };
        let Ok(meta) = st.parse(&meta_e) else {
            return Ok(None);
        };
        let Ok((n, concat)) = concat_arrays(url, &meta, dim) else {
            return Ok(None);
        };
        // The chunks of one array, to name the members: the one with the
        // fewest chunks per position (`zeta`, one).
        let Some((first_array, _, _)) = concat.iter().min_by_key(|(name, axis, rank)| {
            chunk_grid(&meta, name, *rank).map_or(u64::MAX, |g| {
                g.iter()
                    .enumerate()
                    .filter(|(a, _)| a != axis)
                    .fold(1u64, |acc, (_, c)| acc.saturating_mul(*c))
            })
        }) else {
            return Ok(None);
        };
        let Some(named_e) = array_chunks(st, first_array) else {
            return Ok(None);
        };
        let mut all = meta_e.clone();
        all.extend(named_e);
        let Ok(named) = st.parse(&all) else {
            return Ok(None);
        };
        let Some((plan, end)) = self.anchored_plan(&named, dim) else {
            return Ok(None);
        };
        // What the graft reads: the metadata, the static arrays' chunks and
        // the concatenated arrays' chunks from the anchor on.
        let mut sub_e = meta_e;
        let concat_names: HashSet<&str> = concat.iter().map(|(n, _, _)| n.as_str()).collect();
        let arrays: Vec<&str> = meta
            .refs
            .keys()
            .filter_map(|k| k.strip_suffix("/.zarray"))
            .filter(|a| *a != dim && !concat_names.contains(a))
            .collect();
        for a in arrays {
            let Some(chunks) = array_chunks(st, a) else {
                return Ok(None);
            };
            sub_e.extend(chunks);
        }
        // A bound tied to bytes that exist: an entry takes more than 8.
        let limit = st.text().len() / 8;
        let Some(mut tail_keys) = chunk_keys_from(&meta, &concat, n, end - 1, limit) else {
            return Ok(None);
        };
        tail_keys.sort_unstable();
        let mut at = st.start();
        for key in &tail_keys {
            let Some(found) = st.lower_bound(key, at) else {
                return Ok(None);
            };
            at = found;
            if let Some(e) = st.entry(found).filter(|e| e.key == key) {
                sub_e.push(e);
            }
        }
        let Ok(sub) = st.parse(&sub_e) else {
            return Ok(None);
        };
        let Some(edits) = self.tail_edits(&sub, &plan, end, added_cache).await? else {
            return Ok(None);
        };
        let Some(json) = st.apply(&edits.remove, &edits.set) else {
            return Ok(None);
        };
        info!(target = %self.t.key, kept = end, added = plan.add.len(), "aggregate spliced (text graft, searched)");
        Ok(Some(json))
    }
}

/// The chunk entries of array `name` (`name/<digits and dots>`: one run of
/// keys, from `name/0` to before `name/:`), by binary search.
fn array_chunks<'a>(st: &SortedText<'a>, name: &str) -> Option<Vec<Located<'a>>> {
    let run = st.range(&format!("{name}/0"), &format!("{name}/:"))?;
    Some(run.into_iter().filter(|e| e.parts().0 == name).collect())
}

/// Chunks per axis of array `name` (`shape / chunks` of its `.zarray` in
/// `meta`), if it has `rank` axes.
fn chunk_grid(meta: &RefSet, name: &str, rank: usize) -> Option<Vec<u64>> {
    let nums = |doc: &Json, field: &str| -> Option<Vec<u64>> {
        match doc.get(field)? {
            Json::Array(a) => a.iter().map(Json::as_u64).collect(),
            _ => None,
        }
    };
    let doc = meta.get_json(&format!("{name}/.zarray"))?.ok()?;
    let (shape, chunks) = (nums(&doc, "shape")?, nums(&doc, "chunks")?);
    if shape.len() != rank || chunks.len() != rank || chunks.contains(&0) {
        return None;
    }
    Some(
        shape
            .iter()
            .zip(&chunks)
            .map(|(s, c)| s.div_ceil(*c))
            .collect(),
    )
}

/// The chunk keys of every concatenated array at positions `from..n`,
/// from each array's chunk grid (`shape / chunks` of its `.zarray` in
/// `meta`); `None` when a grid cannot be read or there would be more than
/// `limit` keys.
fn chunk_keys_from(
    meta: &RefSet,
    concat: &[(String, usize, usize)],
    n: u64,
    from: u64,
    limit: usize,
) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for (name, axis, rank) in concat {
        let grid = chunk_grid(meta, name, *rank)?;
        if grid.get(*axis) != Some(&n) {
            return None;
        }
        // Every chunk index with `from..n` on the concat axis, odometer
        // style, counting against the limit.
        let mut idx: Vec<u64> = grid.iter().map(|_| 0).collect();
        *idx.get_mut(*axis)? = from;
        if from >= n || grid.contains(&0) {
            continue;
        }
        'keys: loop {
            if out.len() >= limit {
                return None;
            }
            let leaf: Vec<String> = idx.iter().map(u64::to_string).collect();
            out.push(format!("{name}/{}", leaf.join(".")));
            // The next index, the last axis running fastest.
            for a in (0..idx.len()).rev() {
                let lo = if a == *axis { from } else { 0 };
                let v = idx.get_mut(a)?;
                *v += 1;
                if *v < *grid.get(a)? {
                    continue 'keys;
                }
                *v = lo;
            }
            break;
        }
    }
    Some(out)
}

/// Every member fetched and combined.
async fn full(
    p: &Pipeline,
    store: &dyn ObjectStore,
    keys: &[&str],
    this: Option<(&str, &Bytes)>,
    opts: &CombineOptions,
    fetcher: &SourceResolver<'_>,
    step_err: &(dyn Fn(CombineError, &SourceResolver<'_>) -> StepError + Sync),
) -> Result<RefSet, FetchRefsError> {
    let all: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    let inputs = fetch(p, store, &all, this).await?;
    kerchunk::combine::combine_fetching(&inputs, opts, fetcher)
        .await
        .map_err(|e| FetchRefsError::Step(step_err(e, fetcher)))
}
