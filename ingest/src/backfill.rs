//! `kerchunk-nos backfill`: index what already exists in a source bucket
//! for a model and a range of cycle dates, then rebuild the aggregates.
//!
//! Lists every folder form of `ofs_key` for those dates (`{ofs}.{YYYYMMDD}/`,
//! `{ofs}/netcdf/{YYYYMM}/`, `{ofs}/netcdf/{YYYY}/{MM}/{DD}/`), keeps the
//! output files the configuration indexes, indexes them with bounded
//! concurrency (skipping references that already exist unless told
//! otherwise), rebuilds each touched model run, then the best series once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt as _;
use serde::Serialize;
use tracing::warn;

use crate::config::Pipeline;
use crate::fmrc_update::Mode;
use crate::ofs_key::{self, Date, Hour, OfsKey};
use crate::steps::{self, BestMode, Indexed, StepError};
use crate::store::ObjectStore;

#[derive(Debug, Clone)]
pub struct BackfillOptions {
    pub model: String,
    pub from: Date,
    pub to: Date,
    pub bucket: String,
    pub dest: Arc<dyn ObjectStore>,
    pub prefix: String,
    /// Re-index files whose reference set already exists.
    pub overwrite: bool,
    /// Print progress to stderr.
    pub progress: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct BackfillReport {
    pub listed: u64,
    pub candidates: u64,
    pub indexed: u64,
    pub existing: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Of `failed`, those a retry may fix (the CLI exits 3 if any, else 1).
    pub failed_transient: u64,
    pub aggregates: Vec<String>,
    pub errors: Vec<String>,
}

/// The day after `d`.
pub fn next_day(d: Date) -> Option<Date> {
    Date::new(d.year, d.month, d.day + 1)
        .or_else(|| Date::new(d.year, d.month + 1, 1))
        .or_else(|| Date::new(d.year + 1, 1, 1))
}

/// `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse_yyyymmdd(&s.replace('-', ""))
}

/// Listing prefixes covering `model`'s cycles from `from` to `to` in every
/// folder form (nowcast files live in their cycle's folder).
pub fn prefixes(model: &str, from: Date, to: Date) -> Vec<String> {
    let mut set = BTreeSet::new();
    let mut d = from;
    let mut guard = 0;
    while d <= to && guard < 366 * 50 {
        set.insert(format!("{model}.{}/", d.yyyymmdd()));
        set.insert(format!("{model}/netcdf/{:04}{:02}/", d.year, d.month));
        set.insert(format!(
            "{model}/netcdf/{:04}/{:02}/{:02}/",
            d.year, d.month, d.day
        ));
        match next_day(d) {
            Some(n) => d = n,
            None => break,
        }
        guard += 1;
    }
    set.into_iter().collect()
}

