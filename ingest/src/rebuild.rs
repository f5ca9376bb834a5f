//! `kerchunk-nos rebuild`: every member index, model run and best series
//! under a destination prefix recreated from scratch from the stored
//! single-file references alone (no source listing, no re-indexing; the
//! combine still reads each member's time coordinate and small chunks, as
//! `backfill` does). The member index is a cache: this is how it is
//! recovered, and how aggregates are checked against an incremental history
//! (same bytes).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Pipeline;
use crate::fmrc_update::Mode;
use crate::ofs_key::{self, Hour, Parsed};
use crate::steps::{self, BestMode, StepError};
use crate::store::ObjectStore;

#[derive(Debug, Default, Serialize)]
pub struct RebuildReport {
    /// Single-file references found.
    pub references: u64,
    /// (folder, model, kind, naming scheme) groups, one index each.
    pub models: u64,
    pub aggregates: Vec<String>,
    /// Aggregates already equal to their rebuild.
    pub unchanged: u64,
}

/// Rebuilds every aggregate of the references directly under `prefix`.
pub async fn run(
    p: &Pipeline,
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<RebuildReport, StepError> {
    let folder = prefix.trim_end_matches('/');
    let list_prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let mut report = RebuildReport::default();
    // group -> cycle -> (preference, representative reference key)
    type Runs = BTreeMap<i64, ((bool, u16), String)>;
    let mut groups: BTreeMap<(String, String, String), Runs> = BTreeMap::new();
    for o in store.list(&list_prefix).await? {
        if steps::folder_of(&o.key) != folder {
            continue;
        }
        let Ok(Parsed::Output(k)) = ofs_key::parse_single_ref_key(&o.key) else {
            continue;
        };
        if p.config.excludes(&k).is_some() {
            continue;
        }
        // A forecast hour represents its cycle (a nowcast only when
        // nowcasts are part of model runs).
        let pref = match k.hour {
            Hour::Forecast(h) => (true, h),
            Hour::Nowcast(h) => (false, h),
            _ => continue,
        };
        report.references += 1;
        let group = (
            k.model.clone(),
            k.kind.token().to_string(),
            format!("{:?}", k.layout),
        );
        let cycle = k.cycle_time().unix_seconds();
        let e = groups
            .entry(group)
            .or_default()
            .entry(cycle)
            .or_insert((pref, o.key.clone()));
        if pref > e.0 {
            *e = (pref, o.key);
        }
    }
    for runs in groups.values() {
        report.models += 1;
        let Some((_, (_, newest))) = runs.iter().next_back() else {
            continue;
        };
        // The best series first: it rebuilds the index from the listing.
        let out = steps::aggregates(p, store, newest, false, BestMode::Always, Mode::Full).await?;
        report.unchanged += out.skipped.len() as u64;
        report.aggregates.extend(out.written);
        for (_, key) in runs.values() {
            let out = steps::aggregates(p, store, key, true, BestMode::Never, Mode::FullFromIndex)
                .await?;
            report.unchanged += out.skipped.len() as u64;
            report.aggregates.extend(out.written);
        }
    }
    Ok(report)
}
