//! The pipeline steps against local-directory stores (no S3, no moto):
//! extract_single, update_model_run (model run + best series), skips,
//! poison messages, idempotence, out-of-order and concurrent deliveries,
//! backfill.
//!
//! Source files come from `fixtures/make_ofs.py --scale small` run by the
//! oracle venv (`.venv` or `$KERCHUNK_NOS_PYTHON`); without it the test
//! fails (a skipped test is not a pass).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use hdf5_lite::RangeSource;
use hdf5_lite::source::{BoxFuture, SourceErrorKind};
use ingest::config::{Config, Pipeline};
use ingest::steps::{self, StepError};
use ingest::store::{LocalStore, ObjectStore, PutCondition, StoreError, StoreUrl};
use kerchunk::{Ref, RefSet};

#[macro_use]
#[path = "support/wrap.rs"]
mod wrap;
use wrap::{Call, Intercept, hooked};

const SRC: &str = "noaa-ofs-pds";
const DEST: &str = "nextgen-dmac";
const DAY: &str = "dbofs.20230323";

/// (cycle, hour) of every generated file: cycle 12z f001-f003, f007 and
/// n006; cycle 18z f001 (valid 19z, like 12z f007: the best series must
/// take the 18z one).
const FILES: &[(&str, &str)] = &[
    ("12", "f001"),
    ("12", "f002"),
    ("12", "f003"),
    ("12", "f007"),
    ("12", "n006"),
    ("18", "f001"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn key(cycle: &str, hour: &str) -> String {
    format!("{DAY}/nos.dbofs.fields.{hour}.20230323.t{cycle}z.nc")
}

fn ref_key(cycle: &str, hour: &str) -> String {
    format!("nos/nos.dbofs.fields.{hour}.20230323.t{cycle}z.nc.zarr")
}

/// Generates the source files once per test binary.
fn sources() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let py = std::env::var_os("KERCHUNK_NOS_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".venv/bin/python"));
        let make = root().join("fixtures/make_ofs.py");
        assert!(
            py.exists() && make.exists(),
            "oracle venv python or fixtures/make_ofs.py missing: run tests/python/setup-venv.sh"
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ingest-steps-src");
        let bucket = dir.join(SRC);
        for (c, h) in FILES {
            if bucket.join(key(c, h)).exists() {
                continue;
            }
            let out = Command::new(&py)
                .arg(&make)
                .args(["--model", "dbofs", "--kind", "fields", "--hour", h])
                .args(["--cycle", &format!("2023-03-23T{c}"), "--scale", "small"])
                .arg("--out")
                .arg(&bucket)
                .output()
                .expect("run make_ofs.py");
            assert!(
                out.status.success(),
                "make_ofs.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // A corrupt "NetCDF" file and a non-output file.
        std::fs::write(
            bucket
                .join(DAY)
                .join("nos.dbofs.fields.f009.20230323.t12z.nc"),
            b"\x89HDF\r\n\x1a\nthis is not really HDF5",
        )
        .unwrap();
        std::fs::write(
            bucket
                .join(DAY)
                .join("nos.dbofs.met.nowcast.20230323.t12z.nc"),
            b"x",
        )
        .unwrap();
        dir
    })
}

struct Env {
    _tmp: tempfile::TempDir,
    p: Arc<Pipeline>,
    dest: Arc<dyn ObjectStore>,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dest_dir = tmp.path().join(DEST);
    let config = Config {
        source_root: Some(sources().clone()),
        dest_override: Some(StoreUrl::Local {
            dir: dest_dir.clone(),
        }),
        ..Config::default()
    };
    Env {
        _tmp: tmp,
        p: Arc::new(Pipeline::new(config)),
        dest: Arc::new(LocalStore::new(&dest_dir).unwrap()),
    }
}

/// An SNS envelope around an S3 event, key encoded as moto does
/// (`quote_plus`: `/` -> `%2F`).
fn message(bucket: &str, keys: &[String]) -> String {
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventTime": "2023-03-23T13:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": k.replace('/', "%2F"), "size": 1}
                }
            })
        })
        .collect();
    let inner = serde_json::json!({ "Records": records }).to_string();
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "m",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Message": inner,
    })
    .to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn extract(e: &Env, keys: &[String]) -> Result<steps::Outcome, StepError> {
    steps::extract_single(&e.p, &message(SRC, keys), &*e.dest, "nos").await
}

async fn update(e: &Env, refs: &[String]) -> Result<steps::Outcome, StepError> {
    steps::update_model_run(&e.p, &message(DEST, refs)).await
}

async fn refset(e: &Env, key: &str) -> RefSet {
    let (b, _) = e.dest.get(key).await.unwrap();
    RefSet::from_json(std::str::from_utf8(&b).unwrap()).unwrap()
}