pub async fn run(p: &Pipeline, o: &BackfillOptions) -> Result<BackfillReport, StepError> {
    let mut report = BackfillReport::default();
    let source = p.source_store(&o.bucket).await?;
    let listings: Vec<Result<Vec<crate::store::ObjectInfo>, crate::store::StoreError>> =
        futures_util::stream::iter(prefixes(&o.model, o.from, o.to).into_iter().map(|pre| {
            let source = source.clone();
            async move { source.list(&pre).await }
        }))
        .buffer_unordered(p.config.io_concurrency.max(1))
        .collect()
        .await;
    // One file per output name (the same file may sit in two folder forms).
    let mut todo: BTreeMap<String, (String, OfsKey)> = BTreeMap::new();
    for l in listings {
        for obj in l? {
            report.listed += 1;
            let Ok(k) = steps::classify_source(p, &o.bucket, &obj.key) else {
                continue;
            };
            if k.model != o.model || k.cycle_date < o.from || k.cycle_date > o.to {
                continue;
            }
            let out = ofs_key::single_ref_key(&o.prefix, &obj.key)
                .map_err(|e| StepError::Permanent(e.to_string()))?;
            todo.entry(out).or_insert((obj.key, k));
        }
    }
    report.candidates = todo.len() as u64;
    let total = todo.len();
    let done = AtomicU64::new(0);
    let tty = std::io::stderr().is_terminal();
    let progress = |d: u64, failed: u64| {
        if o.progress && (tty || d.is_multiple_of(10) || d == total as u64) {
            let end = if tty && d < total as u64 { "\r" } else { "\n" };
            eprint!(
                "backfill {}: {d}/{total} files ({failed} failed){end}",
                o.model
            );
        }
    };
    let failed = AtomicU64::new(0);
    let results: Vec<(String, OfsKey, Result<Option<Indexed>, StepError>)> =
        futures_util::stream::iter(todo.into_iter().map(|(out_key, (key, k))| {
            let (done, failed) = (&done, &failed);
            let progress = &progress;
            async move {
                let r = async {
                    if !o.overwrite && o.dest.head(&out_key).await?.is_some() {
                        return Ok(None);
                    }
                    steps::index_object(p, &o.bucket, &key, &*o.dest, &o.prefix)
                        .await
                        .map(Some)
                }
                .await;
                if r.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(d, failed.load(Ordering::Relaxed));
                (out_key, k, r)
            }
        }))
        .buffer_unordered(p.config.io_concurrency.max(1))
        .collect()
        .await;

    // Representative reference per cycle (largest forecast hour present).
    let mut runs: BTreeMap<(i64, String), (u16, String)> = BTreeMap::new();
    for (out_key, k, r) in results {
        match r {
            Ok(Some(Indexed::Written(_))) => report.indexed += 1,
            Ok(Some(Indexed::Skipped(_))) => {
                report.skipped += 1;
                continue;
            }
            Ok(None) => report.existing += 1,
            Err(e) => {
                report.failed += 1;
                if e.is_transient() {
                    report.failed_transient += 1;
                }
                warn!(reference = %out_key, error = %e, "backfill: indexing failed");
                report.errors.push(format!("{out_key}: {e}"));
                continue;
            }
        }
        let hour = match k.hour {
            Hour::Forecast(h) => h,
            Hour::Nowcast(_) if p.config.include_nowcasts => 0,
            _ => continue,
        };
        let cycle = k.cycle_time().unix_seconds();
        let layout = format!("{:?}", k.layout);
        let e = runs
            .entry((cycle, layout))
            .or_insert((hour, out_key.clone()));
        if hour >= e.0 {
            *e = (hour, out_key);
        }
    }
    // Every aggregate from scratch: the best series once per naming scheme,
    // which also rebuilds that scheme's member index from a listing, then
    // each model run from that index.
    let mut seen = BTreeSet::new();
    for ((_, layout), (_, ref_key)) in runs.iter().rev() {
        if seen.insert(layout.clone()) {
            let out = steps::aggregates(p, &*o.dest, ref_key, false, BestMode::Always, Mode::Full)
                .await?;
            report.aggregates.extend(out.written);
        }
    }
    for (_, ref_key) in runs.values() {
        if o.progress {
            eprintln!("backfill {}: model run of {ref_key}", o.model);
        }
        let out = steps::aggregates(
            p,
            &*o.dest,
            ref_key,
            true,
            BestMode::Never,
            Mode::FullFromIndex,
        )
        .await?;
        report.aggregates.extend(out.written);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_prefixes() {
        let d = |s| parse_date(s).unwrap();
        assert_eq!(next_day(d("2024-02-28")), Some(d("2024-02-29")));
        assert_eq!(next_day(d("2023-12-31")), Some(d("2024-01-01")));
        let p = prefixes("dbofs", d("2023-03-31"), d("2023-04-01"));
        assert!(p.contains(&"dbofs.20230331/".to_string()));
        assert!(p.contains(&"dbofs.20230401/".to_string()));
        assert!(p.contains(&"dbofs/netcdf/202303/".to_string()));
        assert!(p.contains(&"dbofs/netcdf/202304/".to_string()));
        assert!(p.contains(&"dbofs/netcdf/2023/04/01/".to_string()));
        assert_eq!(p.len(), 6);
    }
}
