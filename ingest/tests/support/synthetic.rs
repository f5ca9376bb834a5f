//! Synthetic dbofs single-file reference sets without NetCDF files (the
//! time value is inlined, every data chunk is a remote reference longer
//! than the inline threshold, so combining them reads no source), and an
//! object store wrapper that counts requests (over `wrap.rs`). Shared by
//! `ingest/tests/fmrc_incremental.rs` and `ingest/examples/fmrc_bench.rs`.

#![allow(dead_code)]

#[macro_use]
#[path = "wrap.rs"]
mod wrap;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hdf5_lite::RangeSource;
use hdf5_lite::source::BoxFuture;
use ingest::backfill::next_day;
use ingest::ofs_key::Date;
use ingest::store::{ObjectInfo, ObjectStore, PutCondition, StoreError};
use kerchunk::{Ref, RefSet};
use wrap::{Call, Intercept};

/// 2016-01-01T00:00Z (ROMS `ocean_time` epoch), unix seconds.
const EPOCH_2016: i64 = 1_451_606_400;
/// 2023-01-01, days since 1970-01-01.
const DAY0: i64 = 19_358;

/// One synthetic member: its reference key and JSON.
#[derive(Debug, Clone)]
pub struct Member {
    pub key: String,
    pub json: String,
    pub cycle: i64,
}

fn zarray(shape: &[u64], chunks: &[u64], dtype: &str) -> Ref {
    Ref::Text(format!(
        r#"{{"chunks":{chunks:?},"compressor":null,"dtype":"{dtype}","fill_value":1e+37,"filters":null,"order":"C","shape":{shape:?},"zarr_format":2}}"#
    ))
}