/// Decoded `ocean_time` values (seconds since 2016-01-01) of an aggregate.
fn ocean_time(r: &RefSet) -> Vec<f64> {
    let bytes = r
        .get("ocean_time/0")
        .and_then(Ref::inline_bytes)
        .expect("inline ocean_time/0");
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Hours after the 12z cycle (2023-03-23T12:00Z) of each `ocean_time` value.
fn hours_after_12z(r: &RefSet) -> Vec<i64> {
    // 2016-01-01 -> 2023-03-23T12:00Z
    let cycle12 = (2638 * 86400 + 12 * 3600) as f64;
    ocean_time(r)
        .iter()
        .map(|t| ((t - cycle12) / 3600.0).round() as i64)
        .collect()
}

/// The source URL of an aggregate's `zeta` chunk at time index `i`.
fn zeta_url(r: &RefSet, i: usize) -> String {
    match r.get(&format!("zeta/{i}.0.0")) {
        Some(Ref::Range { url, .. }) => url.clone(),
        other => panic!("zeta/{i}.0.0 is {other:?}"),
    }
}

fn all_keys() -> Vec<String> {
    FILES.iter().map(|(c, h)| key(c, h)).collect()
}

#[test]
fn extract_single_writes_refs_with_s3_urls() {
    let e = env();
    rt().block_on(async {
        let k = key("12", "f001");
        let out = extract(&e, std::slice::from_ref(&k)).await.unwrap();
        let want = ref_key("12", "f001");
        assert_eq!(out.written, vec![format!("{}/{want}", e.dest.url())]);
        let r = refset(&e, &want).await;
        let url = format!("s3://{SRC}/{k}");
        assert!(
            r.refs
                .values()
                .any(|v| matches!(v, Ref::Range { url: u, .. } if *u == url)),
            "references point at {url}"
        );
        assert!(r.get("zeta/.zarray").is_some());
        // Duplicate delivery: same bytes.
        let (before, _) = e.dest.get(&want).await.unwrap();
        extract(&e, std::slice::from_ref(&k)).await.unwrap();
        let (after, _) = e.dest.get(&want).await.unwrap();
        assert_eq!(before, after);
    });
}

#[test]
fn skips_and_poison() {
    let e = env();
    rt().block_on(async {
        // Test event: acknowledged.
        let te = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"t","Bucket":"b"}"#;
        let out = steps::extract_single(&e.p, te, &*e.dest, "nos")
            .await
            .unwrap();
        assert!(out.test_event && out.written.is_empty());

        // Non-output file, other bucket, unconfigured model: skipped.
        let met = format!("{DAY}/nos.dbofs.met.nowcast.20230323.t12z.nc");
        let out = extract(&e, &[met.clone(), "dbofs.20230323/x.log".into()])
            .await
            .unwrap();
        assert_eq!(out.skipped.len(), 2, "{out:?}");
        let other = steps::extract_single(
            &e.p,
            &message("elsewhere", &[key("12", "f001")]),
            &*e.dest,
            "nos",
        )
        .await
        .unwrap();
        assert_eq!(other.skipped.len(), 1);
        assert!(
            other.skipped[0]
                .reason
                .contains("not a configured source bucket")
        );
        let mut cfg = e.p.config.clone();
        cfg.models = Config::parse_models("cbofs,tbofs");
        let p2 = Pipeline::new(cfg);
        let out = steps::extract_single(&p2, &message(SRC, &[key("12", "f001")]), &*e.dest, "nos")
            .await
            .unwrap();
        assert!(
            out.skipped[0]
                .reason
                .contains("model dbofs is not configured")
        );

        // Poison: bad JSON, missing object, corrupt HDF5 -> permanent errors.
        let bad = steps::extract_single(&e.p, "{not json", &*e.dest, "nos").await;
        assert!(matches!(bad, Err(StepError::Permanent(_))), "{bad:?}");
        let missing = extract(
            &e,
            &[format!("{DAY}/nos.dbofs.fields.f044.20230323.t12z.nc")],
        )
        .await;
        assert!(
            matches!(&missing, Err(StepError::Permanent(m)) if m.contains("does not exist")),
            "{missing:?}"
        );
        let corrupt = extract(
            &e,
            &[format!("{DAY}/nos.dbofs.fields.f009.20230323.t12z.nc")],
        )
        .await;
        assert!(
            matches!(corrupt, Err(StepError::Permanent(_))),
            "{corrupt:?}"
        );
        // Nothing was written for them.
        assert!(e.dest.list("").await.unwrap().is_empty());

        // Hostile prefix and update messages.
        assert!(
            steps::extract_single(&e.p, &message(SRC, &[key("12", "f001")]), &*e.dest, "../up")
                .await
                .is_err()
        );
        let out = update(&e, &["nos/../../etc/passwd.zarr".into()]).await;
        assert!(out.as_ref().is_ok_and(|o| o.written.is_empty()), "{out:?}");
        let out = update(&e, &["nos/nos.dbofs.fields.best.nc.zarr".into()])
            .await
            .unwrap();
        assert!(out.written.is_empty() && out.skipped[0].reason.contains("aggregate"));
    });
}

#[test]
fn model_run_and_best_series_any_order() {
    let e = env();
    rt().block_on(async {
        // Out of order: the last hour first, aggregate, then the rest.
        extract(&e, &[key("12", "f003")]).await.unwrap();
        let out = update(&e, &[ref_key("12", "f003")]).await.unwrap();
        let run = "nos/nos.dbofs.fields.20230323.t12z.nc.zarr";
        let best = "nos/nos.dbofs.fields.best.nc.zarr";
        assert_eq!(out.written.len(), 2, "{out:?}");
        assert_eq!(hours_after_12z(&refset(&e, run).await), vec![3]);

        let rest: Vec<String> = all_keys()
            .into_iter()
            .filter(|k| !k.contains("f003.20230323.t12z"))
            .collect();
        let out = extract(&e, &rest).await.unwrap();
        assert_eq!(out.written.len(), rest.len());
        // Only the nowcast is announced: forecast-only runs skip it, and it
        // is not in the (original, forecast-only) best series.
        let out = update(&e, &[ref_key("12", "n006")]).await.unwrap();
        assert!(out.written.is_empty(), "{out:?}");
        // Each reference joins the aggregates with its own notification
        // (the member index registers it), in any order; a duplicate of
        // the first message changes nothing.
        for h in ["f007", "f001", "f003", "f002"] {
            update(&e, &[ref_key("12", h)]).await.unwrap();
        }
        let r = refset(&e, run).await;
        assert_eq!(hours_after_12z(&r), vec![1, 2, 3, 7]);
        for (i, h) in ["f001", "f002", "f003", "f007"].iter().enumerate() {
            assert_eq!(zeta_url(&r, i), format!("s3://{SRC}/{}", key("12", h)));
        }
        // 18z: its own run; best takes 18z f001 for 19z, not 12z f007.
        let out = update(&e, &[ref_key("18", "f001")]).await.unwrap();
        assert_eq!(out.written.len(), 2, "{out:?}");
        let b = refset(&e, best).await;
        assert_eq!(hours_after_12z(&b), vec![1, 2, 3, 7]);
        assert_eq!(zeta_url(&b, 3), format!("s3://{SRC}/{}", key("18", "f001")));
        let r18 = refset(&e, "nos/nos.dbofs.fields.20230323.t18z.nc.zarr").await;
        assert_eq!(hours_after_12z(&r18), vec![7]);

        // Idempotent: every message again, in reverse, changes nothing.
        // (Keys and content; rewriting identical bytes moves mtimes.)
        let contents = |l: Vec<ingest::store::ObjectInfo>| -> Vec<(String, String)> {
            l.into_iter().map(|o| (o.key, o.etag)).collect()
        };
        let snapshot = contents(e.dest.list("").await.unwrap());
        let refs: Vec<String> = FILES.iter().rev().map(|(c, h)| ref_key(c, h)).collect();
        for r in &refs {
            update(&e, std::slice::from_ref(r)).await.unwrap();
        }
        extract(&e, &all_keys()).await.unwrap();
        assert_eq!(contents(e.dest.list("").await.unwrap()), snapshot);
    });
}