fn zattrs(dims: &[&str]) -> Ref {
    Ref::Text(format!(r#"{{"_ARRAY_DIMENSIONS":{dims:?},"units":"m"}}"#))
}

/// The reference set of `nos.dbofs.fields.{hour}.{date}.t{cc}z.nc` with
/// `nvars` 4-d variables besides `zeta`.
fn refset(date: &str, cc: u8, hour: &str, valid: i64, nvars: usize) -> (String, RefSet) {
    let name = format!("nos.dbofs.fields.{hour}.{date}.t{cc:02}z.nc");
    let url = format!("s3://noaa-ofs-pds/dbofs.{date}/{name}");
    let r = |i: u64| Ref::Range {
        url: url.clone(),
        offset: 1000 + 100_000 * i,
        length: 80_000,
    };
    let mut s = RefSet::new();
    s.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
    s.insert(
        ".zattrs",
        Ref::Text(format!(r#"{{"file":"{name}","title":"synthetic dbofs"}}"#)),
    );
    s.insert("ocean_time/.zarray", zarray(&[1], &[1], "<f8"));
    s.insert(
        "ocean_time/.zattrs",
        Ref::Text(
            r#"{"_ARRAY_DIMENSIONS":["ocean_time"],"units":"seconds since 2016-01-01 00:00:00"}"#
                .into(),
        ),
    );
    s.insert(
        "ocean_time/0",
        Ref::inline(&((valid - EPOCH_2016) as f64).to_le_bytes()),
    );
    for (n, v) in ["h", "lat_rho", "lon_rho"].iter().enumerate() {
        s.insert(format!("{v}/.zarray"), zarray(&[4, 5], &[4, 5], "<f8"));
        s.insert(format!("{v}/.zattrs"), zattrs(&["eta_rho", "xi_rho"]));
        s.insert(format!("{v}/0.0"), r(n as u64));
    }
    s.insert("s_rho/.zarray", zarray(&[2], &[2], "<f8"));
    s.insert("s_rho/.zattrs", zattrs(&["s_rho"]));
    s.insert("s_rho/0", r(3));
    s.insert("zeta/.zarray", zarray(&[1, 4, 5], &[1, 4, 5], "<f4"));
    s.insert("zeta/.zattrs", zattrs(&["ocean_time", "eta_rho", "xi_rho"]));
    s.insert("zeta/0.0.0", r(4));
    for i in 0..nvars {
        let v = format!("v{i:02}");
        s.insert(
            format!("{v}/.zarray"),
            zarray(&[1, 2, 4, 5], &[1, 1, 4, 5], "<f4"),
        );
        s.insert(
            format!("{v}/.zattrs"),
            zattrs(&["ocean_time", "s_rho", "eta_rho", "xi_rho"]),
        );
        s.insert(format!("{v}/0.0.0.0"), r(5 + 2 * i as u64));
        s.insert(format!("{v}/0.1.0.0"), r(6 + 2 * i as u64));
    }
    (format!("nos/{name}.zarr"), s)
}

/// Every member of `days` days from 2023-01-01 (plus `skip_days` days
/// before them are left out): 4 cycles a day, forecast hours
/// `1..=fmax`, and nowcasts `n001..n006` when `nowcasts`.
pub fn members(skip_days: u32, days: u32, fmax: u16, nowcasts: bool, nvars: usize) -> Vec<Member> {
    let mut out = Vec::new();
    let mut date = Date::new(2023, 1, 1).expect("date");
    for d in 0..skip_days + days {
        if d >= skip_days {
            let ymd = date.yyyymmdd();
            for cc in [0u8, 6, 12, 18] {
                let cycle = (DAY0 + i64::from(d)) * 86_400 + i64::from(cc) * 3600;
                let mut hours: Vec<(String, i64)> = (1..=fmax)
                    .map(|h| (format!("f{h:03}"), cycle + i64::from(h) * 3600))
                    .collect();
                if nowcasts {
                    hours.extend((1..=6).map(|h| (format!("n{h:03}"), cycle + (h - 6) * 3600)));
                }
                for (hour, valid) in hours {
                    let (key, s) = refset(&ymd, cc, &hour, valid, nvars);
                    out.push(Member {
                        key,
                        json: s.to_json(),
                        cycle,
                    });
                }
            }
        }
        date = next_day(date).expect("next day");
    }
    out
}

/// A deterministic shuffle (xorshift), so a failure reproduces.
pub fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Request counts of a [`Counting`] store.
#[derive(Debug, Default)]
pub struct Counts {
    pub get: AtomicU64,
    pub put: AtomicU64,
    pub list: AtomicU64,
    pub head: AtomicU64,
    pub range: AtomicU64,
    /// Nanoseconds spent inside the inner store's get/put/list/head.
    pub store_ns: AtomicU64,
}

impl Counts {
    /// Time spent in the store since the last [`Counts::reset`], ms.
    pub fn store_ms(&self) -> f64 {
        self.store_ns.load(Ordering::SeqCst) as f64 / 1e6
    }
    pub fn total(&self) -> u64 {
        [&self.get, &self.put, &self.list, &self.head, &self.range]
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum()
    }
    pub fn reset(&self) {
        for c in [
            &self.get,
            &self.put,
            &self.list,
            &self.head,
            &self.range,
            &self.store_ns,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
    pub fn summary(&self) -> String {
        format!(
            "{} GET, {} PUT, {} LIST, {} HEAD",
            self.get.load(Ordering::SeqCst),
            self.put.load(Ordering::SeqCst),
            self.list.load(Ordering::SeqCst),
            self.head.load(Ordering::SeqCst)
        )
    }
}

/// `f`, its time added to `counts.store_ns`.
fn timed<'a, T: 'a>(counts: &'a Counts, f: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
    Box::pin(async move {
        let t = std::time::Instant::now();
        let r = f.await;
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counts.store_ns.fetch_add(ns, Ordering::SeqCst);
        r
    })
}

/// Delegates to `inner`, counting every call.
#[derive(Debug)]
pub struct Counting {
    pub inner: Arc<dyn ObjectStore>,
    pub counts: Arc<Counts>,
}

impl Intercept for Counting {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }
    fn before(&self, call: Call<'_>) -> Result<(), StoreError> {
        let n = match call {
            Call::Get(_) => &self.counts.get,
            Call::Put(_) => &self.counts.put,
            Call::List(_) => &self.counts.list,
            Call::Head(_) => &self.counts.head,
        };
        n.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn around<'a, T: Send + 'a>(&'a self, call: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
        timed(&self.counts, call)
    }
    fn source(&self, source: Arc<dyn RangeSource>) -> Arc<dyn RangeSource> {
        self.counts.range.fetch_add(1, Ordering::SeqCst);
        source
    }
}
intercepting_store!(Counting);

/// An in-memory store with S3's conditional-write semantics; the etag is a
/// version counter (S3 computes it server-side: no client cost), so a
/// benchmark over it measures the pipeline's own work.
#[derive(Debug, Default)]
pub struct Memory {
    objects: std::sync::Mutex<std::collections::BTreeMap<String, (bytes::Bytes, String)>>,
    version: AtomicU64,
}

impl Memory {
    /// Every object (cheap: the bodies are shared).
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, (bytes::Bytes, String)> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }
    /// Back to a [`Memory::snapshot`] (etags keep counting up).
    pub fn restore(&self, snap: std::collections::BTreeMap<String, (bytes::Bytes, String)>) {
        if let Ok(mut o) = self.objects.lock() {
            *o = snap;
        }
    }
}

impl ObjectStore for Memory {
    fn url(&self) -> String {
        "s3://memory".into()
    }
    fn bucket(&self) -> &str {
        "memory"
    }
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(bytes::Bytes, String), StoreError>> {
        Box::pin(async move {
            let objects = self
                .objects
                .lock()
                .map_err(|_| StoreError::Transient("poisoned".into()))?;
            objects
                .get(key)
                .cloned()
                .ok_or_else(|| StoreError::NotFound(format!("s3://memory/{key}")))
        })
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: bytes::Bytes,
        cond: PutCondition,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(async move {
            let mut objects = self
                .objects
                .lock()
                .map_err(|_| StoreError::Transient("poisoned".into()))?;
            let ok = match (&cond, objects.get(key)) {
                (PutCondition::None, _) => true,
                (PutCondition::IfAbsent, cur) => cur.is_none(),
                (PutCondition::IfMatch(want), Some((_, cur))) => want == cur,
                (PutCondition::IfMatch(_), None) => false,
            };
            if !ok {
                return Err(StoreError::PreconditionFailed(format!("s3://memory/{key}")));
            }
            let etag = format!("v{}", self.version.fetch_add(1, Ordering::SeqCst));
            objects.insert(key.to_string(), (body, etag.clone()));
            Ok(etag)
        })
    }
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectInfo>, StoreError>> {
        Box::pin(async move {
            let objects = self
                .objects
                .lock()
                .map_err(|_| StoreError::Transient("poisoned".into()))?;
            Ok(objects
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, (b, e))| ObjectInfo {
                    key: k.clone(),
                    etag: e.clone(),
                    size: b.len() as u64,
                    modified_ms: None,
                })
                .collect())
        })
    }
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectInfo>, StoreError>> {
        Box::pin(async move {
            let objects = self
                .objects
                .lock()
                .map_err(|_| StoreError::Transient("poisoned".into()))?;
            Ok(objects.get(key).map(|(b, e)| ObjectInfo {
                key: key.to_string(),
                etag: e.clone(),
                size: b.len() as u64,
                modified_ms: None,
            }))
        })
    }
    fn range_source(&self, key: &str) -> Result<Arc<dyn RangeSource>, StoreError> {
        Err(StoreError::Permanent(format!(
            "s3://memory/{key}: no range reads"
        )))
    }
}