#[test]
fn concurrent_updates_lose_no_hour() {
    let e = Arc::new(env());
    rt().block_on(async {
        // Every file indexed and aggregated at once, each update racing the
        // others' writes.
        let mut tasks = Vec::new();
        for (c, h) in FILES {
            let e = e.clone();
            let (k, r) = (key(c, h), ref_key(c, h));
            tasks.push(tokio::spawn(async move {
                extract(&e, &[k]).await.unwrap();
                update(&e, &[r]).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let run = refset(&e, "nos/nos.dbofs.fields.20230323.t12z.nc.zarr").await;
        assert_eq!(hours_after_12z(&run), vec![1, 2, 3, 7]);
        let best = refset(&e, "nos/nos.dbofs.fields.best.nc.zarr").await;
        assert_eq!(hours_after_12z(&best), vec![1, 2, 3, 7]);
    });
}

#[test]
fn include_nowcasts_policy() {
    let e = env();
    let mut cfg = e.p.config.clone();
    cfg.include_nowcasts = true;
    let p = Pipeline::new(cfg);
    rt().block_on(async {
        steps::extract_single(&p, &message(SRC, &all_keys()), &*e.dest, "nos")
            .await
            .unwrap();
        steps::update_model_run(&p, &message(DEST, &[ref_key("12", "n006")]))
            .await
            .unwrap();
        let run = refset(&e, "nos/nos.dbofs.fields.20230323.t12z.nc.zarr").await;
        // n006 is valid at the cycle time (hour 0).
        assert_eq!(hours_after_12z(&run), vec![0, 1, 2, 3, 7]);
    });
}

#[test]
fn backfill_indexes_and_aggregates() {
    let e = env();
    rt().block_on(async {
        let mut cfg = e.p.config.clone();
        cfg.models = Config::parse_models("dbofs");
        let p = Pipeline::new(cfg);
        let d = ingest::backfill::parse_date("2023-03-23").unwrap();
        let o = ingest::backfill::BackfillOptions {
            model: "dbofs".into(),
            from: d,
            to: d,
            bucket: SRC.into(),
            dest: e.dest.clone(),
            prefix: "nos".into(),
            overwrite: false,
            progress: false,
        };
        let report = ingest::backfill::run(&p, &o).await.unwrap();
        // The corrupt f009 fails; the 6 good files are indexed.
        assert_eq!(report.indexed, FILES.len() as u64, "{report:?}");
        assert_eq!(report.failed, 1, "{report:?}");
        let keys: BTreeSet<String> = e
            .dest
            .list("nos/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        for (c, h) in FILES {
            assert!(keys.contains(&ref_key(c, h)));
        }
        let run = refset(&e, "nos/nos.dbofs.fields.20230323.t12z.nc.zarr").await;
        assert_eq!(hours_after_12z(&run), vec![1, 2, 3, 7]);
        let best = refset(&e, "nos/nos.dbofs.fields.best.nc.zarr").await;
        assert_eq!(hours_after_12z(&best), vec![1, 2, 3, 7]);
        // Second run: everything exists already.
        let again = ingest::backfill::run(&p, &o).await.unwrap();
        assert_eq!(again.existing, FILES.len() as u64);
    });
}

// ---------------------------------------------------------------------------
// Consistency under races (issue 13): a store that holds one chosen write
// until the test releases it, so the interleaving is exact, not timed.
// ---------------------------------------------------------------------------

/// Delegates to `inner`; the first `put` of a key containing `needle` waits
/// (after signalling `reached`) until `release` is notified.
#[derive(Debug)]
struct Holding {
    inner: Arc<dyn ObjectStore>,
    needle: String,
    armed: std::sync::atomic::AtomicBool,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl Holding {
    fn new(inner: Arc<dyn ObjectStore>, needle: &str) -> Arc<Holding> {
        Arc::new(Holding {
            inner,
            needle: needle.to_string(),
            armed: std::sync::atomic::AtomicBool::new(true),
            reached: Arc::new(tokio::sync::Notify::new()),
            release: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

impl Intercept for Holding {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: bytes::Bytes,
        cond: PutCondition,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(async move {
            if key.contains(&self.needle)
                && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                self.reached.notify_one();
                self.release.notified().await;
            }
            self.inner.put(key, body, cond).await
        })
    }
}
intercepting_store!(Holding);

/// Defect 1: update X (12z f007) computes the best series and its write is
/// held; meanwhile 18z f001 is indexed and its update Y writes a best
/// series with 18z f001 for 19z. X's write must not land over Y's: the
/// final best series holds 18z f001.
#[test]
fn best_series_keeps_the_newer_update_when_an_older_write_lands_last() {
    let e = env();
    rt().block_on(async {
        let hours = ["f001", "f002", "f003", "f007"];
        let keys: Vec<String> = hours.iter().map(|h| key("12", h)).collect();
        extract(&e, &keys).await.unwrap();
        let best = "nos/nos.dbofs.fields.best.nc.zarr";
        let holding = Holding::new(e.dest.clone(), "best");
        let x = {
            let (p, store) = (e.p.clone(), holding.clone());
            tokio::spawn(
                async move { steps::update_for_ref(&p, &*store, &ref_key("12", "f007")).await },
            )
        };
        // X has read the best series' version, listed and combined.
        holding.reached.notified().await;
        extract(&e, &[key("18", "f001")]).await.unwrap();
        let y = steps::update_for_ref(&e.p, &*e.dest, &ref_key("18", "f001"))
            .await
            .unwrap();
        assert!(y.written.iter().any(|w| w.ends_with(best)), "{y:?}");
        holding.release.notify_one();
        let x = x.await.unwrap().unwrap();
        // X's conditional write was refused; rebuilt, 12z f007 is no longer
        // a member, so X writes no best series.
        assert!(!x.written.iter().any(|w| w.ends_with(best)), "{x:?}");
        let b = refset(&e, best).await;
        assert_eq!(hours_after_12z(&b), vec![1, 2, 3, 7]);
        assert_eq!(zeta_url(&b, 3), format!("s3://{SRC}/{}", key("18", "f001")));
    });
}

/// A private copy of one source file under `{root}/{SRC}/{key}`.
fn private_source(root: &Path, from: &str, to_key: &str) {
    let src = sources().join(SRC).join(from);
    let dst = root.join(SRC).join(to_key);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    // Replace atomically, as S3 does.
    let tmp = dst.with_extension("tmp-copy");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(tmp, dst).unwrap();
}

fn env_with_sources(root: &Path) -> Env {
    let e = env();
    let mut config = e.p.config.clone();
    config.source_root = Some(root.to_path_buf());
    Env {
        _tmp: e._tmp,
        p: Arc::new(Pipeline::new(config)),
        dest: e.dest,
    }
}

fn stamp(body: &[u8]) -> steps::SourceStamp {
    steps::SourceStamp::of_refs(body).expect("reference set has a source stamp")
}

/// Defect 2: extract A reads version A; its write is held; the object is
/// replaced by version B and extract B finishes. When A's write is let go
/// it must not replace B's references with references to bytes that no
/// longer exist.
#[test]
fn reference_set_is_never_replaced_by_one_from_an_older_source_version() {
    let tmp = tempfile::tempdir().unwrap();
    let e = env_with_sources(tmp.path());
    let k = key("12", "f001");
    // Version A: the 12z f001 file; version B: other bytes (the 12z f002
    // file) under the same key.
    private_source(tmp.path(), &key("12", "f001"), &k);
    rt().block_on(async {
        let out_key = ref_key("12", "f001");
        let holding = Holding::new(e.dest.clone(), &out_key);
        let a = {
            let (p, store, k) = (e.p.clone(), holding.clone(), k.clone());
            tokio::spawn(async move {
                steps::extract_single(&p, &message(SRC, &[k]), &*store, "nos").await
            })
        };
        holding.reached.notified().await;
        private_source(tmp.path(), &key("12", "f002"), &k);
        let b = extract(&e, std::slice::from_ref(&k)).await.unwrap();
        assert_eq!(b.written.len(), 1, "{b:?}");
        let (b_body, _) = e.dest.get(&out_key).await.unwrap();
        holding.release.notify_one();
        a.await.unwrap().unwrap();
        let (final_body, _) = e.dest.get(&out_key).await.unwrap();
        let version_b =
            ingest::store::content_etag(&std::fs::read(tmp.path().join(SRC).join(&k)).unwrap());
        assert_eq!(stamp(&final_body).etag, version_b);
        assert_eq!(final_body, b_body, "B's references stay");
        // And they are the references of version B's bytes.
        let fresh = env_with_sources(tmp.path());
        extract(&fresh, std::slice::from_ref(&k)).await.unwrap();
        let (want, _) = fresh.dest.get(&out_key).await.unwrap();
        assert_eq!(final_body, want);
    });
}

/// A source store whose pinned range reads report "changed" for the first
/// `changes` reads after the first (a 412 on `If-Match` from S3).
#[derive(Debug)]
struct Changing {
    inner: Arc<dyn ObjectStore>,
    changes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Intercept for Changing {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }
    fn source(&self, source: Arc<dyn RangeSource>) -> Arc<dyn RangeSource> {
        use std::sync::atomic::Ordering::SeqCst;
        let (changes, reads) = (self.changes.clone(), std::sync::atomic::AtomicUsize::new(0));
        hooked(source, move |_| {
            let n = reads.fetch_add(1, SeqCst);
            if n >= 1
                && changes
                    .fetch_update(SeqCst, SeqCst, |c| c.checked_sub(1))
                    .is_ok()
            {
                return Err(hdf5_lite::SourceError::new(
                    SourceErrorKind::Changed,
                    "GetObject: object changed while reading (If-Match failed)",
                ));
            }
            Ok(())
        })
    }
}
intercepting_store!(Changing);

/// A fresh pipeline and destination whose sources are read through a
/// [`Changing`] store sharing `changes`.
async fn changing_env(changes: &Arc<std::sync::atomic::AtomicUsize>) -> Env {
    let e = env();
    let dir = sources().join(SRC);
    let inner: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(&dir).unwrap());
    let store = Arc::new(Changing {
        inner,
        changes: changes.clone(),
    });
    e.p.insert_store(&StoreUrl::Local { dir }, store).await;
    e
}

/// Defect 3: a source that changes mid-walk is read again (success when it
/// settles, exit 3 when it keeps changing, never 1); the S3 errors that no
/// retry can fix are permanent; a missing bucket is named as such.
#[test]
fn exit_codes_follow_the_kind_of_failure() {
    use std::sync::atomic::AtomicUsize;
    rt().block_on(async {
        let changes = Arc::new(AtomicUsize::new(2));
        let e = changing_env(&changes).await;
        // Changed twice mid-walk, then stable: indexed.
        let out = extract(&e, &[key("12", "f002")]).await.unwrap();
        assert_eq!(out.written.len(), 1, "{out:?}");
        assert_eq!(changes.load(std::sync::atomic::Ordering::SeqCst), 0);
        // Changing on every read: transient (exit 3), nothing written. (A
        // fresh pipeline and destination: with f002's layout, f003 would be
        // read in one wave, before the first change.)
        let e = changing_env(&changes).await;
        changes.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        let err = extract(&e, &[key("12", "f003")]).await.unwrap_err();
        assert!(err.is_transient() && err.exit_code() == 3, "{err:?}");
        assert!(
            err.to_string().contains("changed while being read"),
            "{err}"
        );
        assert!(e.dest.head(&ref_key("12", "f003")).await.unwrap().is_none());

        // Mapping of source failures by kind.
        use hdf5_lite::SourceError as SE;
        let src = |kind| hdf5_lite::Error::Source {
            file: "s3://b/k".into(),
            error: SE::new(kind, "GetObject bytes=0-7: x"),
        };
        for (kind, code) in [
            (SourceErrorKind::NotFound, 1),
            (SourceErrorKind::Denied, 1),
            (SourceErrorKind::Malformed, 1),
            (SourceErrorKind::Rejected, 1),
            (SourceErrorKind::Transient, 3),
            (SourceErrorKind::Changed, 3),
        ] {
            let err = StepError::from_hdf5(&src(kind));
            assert_eq!(err.exit_code(), code, "{kind:?}");
            // The URL is said once.
            assert_eq!(err.to_string().matches("s3://b/k").count(), 1, "{err}");
        }

        // A reference into a bucket outside the allowlist: permanent.
        let resolver = ingest::sources::SourceResolver::new(&e.p);
        use kerchunk::combine::Resolver as _;
        let err = resolver
            .resolve("s3://not-a-source-bucket/x.nc")
            .await
            .err()
            .unwrap();
        assert!(
            err.message.contains("not a configured source bucket"),
            "{err}"
        );
        assert!(!err.is_transient(), "{err:?}");
    });
}

/// Defect 4: one message naming the same object 400 times indexes it once;
/// a message over the record limit fails permanently with nothing written.
#[test]
fn duplicate_records_are_indexed_once_and_records_are_capped() {
    let e = env();
    rt().block_on(async {
        let k = key("12", "f001");
        let many = vec![k.clone(); 400];
        let mut cfg = e.p.config.clone();
        cfg.max_records_per_message = 500;
        let p = Pipeline::new(cfg);
        let out = steps::extract_single(&p, &message(SRC, &many), &*e.dest, "nos")
            .await
            .unwrap();
        assert_eq!(out.written.len(), 1, "{out:?}");

        let other = env();
        let err = extract(&other, &many).await.unwrap_err();
        assert_eq!(err.exit_code(), 1, "{err:?}");
        assert!(
            err.to_string().contains("more than the limit of 100"),
            "{err}"
        );
        assert!(other.dest.list("").await.unwrap().is_empty());
    });
}

// ---------------------------------------------------------------------------
// Layouts kept in the destination store (ingest/src/layouts.rs)
// ---------------------------------------------------------------------------

/// What reached the source: waves (`get_ranges` calls) and requests
/// (ranges), counted below the engine; and GETs of layout objects.
#[derive(Debug, Default)]
struct Counts {
    waves: std::sync::atomic::AtomicU64,
    requests: std::sync::atomic::AtomicU64,
    layout_gets: std::sync::atomic::AtomicU64,
    /// Layout GETs fail (transient) and PUTs are refused (412).
    layouts_fail: std::sync::atomic::AtomicBool,
}

impl Counts {
    /// (waves, requests) since the last call.
    fn take(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.waves.swap(0, SeqCst), self.requests.swap(0, SeqCst))
    }
}

#[derive(Debug)]
struct Counted {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counts>,
}

impl Intercept for Counted {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }
    fn before(&self, call: Call<'_>) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let fail = self.counts.layouts_fail.load(SeqCst);
        match call {
            Call::Get(key) if key.contains("_layouts/") => {
                self.counts.layout_gets.fetch_add(1, SeqCst);
                if fail {
                    return Err(StoreError::Transient("injected".into()));
                }
            }
            Call::Put(key) if fail && key.contains("_layouts/") => {
                return Err(StoreError::PreconditionFailed(key.to_string()));
            }
            _ => {}
        }
        Ok(())
    }
    fn source(&self, source: Arc<dyn RangeSource>) -> Arc<dyn RangeSource> {
        let counts = self.counts.clone();
        hooked(source, move |ranges| {
            use std::sync::atomic::Ordering::SeqCst;
            counts.waves.fetch_add(1, SeqCst);
            counts.requests.fetch_add(ranges.len() as u64, SeqCst);
            Ok(())
        })
    }
}
intercepting_store!(Counted);

/// A pipeline with a fresh memory whose source reads and layout GETs are
/// counted, writing to the local store at `dest_dir`.
async fn counted_env(tmp: &Path, dest_dir: &Path) -> (Env, Arc<Counts>) {
    counted_env_at(tmp, sources(), dest_dir).await
}

/// [`counted_env`] reading its sources from `root` (`root/noaa-ofs-pds/KEY`).
async fn counted_env_at(tmp: &Path, root: &Path, dest_dir: &Path) -> (Env, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let config = Config {
        source_root: Some(root.to_path_buf()),
        dest_override: Some(StoreUrl::Local {
            dir: dest_dir.to_path_buf(),
        }),
        ..Config::default()
    };
    let p = Arc::new(Pipeline::new(config));
    let src_dir = root.join(SRC);
    let src: Arc<dyn ObjectStore> = Arc::new(Counted {
        inner: Arc::new(LocalStore::new(&src_dir).unwrap()),
        counts: counts.clone(),
    });
    p.insert_store(&StoreUrl::Local { dir: src_dir }, src).await;
    let dest: Arc<dyn ObjectStore> = Arc::new(Counted {
        inner: Arc::new(LocalStore::new(dest_dir).unwrap()),
        counts: counts.clone(),
    });
    let e = Env {
        _tmp: tempfile::tempdir_in(tmp).unwrap(),
        p,
        dest,
    };
    (e, counts)
}

/// f002 then its sibling f003: the second step fetches the predicted
/// metadata in its first wave (fewer waves, no more requests than cold) and
/// writes exactly the references of a cold run; a one-shot process reading
/// the layout from the store does the same; a worker's second message of
/// the series reads no layout object; a corrupt, foreign or stale layout
/// object changes nothing in the output and is replaced; a store that
/// cannot read or write layouts (errors, a lost race) fails nothing.
#[test]
fn layouts_in_the_destination_make_siblings_warm_and_never_change_output() {
    use ingest::layouts::layout_key;
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (key("12", "f002"), key("12", "f003"));
    let out_key = ref_key("12", "f003");
    let url = format!("s3://{SRC}/{second}");
    let layout = layout_key("nos", &url);
    assert_eq!(layout, layout_key("nos", &format!("s3://{SRC}/{first}")));
    rt().block_on(async {
        // Cold: f003 alone.
        let (cold, c) = counted_env(tmp.path(), &tmp.path().join("cold")).await;
        extract(&cold, std::slice::from_ref(&second)).await.unwrap();
        let (cold_waves, cold_requests) = c.take();
        let (want, _) = cold.dest.get(&out_key).await.unwrap();
        let (entry, _) = cold.dest.get(&layout).await.expect("layout stored");
        assert!(hdf5_lite::layout_cache::decode_entry(&entry, &url).is_ok());
        assert!(cold_waves >= 2, "cold walk of f003: {cold_waves} waves");

        // Worker: f002, then f003 with the layout from memory.
        let dir = tmp.path().join("warm");
        let (warm, c) = counted_env(tmp.path(), &dir).await;
        extract(&warm, std::slice::from_ref(&first)).await.unwrap();
        c.take();
        let gets = c.layout_gets.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(gets, 1, "the first message of a series reads its layout");
        extract(&warm, std::slice::from_ref(&second)).await.unwrap();
        let (waves, requests) = c.take();
        eprintln!(
            "f003 cold: {cold_waves} waves, {cold_requests} requests; warm: {waves}, {requests}"
        );
        assert!(
            waves < cold_waves && requests <= cold_requests,
            "warm {waves} waves / {requests} requests, cold {cold_waves} / {cold_requests}"
        );
        let gets = c.layout_gets.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(gets, 1, "the second message used the worker's memory");
        assert_eq!(warm.dest.get(&out_key).await.unwrap().0, want);

        // One-shot pod: a new process, the layout from the store.
        let (pod, c) = counted_env(tmp.path(), &dir).await;
        std::fs::remove_file(dir.join(&out_key)).unwrap();
        extract(&pod, std::slice::from_ref(&second)).await.unwrap();
        let (pod_waves, _) = c.take();
        assert!(pod_waves < cold_waves, "{pod_waves} waves");
        assert_eq!(pod.dest.get(&out_key).await.unwrap().0, want);

        // Bad layout objects: identical output, the entry replaced.
        let entry_of = |file_size, ranges| hdf5_lite::layout_cache::Entry {
            file_size,
            drift: 0,
            ranges,
        };
        let foreign = hdf5_lite::layout_cache::encode_entry(
            "s3://b/x.n001.nc",
            &entry_of(10, vec![0..10, 20..30]),
        );
        let stale = hdf5_lite::layout_cache::encode_entry(
            &url,
            &entry_of(1, vec![0..100, 150_000..200_000]),
        );
        let bad: [&[u8]; 4] = [
            b"\xff\x00garbage",
            b"kerchunk-nos layout 1\npattern nonsense\nsize x\n1 2 3\n",
            foreign.as_bytes(),
            stale.as_bytes(),
        ];
        for (i, body) in bad.into_iter().enumerate() {
            let (e, c) = counted_env(tmp.path(), &tmp.path().join(format!("bad{i}"))).await;
            e.dest
                .put(
                    &layout,
                    bytes::Bytes::copy_from_slice(body),
                    PutCondition::None,
                )
                .await
                .unwrap();
            extract(&e, std::slice::from_ref(&second)).await.unwrap();
            c.take();
            assert_eq!(e.dest.get(&out_key).await.unwrap().0, want, "layout {i}");
            let (now, _) = e.dest.get(&layout).await.unwrap();
            if i < 3 {
                assert_eq!(now, entry, "layout {i} replaced by f003's own");
            } else {
                // The stale ranges were fetched too, so they stay predicted.
                assert_ne!(now.as_ref(), body, "layout {i} replaced");
                assert!(hdf5_lite::layout_cache::decode_entry(&now, &url).is_ok());
            }
        }

        // Layout GETs fail and PUTs get 412: the step still succeeds, cold.
        let dir = tmp.path().join("failing");
        let (e, c) = counted_env(tmp.path(), &dir).await;
        c.layouts_fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        extract(&e, std::slice::from_ref(&first)).await.unwrap();
        c.take();
        extract(&e, std::slice::from_ref(&second)).await.unwrap();
        assert_eq!(c.take().0, cold_waves, "no layout, a cold walk");
        assert_eq!(e.dest.get(&out_key).await.unwrap().0, want);
        assert!(!dir.join(&layout).exists());
    });
}

/// A compressed series (deflate+shuffle copies of small dbofs f001-f003,
/// `kerchunk/tests/data/layout-siblings-zlib`): its structures move by the
/// difference in compressed sizes from file to file, so a stored layout
/// only predicts them when widened. The pipeline knows each file's size
/// from its HEAD before the first wave, so from the second file on the
/// prediction is widened by the size difference (and then also by the
/// drift the stored entry recorded), and both warm files take one wave
/// where cold takes several; every output is the cold one.
#[test]
fn a_compressed_series_is_warm_in_one_wave_from_its_second_file() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = root().join("kerchunk/tests/data/layout-siblings-zlib");
    let src_root = tmp.path().join("src");
    let hours = ["f001", "f002", "f003"];
    for h in hours {
        let dst = src_root.join(SRC).join(key("12", h));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(
            fixtures.join(format!("dbofs.t06z.20250601.fields.{h}.nc")),
            dst,
        )
        .unwrap();
    }
    rt().block_on(async {
        let (warm, c) = counted_env_at(tmp.path(), &src_root, &tmp.path().join("warm")).await;
        for (i, h) in hours.into_iter().enumerate() {
            let (cold, cc) =
                counted_env_at(tmp.path(), &src_root, &tmp.path().join(format!("cold-{h}"))).await;
            extract(&cold, &[key("12", h)]).await.unwrap();
            let (cold_waves, _) = cc.take();
            extract(&warm, &[key("12", h)]).await.unwrap();
            let (waves, requests) = c.take();
            eprintln!("{h}: cold {cold_waves} waves, in the series {waves} ({requests} requests)");
            let out = ref_key("12", h);
            assert_eq!(
                warm.dest.get(&out).await.unwrap().0,
                cold.dest.get(&out).await.unwrap().0,
                "{h}: output differs from a cold run's"
            );
            if i == 0 {
                assert_eq!(waves, cold_waves, "{h}: the first file is cold");
            } else {
                assert!(cold_waves > 1, "{h}: cold {cold_waves} waves");
                assert_eq!(waves, 1, "{h}: warm in one wave");
            }
        }
        let url = format!("s3://{SRC}/{}", key("12", "f003"));
        let (entry, _) = warm
            .dest
            .get(&ingest::layouts::layout_key("nos", &url))
            .await
            .unwrap();
        let entry = hdf5_lite::layout_cache::decode_entry(&entry, &url).unwrap();
        assert!(entry.drift > 0, "the series was seen to move: {entry:?}");
    });
}
